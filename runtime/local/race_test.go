//go:build race

package local_test

// raceEnabled reports whether the race detector is on: tests that send
// many calls scale down under it.
const raceEnabled = true
