package progress_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// delivery is one call of a send or persist Func, with the (fake) time of the call.
type delivery struct {
	at time.Time
	u  progress.Update
}

// recorder is a Func that records what it was given.
type recorder struct {
	mu  sync.Mutex
	got []delivery
	err error // returned by every call
}

func (r *recorder) fn(_ context.Context, u progress.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, delivery{at: time.Now(), u: u})
	return r.err
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *recorder) percentages() []float64 {
	var out []float64
	for _, d := range r.deliveries() {
		out = append(out, d.u.Percentage)
	}
	return out
}

func mustClose(t *testing.T, p *progress.Publisher) {
	t.Helper()
	if err := p.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustReport(t *testing.T, p *progress.Publisher, pct float64, msg string) {
	t.Helper()
	if err := p.Report(pct, msg); err != nil {
		t.Fatalf("Report(%v): %v", pct, err)
	}
}

// A burst of reports is coalesced into the newest one, and the rate limit
// holds back the next delivery until its slot.
func TestCoalescesToNewestAndHonoursRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send recorder
		p := progress.NewPublisher(t.Context(), send.fn, nil, progress.WithRate(10))
		mustReport(t, p, 1, "first")
		synctest.Wait()
		if got := send.percentages(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("sent %v, want the first update at once", got)
		}
		first := time.Now()
		for i := 2; i <= 50; i++ {
			mustReport(t, p, float64(i), "burst")
		}
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if got := send.percentages(); len(got) != 1 {
			t.Fatalf("sent %v before the 100 ms slot at 10/s", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		got := send.deliveries()
		if len(got) != 2 || got[1].u.Percentage != 50 {
			t.Fatalf("sent %v, want [1 50]: the burst coalesced into its newest", send.percentages())
		}
		if d := got[1].at.Sub(first); d != 100*time.Millisecond {
			t.Errorf("second send after %v, want exactly 100ms", d)
		}
		mustClose(t, p)
		if got := send.percentages(); len(got) != 2 {
			t.Errorf("Close re-sent a delivered update: %v", got)
		}
	})
}

// Reporting every 10 ms for 2 s at 10/s sends one update per 100 ms slot, in
// order, and ends with the newest.
func TestRateLimitUnderSteadyReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send recorder
		p := progress.NewPublisher(t.Context(), send.fn, nil, progress.WithRate(10))
		for i := 0; i <= 200; i++ {
			mustReport(t, p, float64(i)/2, "")
			time.Sleep(10 * time.Millisecond)
		}
		closedAt := time.Now()
		mustClose(t, p)
		got := send.deliveries()
		if len(got) < 20 || len(got) > 22 {
			t.Fatalf("sent %d updates over 2 s at 10/s, want 20–22", len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i].at.Equal(closedAt) {
				continue // Close's flush does not wait for the rate slot
			}
			if gap := got[i].at.Sub(got[i-1].at); gap < 100*time.Millisecond {
				t.Errorf("updates %d and %d only %v apart", i-1, i, gap)
			}
			if got[i].u.Sequence <= got[i-1].u.Sequence {
				t.Errorf("sequence went %d → %d", got[i-1].u.Sequence, got[i].u.Sequence)
			}
		}
		if last := got[len(got)-1].u; last.Percentage != 100 || last.Sequence != 201 {
			t.Errorf("last sent %+v, want 100 %% with sequence 201", last)
		}
	})
}

// Persisting is throttled separately from sending.
func TestPersistThrottledSeparately(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send, persist recorder
		p := progress.NewPublisher(t.Context(), send.fn, persist.fn,
			progress.WithRate(math.Inf(1)), progress.WithPersistInterval(time.Second))
		for i := 1; i <= 30; i++ {
			mustReport(t, p, float64(i), "")
			time.Sleep(100 * time.Millisecond)
		}
		mustClose(t, p)
		if n := len(send.deliveries()); n != 30 {
			t.Errorf("sent %d of 30 updates without a rate limit", n)
		}
		got := persist.deliveries()
		if len(got) < 3 || len(got) > 4 {
			t.Fatalf("persisted %d updates over 3 s at one per second, want 3–4: %v", len(got), persist.percentages())
		}
		for i := 1; i < len(got); i++ {
			if gap := got[i].at.Sub(got[i-1].at); gap < time.Second {
				t.Errorf("persists %d and %d only %v apart", i-1, i, gap)
			}
		}
		if last := got[len(got)-1].u.Percentage; last != 30 {
			t.Errorf("last persisted %v, want the newest, 30", last)
		}
	})
}

