package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestCeilingDoublesUpToMax(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	want := []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond,
		5 * time.Second, 5 * time.Second,
	}
	for retry, w := range want {
		if got := p.Ceiling(retry); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", retry, got, w)
		}
	}
	// Far beyond the point where Base<<retry would overflow int64.
	for _, retry := range []int{62, 63, 64, 1000} {
		if got := p.Ceiling(retry); got != p.Max {
			t.Errorf("Ceiling(%d) = %v, want the cap %v", retry, got, p.Max)
		}
	}
	if got := p.Ceiling(-1); got != p.Base {
		t.Errorf("Ceiling(-1) = %v, want Base", got)
	}
}

func TestDelayBoundsIncludeZeroAndCap(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	for retry := 0; retry < 10; retry++ {
		if got := p.Delay(retry, lowest); got != 0 {
			t.Errorf("Delay(%d, lowest) = %v, want 0", retry, got)
		}
		if got, want := p.Delay(retry, highest), p.Ceiling(retry); got != want {
			t.Errorf("Delay(%d, highest) = %v, want the ceiling %v", retry, got, want)
		}
	}
	// The cap is reachable with larger settings too.
	big := Policy{Base: time.Second, Max: 30 * time.Second}
	if got := big.Delay(10, highest); got != 30*time.Second {
		t.Errorf("cap not reachable: got %v", got)
	}
}

func TestDelayIsSpreadOverTheWholeRange(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	var below, above int
	c := p.Ceiling(2) // 400 ms
	for i := 0; i < n; i++ {
		d := p.Delay(2, r.Int64N)
		if d < 0 || d > c {
			t.Fatalf("Delay = %v outside [0, %v]", d, c)
		}
		if d < c/2 {
			below++
		} else {
			above++
		}
	}
	// Full jitter is uniform: each half gets about half the draws.
	if below < n*45/100 || above < n*45/100 {
		t.Errorf("not uniform: %d below half, %d above", below, above)
	}
}
