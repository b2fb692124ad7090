package streamer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// Stats counts each outcome once: a completion, a failure, a retry before
// a success, a request that fails at its retry limit, and a duplicate
// delivery that runs nothing.
func TestProcessorStatsCountOutcomes(t *testing.T) {
	e := newEnvQueue(t, streamer.NewQueue(7))
	var flaky atomic.Int32
	e.router.HandleAsyncFunc("ok", func(context.Context, *streamer.Request, progress.Reporter) (any, error) { return "ok", nil })
	e.router.HandleAsyncFunc("bad", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return nil, errors.New("bug")
	})
	e.router.HandleAsyncFunc("flaky", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		if flaky.Add(1) < 2 {
			return nil, streamer.Retryable(errors.New("503"))
		}
		return "ok", nil
	})
	e.router.HandleAsyncFunc("down", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return nil, streamer.Retryable(errors.New("still down"))
	})
	p := e.processor(streamer.WithRetryBackoff(time.Millisecond, time.Millisecond), streamer.WithMaxAttempts(2))
	if st := p.Stats(); st != (streamer.ProcessorStats{QueueCapacity: 7}) {
		t.Fatalf("fresh stats %+v", st)
	}
	e.connect(t, "c1", "alice", "")
	var okID string
	for _, action := range []string{"ok", "bad", "flaky", "down"} {
		ack := e.reply(t, "c1", `{"type":"request","id":"`+action+`","action":"`+action+`"}`)
		if action == "ok" {
			okID = ack.RequestID
		}
		if err := p.Process(t.Context(), ack.RequestID); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Process(t.Context(), okID); err != nil { // a duplicate delivery
		t.Fatal(err)
	}
	// ok completes; bad fails; flaky is retried once, then completes;
	// down is retried once and fails at the limit of 2 attempts; the
	// duplicate delivery of ok counts nothing.
	got := p.Stats()
	want := streamer.ProcessorStats{QueueCapacity: 7, Completed: 2, Failed: 2, Retried: 2}
	if got != want {
		t.Errorf("Stats = %+v, want %+v (flaky ran %d times)", got, want, flaky.Load())
	}
}
