package connection_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
)

// One attempt per Send keeps the arithmetic simple: each failing Send is
// one breaker failure either way (retries exhausted = one failure).
var oneAttempt = connection.WithRetry(connection.RetryPolicy{MaxRetries: -1})

func breakers(m *connection.Manager) connection.BreakerCounts { return m.Stats().Breakers }

func TestBreakerTransitions(t *testing.T) {
	clock := newManualClock()
	f := newFixture(t, connection.WithClock(clock), oneAttempt)
	f.connect(t, "c1")
	ctx := context.Background()
	f.srv.Script("c1", 500, 500, 500, 500, 500)

	for i := 1; i <= 5; i++ {
		if err := f.m.Send(ctx, "c1", "m"); err == nil || errors.Is(err, connection.ErrCircuitOpen) {
			t.Fatalf("send %d: err = %v, want a server error", i, err)
		}
		if want := i < 5; (breakers(f.m).Closed == 1) != want {
			t.Fatalf("after %d failures breakers = %+v", i, breakers(f.m))
		}
	}
	if got := breakers(f.m); got != (connection.BreakerCounts{Open: 1}) {
		t.Fatalf("after 5 failures breakers = %+v, want 1 open", got)
	}
	// Open: refused with no HTTP call, until the cooldown has passed.
	attempts := f.srv.Attempts("c1")
	for _, wait := range []time.Duration{0, 29 * time.Second, 999 * time.Millisecond} {
		clock.Advance(wait)
		if err := f.m.Send(ctx, "c1", "m"); !errors.Is(err, connection.ErrCircuitOpen) {
			t.Fatalf("while open: err = %v, want ErrCircuitOpen", err)
		}
	}
	if got := f.srv.Attempts("c1"); got != attempts {
		t.Fatalf("open breaker let %d calls through", got-attempts)
	}
	if got := f.m.Stats().ErrorsByType["circuit_open"]; got != 3 {
		t.Errorf("circuit_open = %d, want 3", got)
	}
	// 30 s after opening: one probe goes through; it fails, so it re-opens.
	clock.Advance(time.Millisecond)
	f.srv.Script("c1", 503)
	if err := f.m.Send(ctx, "c1", "m"); err == nil || errors.Is(err, connection.ErrCircuitOpen) {
		t.Fatalf("probe: err = %v, want the server error", err)
	}
	if got := f.srv.Attempts("c1"); got != attempts+1 {
		t.Fatalf("probe made %d calls, want 1", got-attempts)
	}
	if got := breakers(f.m); got != (connection.BreakerCounts{Open: 1}) {
		t.Fatalf("after failed probe breakers = %+v, want open", got)
	}
	if err := f.m.Send(ctx, "c1", "m"); !errors.Is(err, connection.ErrCircuitOpen) {
		t.Fatalf("re-opened: err = %v, want ErrCircuitOpen", err)
	}
	// Another cooldown; the probe succeeds and closes the breaker.
	clock.Advance(30 * time.Second)
	if err := f.m.Send(ctx, "c1", "m"); err != nil {
		t.Fatalf("successful probe: %v", err)
	}
	if got := breakers(f.m); got != (connection.BreakerCounts{Closed: 1}) {
		t.Fatalf("after successful probe breakers = %+v, want closed", got)
	}
	for i := 0; i < 3; i++ {
		if err := f.m.Send(ctx, "c1", "m"); err != nil {
			t.Fatalf("closed again: %v", err)
		}
	}
	if got := len(f.srv.Received("c1")); got != 4 {
		t.Errorf("delivered %d, want 4", got)
	}
}

func TestBreakerOneProbeAtATime(t *testing.T) {
	clock := newManualClock()
	f := newFixture(t, connection.WithClock(clock), oneAttempt,
		connection.WithBreaker(connection.BreakerSettings{Threshold: 2, Cooldown: time.Minute}))
	f.connect(t, "c1")
	ctx := context.Background()
	f.srv.Script("c1", 500, 500)
	_ = f.m.Send(ctx, "c1", "m")
	_ = f.m.Send(ctx, "c1", "m")
	if err := f.m.Send(ctx, "c1", "m"); !errors.Is(err, connection.ErrCircuitOpen) {
		t.Fatalf("threshold 2: err = %v, want ErrCircuitOpen", err)
	}
	clock.Advance(time.Minute)
	arrived, release := f.srv.Hold("c1")
	probe := make(chan error, 1)
	go func() { probe <- f.m.Send(ctx, "c1", "probe") }()
	<-arrived
	if got := breakers(f.m); got != (connection.BreakerCounts{HalfOpen: 1}) {
		t.Errorf("during probe breakers = %+v, want half-open", got)
	}
	// While the probe is in flight, everyone else is refused.
	if err := f.m.Send(ctx, "c1", "m"); !errors.Is(err, connection.ErrCircuitOpen) {
		t.Errorf("second call during probe: err = %v, want ErrCircuitOpen", err)
	}
	release()
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := breakers(f.m); got != (connection.BreakerCounts{Closed: 1}) {
		t.Errorf("after probe breakers = %+v, want closed", got)
	}
}

func TestBreakerIgnoresGoneForbiddenTooLarge(t *testing.T) {
	f := newFixture(t, oneAttempt)
	f.connect(t, "c1")
	ctx := context.Background()
	f.srv.Script("c1", 403, 403, 413, 403, 413, 403, 413)
	for i := 0; i < 7; i++ {
		if err := f.m.Send(ctx, "c1", "m"); err == nil || errors.Is(err, connection.ErrCircuitOpen) {
			t.Fatalf("send %d: err = %v", i, err)
		}
	}
	if err := f.m.Send(ctx, "c1", "m"); err != nil {
		t.Fatalf("after 7 non-counting failures: %v", err)
	}
	if got := breakers(f.m).Open; got != 0 {
		t.Errorf("%d open breakers after 403/413 only", got)
	}
}

func TestBreakerSuccessResetsConsecutiveFailures(t *testing.T) {
	f := newFixture(t, oneAttempt)
	f.connect(t, "c1")
	ctx := context.Background()
	// 4 failures, a success, 4 failures: never 5 in a row.
	f.srv.Script("c1", 500, 500, 500, 500, 200, 500, 500, 500, 500)
	for i := 0; i < 9; i++ {
		_ = f.m.Send(ctx, "c1", "m")
	}
	if err := f.m.Send(ctx, "c1", "m"); err != nil {
		t.Fatalf("breaker opened without 5 consecutive failures: %v", err)
	}
}

func TestBreakerCanBeDisabled(t *testing.T) {
	f := newFixture(t, oneAttempt, connection.WithBreaker(connection.BreakerSettings{Threshold: -1}))
	f.connect(t, "c1")
	f.srv.Script("c1", 500, 500, 500, 500, 500, 500, 500)
	for i := 0; i < 7; i++ {
		if err := f.m.Send(context.Background(), "c1", "m"); errors.Is(err, connection.ErrCircuitOpen) {
			t.Fatalf("disabled breaker opened at send %d", i)
		}
	}
	if got := f.srv.Attempts("c1"); got != 7 {
		t.Errorf("attempts = %d, want 7", got)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
