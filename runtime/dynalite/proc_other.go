//go:build !linux

package dynalite

import "syscall"

func dieWithParent(*syscall.SysProcAttr) {}
