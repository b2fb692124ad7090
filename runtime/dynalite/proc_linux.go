//go:build linux

package dynalite

import "syscall"

// dieWithParent stops dynalite when the process that started it dies.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
