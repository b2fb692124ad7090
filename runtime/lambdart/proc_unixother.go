//go:build unix && !linux

package lambdart

import "syscall"

// dieWithParent: only Linux has a parent-death signal; elsewhere a
// function process outlives a runtime killed without closing it until its
// next Runtime API call fails.
func dieWithParent(*syscall.SysProcAttr) {}
