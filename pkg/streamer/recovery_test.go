package streamer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// lossyStore fails the final writes of a run as a store outage does: the
// call errors, and the write either happened (the answer was lost) or not.
type lossyStore struct {
	*memory.Store
	failFinal atomic.Bool
	landed    atomic.Bool // the write is made before the error
}

func (s *lossyStore) Complete(ctx context.Context, id, owner string, result json.RawMessage) (*store.AsyncRequest, error) {
	if !s.failFinal.Load() {
		return s.Store.Complete(ctx, id, owner, result)
	}
	if s.landed.Load() {
		if _, err := s.Store.Complete(ctx, id, owner, result); err != nil {
			return nil, err
		}
	}
	return nil, errPartitioned
}

// syncLog is a slog destination the test reads while the processor writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An outcome the processor could not write (the store failed the call) is
// not forgotten: when the store answers again, the pool finds out what
// happened and tells the client, exactly once.
func TestOutcomeOfAStoreOutageReachesTheClientWhenTheStoreAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		landed bool
		want   func(wire) bool
	}{
		{"write landed", true, func(w wire) bool { return w.Type == "complete" }},
		{"record vanished", false, func(w wire) bool { return w.Type == "error" && w.Code == string(protocol.CodeRequestLost) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var offset atomic.Int64
			st := &lossyStore{Store: memory.New(memory.WithClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))}
			rec := newRecorder()
			q := streamer.NewQueue(0)
			r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st), streamer.WithRequestTTL(30*time.Minute), streamer.WithQueue(q))
			e := &env{store: st.Store, sent: rec, router: r, requests: st, conns: st, queue: q}
			release := make(chan struct{})
			r.HandleAsyncFunc("wait", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
				<-release
				return "done", nil
			})
			var logs syncLog
			p := e.processor(fastProgress, streamer.WithSweepInterval(time.Hour),
				streamer.WithProcessorLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = p.Shutdown(context.WithoutCancel(t.Context()))
				if t.Failed() {
					t.Logf("processor log:\n%s", logs.String())
				}
			})
			e.connect(t, "c1", "alice", "")
			ack := e.reply(t, "c1", `{"type":"request","id":"w","action":"wait"}`)
			st.failFinal.Store(true)
			st.landed.Store(tc.landed)
			close(release)
			// The run ends without an outcome the client could see.
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(logs.String(), "completing "+ack.RequestID) {
				if time.Now().After(deadline) {
					t.Fatalf("the failed Complete was never reported:\n%s", logs.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !tc.landed {
				offset.Store(int64(31 * time.Minute)) // the record expires, the connection (1 h) does not
			}
			got := rec.waitFor(t, "c1", func(w wire) bool { return w.RequestID == ack.RequestID && tc.want(w) })
			time.Sleep(1500 * time.Millisecond) // another recheck round would send it again
			n := 0
			for _, w := range rec.messages("c1") {
				if w.RequestID == ack.RequestID && (w.Type == "complete" || w.Type == "error") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d final messages (first %+v), want 1", n, got)
			}
		})
	}
}

// Failing renewals are logged at WARN with a running count, and the run is
// stopped once its lease has run out.
func TestFailingRenewalsAreLoggedWithACountAndStopTheRun(t *testing.T) {
	st := memory.New()
	cut := &partitioned{RequestStore: st}
	rec := newRecorder()
	r := streamer.NewRouter(cut, rec, streamer.WithConnectionStore(st))
	e := &env{store: st, sent: rec, router: r, requests: cut}
	stopped := make(chan error, 1)
	r.HandleAsyncFunc("quiet", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		cut.cut.Store(true)
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	var logs syncLog
	p := e.processor(streamer.WithLease(300*time.Millisecond), streamer.WithProcessorLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"q","action":"quiet"}`)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() { _ = p.Process(ctx, ack.RequestID) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("the handler was not stopped")
	}
	cancel()
	l := logs.String()
	for _, want := range []string{`level=WARN msg="renewing lease failed"`, "failed_renewals=1", `level=WARN msg="lease expired without renewal`, "request_id=" + ack.RequestID} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

// slowFinals is a Sender whose first sends of final messages time out, as
// they do on a machine so loaded that the store read and the POST of a
// send take longer than the processor's budget for them: the connection
// is fine, the send just did not finish in time.
type slowFinals struct {
	*recorder
	timeouts atomic.Int32 // finals still to time out
}

func (s *slowFinals) Send(ctx context.Context, connectionID string, message any) error {
	switch message.(type) {
	case protocol.Complete, *protocol.Complete, protocol.Error, *protocol.Error:
		if s.timeouts.Add(-1) >= 0 {
			return fmt.Errorf("connection: send to %s: %w", connectionID, context.DeadlineExceeded)
		}
	}
	return s.recorder.Send(ctx, connectionID, message)
}

// A final message whose send failed although the client's connection is
// alive reaches the client without a resume (a client that never lost
// its socket has no reason to send one), exactly once.
func TestFinalThatTimedOutIsSentAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timeouts int32
		steps    string
		want     func(wire) bool
	}{
		{"complete, once", 1, "ok", isType("complete")},
		{"complete, twice", 2, "ok", isType("complete")},
		{"error", 1, "fail", func(w wire) bool { return w.Type == "error" && w.Code == "INVALID_MESSAGE" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := memory.New()
			sender := &slowFinals{recorder: newRecorder()}
			sender.timeouts.Store(tc.timeouts)
			q := streamer.NewQueue(0)
			r := streamer.NewRouter(st, sender, streamer.WithConnectionStore(st), streamer.WithQueue(q))
			e := &env{store: st, sent: sender.recorder, router: r, sender: sender, queue: q}
			r.HandleAsyncFunc("job", func(ctx context.Context, req *streamer.Request, _ progress.Reporter) (any, error) {
				if string(req.Payload) == `"fail"` {
					return nil, streamer.NewClientError(protocol.CodeInvalidMessage, "no")
				}
				return "done", nil
			})
			var logs syncLog
			p := e.processor(fastProgress, streamer.WithSweepInterval(time.Hour),
				streamer.WithProcessorLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = p.Shutdown(context.WithoutCancel(t.Context()))
				if t.Failed() {
					t.Logf("processor log:\n%s", logs.String())
				}
			})
			e.connect(t, "c1", "alice", "")
			ack := e.reply(t, "c1", `{"type":"request","id":"j","action":"job","payload":"`+tc.steps+`"}`)
			got := sender.waitFor(t, "c1", func(w wire) bool { return w.RequestID == ack.RequestID && tc.want(w) })
			// Wait out one more redelivery round: a second copy would come
			// with it.
			time.Sleep(1500 * time.Millisecond)
			n := 0
			for _, w := range sender.messages("c1") {
				if w.RequestID == ack.RequestID && (w.Type == "complete" || w.Type == "error") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d final messages (first %+v), want 1", n, got)
			}
			if !strings.Contains(logs.String(), "final message delivered on a later try") {
				t.Fatalf("the redelivery was not logged:\n%s", logs.String())
			}
		})
	}
}
