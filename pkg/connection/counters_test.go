package connection_test

import (
	"context"
	"testing"
)

// Counters add up the same outcomes as Stats, plus call counts and
// summed durations (zero here: the fixture's clock stands still; the EMF
// tests see them on the real clock).
func TestCountersMatchTheOutcomes(t *testing.T) {
	f := newFixture(t, oneAttempt)
	f.connect(t, "ok", "gone", "busy", "b1", "b2")
	f.srv.Disconnect("gone")
	f.srv.Script("busy", 429)
	ctx := context.Background()
	for range 3 {
		_ = f.m.Send(ctx, "ok", "m")
	}
	_ = f.m.Send(ctx, "gone", "m")
	_ = f.m.Send(ctx, "busy", "m")
	_ = f.m.Broadcast(ctx, []string{"b1", "b2", "b1"}, "all")
	c := f.m.Counters()
	if c.Sends != 7 || c.SendCalls != 5 || c.Broadcasts != 1 || c.SendFailures != 2 || c.Gone != 1 || c.Throttled != 1 ||
		c.CircuitOpen != 0 || c.Retries != 0 {
		t.Errorf("Counters = %+v", c)
	}
	s := f.m.Stats()
	if s.SendsTotal != c.Sends || s.SendFailuresTotal != c.SendFailures || s.ErrorsByType["gone"] != c.Gone || s.Breakers.Open != c.BreakersOpen {
		t.Errorf("Stats %+v disagree with Counters %+v", s, c)
	}
}