// The final 100 % reported just before Close reaches both steps, without
// waiting for the rate slot.
func TestCloseFlushesFinalUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send, persist recorder
		p := progress.NewPublisher(t.Context(), send.fn, persist.fn)
		mustReport(t, p, 10, "")
		synctest.Wait()
		mustReport(t, p, 50, "")
		mustReport(t, p, 100, "done")
		start := time.Now()
		mustClose(t, p)
		if time.Since(start) != 0 {
			t.Errorf("Close waited %v for the rate limit", time.Since(start))
		}
		for name, r := range map[string]*recorder{"send": &send, "persist": &persist} {
			got := r.deliveries()
			if len(got) == 0 {
				t.Fatalf("%s: nothing delivered", name)
			}
			if last := got[len(got)-1].u; last.Percentage != 100 || last.Message != "done" {
				t.Errorf("%s: last delivered %+v, want 100 %% done", name, last)
			}
		}
	})
}

// Concurrent reporters with real time and the race detector: whatever is
// skipped, every step sees strictly increasing sequences and ends with the
// newest report.
func TestConcurrentReportsStayOrdered(t *testing.T) {
	var send, persist recorder
	p := progress.NewPublisher(t.Context(), send.fn, persist.fn,
		progress.WithRate(1000), progress.WithPersistInterval(time.Millisecond))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 500; i++ {
				if err := p.Report(float64(i%101), "x"); err != nil {
					t.Errorf("Report: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustClose(t, p)
	for name, r := range map[string]*recorder{"send": &send, "persist": &persist} {
		got := r.deliveries()
		for i := 1; i < len(got); i++ {
			if got[i].u.Sequence <= got[i-1].u.Sequence {
				t.Fatalf("%s: sequence %d delivered after %d", name, got[i].u.Sequence, got[i-1].u.Sequence)
			}
		}
		if last := got[len(got)-1].u.Sequence; last != 8*500 {
			t.Errorf("%s: last delivered sequence %d, want %d", name, last, 8*500)
		}
	}
}

// Report returns at once even while send is stuck on the network, and
// Close at its deadline cancels the stuck send and leaves no goroutine.
func TestReportNeverBlocksOnStuckSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{}, 1)
		stuck := func(ctx context.Context, _ progress.Update) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		var handled []error
		var mu sync.Mutex
		p := progress.NewPublisher(t.Context(), stuck, nil, progress.WithErrorHandler(func(err error) {
			mu.Lock()
			handled = append(handled, err)
			mu.Unlock()
		}))
		mustReport(t, p, 1, "")
		<-started
		for i := 2; i <= 10000; i++ {
			mustReport(t, p, float64(i%100), "")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close with a stuck send = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Close returned after %v, want its 1s deadline", d)
		}
		if err := p.Close(t.Context()); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(handled) == 0 || !errors.Is(handled[0], context.Canceled) {
			t.Errorf("error handler got %v, want the cancelled send", handled)
		}
		// synctest.Test fails if the delivery goroutine is still alive.
	})
}

// The processor learns through the error handler that persist found the
// request cancelled; the handler runs outside the lock (it may Report).
func TestErrorHandlerSeesPersistConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		persist := recorder{err: store.ErrConflict}
		var p *progress.Publisher
		var got []error
		p = progress.NewPublisher(t.Context(), nil, persist.fn, progress.WithErrorHandler(func(err error) {
			got = append(got, err)
			_ = p.Report(99, "from the error handler") // deadlocks if called under the lock
		}))
		mustReport(t, p, 5, "")
		synctest.Wait()
		if len(got) != 1 {
			t.Fatalf("error handler called %d times, want 1", len(got))
		}
		var derr *progress.DeliveryError
		if !errors.As(got[0], &derr) || derr.Step != progress.StepPersist || derr.Update.Percentage != 5 {
			t.Fatalf("error = %v, want a persist DeliveryError for 5 %%", got[0])
		}
		if !errors.Is(got[0], store.ErrConflict) {
			t.Errorf("errors.Is(%v, store.ErrConflict) = false", got[0])
		}
		err := p.Close(t.Context())
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("Close = %v, want the failed final persist", err)
		}
	})
}

func TestInvalidReports(t *testing.T) {
	var send recorder
	p := progress.NewPublisher(t.Context(), send.fn, nil)
	defer mustClose(t, p)
	for _, pct := range []float64{-0.1, 100.1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if err := p.Report(pct, ""); !errors.Is(err, progress.ErrInvalidPercentage) {
			t.Errorf("Report(%v) = %v, want ErrInvalidPercentage", pct, err)
		}
	}
	var syntaxErr *json.UnsupportedTypeError
	err := p.ReportDetails(1, "", map[string]any{"c": make(chan int)})
	if !errors.Is(err, progress.ErrInvalidDetails) || !errors.As(err, &syntaxErr) {
		t.Errorf("ReportDetails(chan) = %v, want ErrInvalidDetails wrapping the json error", err)
	}
	for _, pct := range []float64{0, 100} {
		if err := p.Report(pct, ""); err != nil {
			t.Errorf("Report(%v) = %v, want nil at the bounds", pct, err)
		}
	}
}

