//go:build !linux

package lambdart

// totalMemory is unknown here: DefaultConcurrency takes its fallback.
func totalMemory() uint64 { return 0 }
