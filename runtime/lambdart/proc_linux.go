//go:build linux

package lambdart

import "syscall"

// dieWithParent makes the kernel stop a function process when the
// runtime dies without closing it (SIGKILL, a crash): its own process
// group keeps it from the signals sent to the runtime's.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
