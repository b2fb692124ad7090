// Package backoff computes retry delays: exponential growth with full
// jitter, as described in
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
//
// It is hand-written rather than taken from a library because it is a few
// lines, it must take an injected random source so tests can pin the
// delays, and the callers schedule the wait themselves (a Send sleeps on
// its own goroutine; a Broadcast re-queues the ID on a timer so that no
// worker sleeps). None of the listed dependencies provides it.
package backoff

import "time"

// Policy is an exponential backoff with full jitter.
type Policy struct {
	// Base is the ceiling of the first retry's delay. Must be > 0.
	Base time.Duration
	// Max caps every delay. Must be >= Base.
	Max time.Duration
}

// Ceiling returns the largest delay retry number retry (0 for the first
// retry) may wait: min(Max, Base·2^retry), computed without overflow.
func (p Policy) Ceiling(retry int) time.Duration {
	if retry < 0 {
		retry = 0
	}
	c := p.Base
	for i := 0; i < retry; i++ {
		if c >= p.Max || c > p.Max/2 {
			return p.Max
		}
		c *= 2
	}
	if c > p.Max {
		return p.Max
	}
	return c
}

// Delay returns a delay drawn uniformly from [0, Ceiling(retry)], both ends
// included, so that the cap itself is reachable. randN must return a value
// in [0, n), like math/rand/v2.Int64N.
func (p Policy) Delay(retry int, randN func(n int64) int64) time.Duration {
	c := p.Ceiling(retry)
	if c <= 0 {
		return 0
	}
	return time.Duration(randN(int64(c) + 1))
}