// Details are marshalled when reported, so later changes by the handler do
// not race with delivery.
func TestDetailsMarshalledAtReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send recorder
		p := progress.NewPublisher(t.Context(), send.fn, nil)
		details := map[string]int{"rows": 10}
		if err := p.ReportDetails(10, "", details); err != nil {
			t.Fatal(err)
		}
		details["rows"] = 99
		synctest.Wait()
		if err := p.ReportDetails(20, "", nil); err != nil {
			t.Fatal(err)
		}
		mustClose(t, p)
		got := send.deliveries()
		if string(got[0].u.Details) != `{"rows":10}` {
			t.Errorf("details = %s, want the value at report time", got[0].u.Details)
		}
		if last := got[len(got)-1].u; last.Details != nil {
			t.Errorf("nil details delivered as %q", last.Details)
		}
	})
}

// Percentages may go down (a handler restarting a phase); delivery follows
// the order of the calls.
func TestPercentageMayGoBackwards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send recorder
		p := progress.NewPublisher(t.Context(), send.fn, nil)
		mustReport(t, p, 50, "phase 1")
		synctest.Wait()
		mustReport(t, p, 40, "phase 2")
		mustClose(t, p)
		if got := send.percentages(); len(got) != 2 || got[1] != 40 {
			t.Errorf("sent %v, want [50 40]", got)
		}
	})
}

func TestCloseTwiceAndReportAfterClose(t *testing.T) {
	var send recorder
	p := progress.NewPublisher(t.Context(), send.fn, nil)
	mustReport(t, p, 100, "")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := p.Close(t.Context()); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := p.Report(1, ""); !errors.Is(err, progress.ErrClosed) {
		t.Errorf("Report after Close = %v, want ErrClosed", err)
	}
	if got := send.percentages(); len(got) != 1 || got[0] != 100 {
		t.Errorf("sent %v, want [100] exactly once", got)
	}
}

// When the processor's context ends, delivery stops, Report refuses, and
// Close says the pending update was not delivered.
func TestPublisherContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var send recorder
		ctx, cancel := context.WithCancel(t.Context())
		p := progress.NewPublisher(ctx, send.fn, nil)
		mustReport(t, p, 1, "")
		synctest.Wait()
		mustReport(t, p, 2, "") // waits for its rate slot
		cancel()
		synctest.Wait()
		if err := p.Report(3, ""); !errors.Is(err, progress.ErrClosed) {
			t.Errorf("Report after the context ended = %v, want ErrClosed", err)
		}
		if err := p.Close(t.Context()); !errors.Is(err, context.Canceled) {
			t.Errorf("Close = %v, want an error wrapping context.Canceled", err)
		}
		if got := send.percentages(); len(got) != 1 {
			t.Errorf("sent %v after the context ended", got)
		}
	})
}

// Both steps receive the context given to NewPublisher, not a fresh one.
func TestStepsRunWithPublisherContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "processor")
	var seen []any
	var mu sync.Mutex
	record := func(ctx context.Context, _ progress.Update) error {
		mu.Lock()
		seen = append(seen, ctx.Value(key{}))
		mu.Unlock()
		return nil
	}
	p := progress.NewPublisher(ctx, record, record)
	mustReport(t, p, 1, "")
	mustClose(t, p)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "processor" || seen[1] != "processor" {
		t.Errorf("steps saw context values %v, want the publisher's twice", seen)
	}
}

func TestNilStepsDiscard(t *testing.T) {
	p := progress.NewPublisher(t.Context(), nil, nil)
	mustReport(t, p, 50, "")
	mustClose(t, p)
}

func BenchmarkReport(b *testing.B) {
	p := progress.NewPublisher(b.Context(), func(context.Context, progress.Update) error { return nil }, nil)
	defer p.Close(b.Context())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := p.Report(float64(i%101), "working"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReportParallel(b *testing.B) {
	p := progress.NewPublisher(b.Context(), func(context.Context, progress.Update) error { return nil }, nil)
	defer p.Close(b.Context())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Report(42, "working"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkReportDetails(b *testing.B) {
	p := progress.NewPublisher(b.Context(), func(context.Context, progress.Update) error { return nil }, nil)
	defer p.Close(b.Context())
	details := map[string]int{"rows": 1200, "of": 5000}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.ReportDetails(24, "importing", details); err != nil {
			b.Fatal(err)
		}
	}
}
