package streamer_test

// Recovery of async requests, end to end on real WebSocket clients, the
// local gateway and both stores: a record that vanishes mid-run ends with
// REQUEST_LOST at the client; a worker that cannot renew its lease stops
// its handler and another worker re-runs the request (attempts 1, 2); a
// request a dead worker held is taken over when its lease ends, not at the
// next periodic sweep.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// vanishingBackend is a store and a way to make one request's record
// disappear from it, as a deletion, an expiry or a restore without it
// would.
type vanishingBackend struct {
	stores func(testing.TB) (store.ConnectionStore, store.RequestStore)
	vanish func(t testing.TB, requestID string)
	// routerOpts are what the router needs for vanish to work.
	routerOpts []streamer.Option
}

func vanishingBackends(t *testing.T, fn func(t *testing.T, b vanishingBackend)) {
	t.Run("memory", func(t *testing.T) {
		// The memory store has no delete: the record expires instead,
		// by moving the store's clock past the request's TTL (an hour)
		// but not the connections' (two).
		var offset atomic.Int64
		st := memory.New(memory.WithClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
		fn(t, vanishingBackend{
			stores:     func(testing.TB) (store.ConnectionStore, store.RequestStore) { return st, st },
			vanish:     func(testing.TB, string) { offset.Store(int64(time.Hour + time.Minute)) },
			routerOpts: []streamer.Option{streamer.WithRequestTTL(time.Hour)},
		})
	})
	t.Run("dynamodb", func(t *testing.T) {
		client := dynamotest.Client(t)
		prefix := dynamotest.Tables(t, client, "lost")
		st := dynamo.New(client, dynamo.WithPrefix(prefix))
		fn(t, vanishingBackend{
			stores: func(testing.TB) (store.ConnectionStore, store.RequestStore) { return st, st },
			vanish: func(t testing.TB, requestID string) {
				_, err := client.DeleteItem(context.WithoutCancel(t.Context()), &dynamodb.DeleteItemInput{
					TableName: aws.String(dynamo.RequestsTable(prefix)),
					Key:       map[string]types.AttributeValue{dynamo.AttrRequestID: &types.AttributeValueMemberS{Value: requestID}},
				})
				if err != nil {
					t.Fatalf("DeleteItem: %v", err)
				}
			},
		})
	})
}

func finalFor(id string) func(wire) bool {
	return func(w wire) bool { return w.RequestID == id && (w.Type == "complete" || w.Type == "error") }
}

// TestE2ERecordVanishedMidRunEndsWithRequestLost: the request's record
// disappears while its handler runs; the next store write (progress or
// lease renewal) finds it gone, the handler is stopped, and the client
// gets exactly one final error, REQUEST_LOST, instead of waiting forever.
func TestE2ERecordVanishedMidRunEndsWithRequestLost(t *testing.T) {
	vanishingBackends(t, func(t *testing.T, b vanishingBackend) {
		s := startStackWith(t, b.stores, b.routerOpts, fastProgress, streamer.WithLease(3*time.Second))
		c := s.dial(t, e2eToken(t, "alice", "t1"))
		ack := c.roundTrip(t, `{"type":"request","id":"long","action":"report","payload":{"steps":200,"delay_ms":50}}`)
		if ack.Type != "ack" || ack.Attempt != 1 {
			t.Fatalf("ack %+v, want attempt 1", ack)
		}
		c.until(t, func(w wire) bool { return w.Type == "progress" && w.RequestID == ack.RequestID })
		b.vanish(t, ack.RequestID)

		got := c.until(t, finalFor(ack.RequestID))
		final := got[len(got)-1]
		if final.Type != "error" || final.Code != string(protocol.CodeRequestLost) {
			t.Fatalf("final message %+v, want error %s", final, protocol.CodeRequestLost)
		}
		// Nothing else about the request follows: one final message.
		for _, w := range c.flush(t) {
			if finalFor(ack.RequestID)(w) {
				t.Fatalf("second final message %+v", w)
			}
		}
		if n := s.cancelled.Load(); n != 1 {
			t.Errorf("handler stopped %d times, want 1 (it must not run on for nothing)", n)
		}
	})
}

// errPartitioned is what a worker cut off from the store gets.
var errPartitioned = errors.New("test: store unreachable from this worker")

// partitioned is a request store that one worker reaches through: while
// cut, every write it makes fails as if the network to the store were
// down. Reads still work, so the test can watch.
type partitioned struct {
	store.RequestStore
	cut atomic.Bool
}

func (p *partitioned) err() error {
	if p.cut.Load() {
		return errPartitioned
	}
	return nil
}

func (p *partitioned) Claim(ctx context.Context, id, owner string, lease time.Duration) (*store.AsyncRequest, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.RequestStore.Claim(ctx, id, owner, lease)
}

func (p *partitioned) RenewLease(ctx context.Context, id, owner string, lease time.Duration) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.RequestStore.RenewLease(ctx, id, owner, lease)
}

func (p *partitioned) UpdateProgress(ctx context.Context, id, owner string, percent float64, message string) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.RequestStore.UpdateProgress(ctx, id, owner, percent, message)
}

func (p *partitioned) Requeue(ctx context.Context, id, owner string, e store.RequestError, maxAttempts int) (*store.AsyncRequest, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.RequestStore.Requeue(ctx, id, owner, e, maxAttempts)
}

// TestE2ELeaseRenewalFailingPastExpiryStopsTheHandlerAndAnotherWorkerRunsIt:
// worker A loses the store mid-run. Its lease cannot be renewed, so when
// the lease runs out A stops the handler (its result could no longer be
// stored), and worker B, whose sweep finds the expired lease, runs the
// request again. The client, connected through A's gateway, sees progress
// of attempt 1, then of attempt 2, and exactly one complete.
func TestE2ELeaseRenewalFailingPastExpiryStopsTheHandlerAndAnotherWorkerRunsIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		conns, requests := newStores(t)
		cutA := &partitioned{RequestStore: requests}
		// Long enough that a loaded machine renews in time through
		// DynamoDB (a lease that runs out for that reason stops B's run
		// too, and B runs it a second time): at a load of about 17 on two
		// cores, 1.5 s was not. The job lasts twice the lease, so A is
		// still running when its lease ends.
		lease := streamer.WithLease(3 * time.Second)
		a := startStack(t, func(testing.TB) (store.ConnectionStore, store.RequestStore) { return conns, cutA },
			fastProgress, lease, streamer.WithSweepInterval(time.Hour), streamer.WithOwner("worker-a"))
		b := startStack(t, func(testing.TB) (store.ConnectionStore, store.RequestStore) { return conns, requests },
			fastProgress, lease, streamer.WithSweepInterval(100*time.Millisecond), streamer.WithOwner("worker-b"))

		c := a.dial(t, e2eToken(t, "alice", "t1"))
		ack := c.roundTrip(t, `{"type":"request","id":"job","action":"report","payload":{"steps":80,"delay_ms":75}}`)
		if ack.Type != "ack" || ack.Attempt != 1 {
			t.Fatalf("ack %+v, want attempt 1", ack)
		}
		c.until(t, func(w wire) bool { return w.Type == "progress" && w.Attempt == 1 })
		cutA.cut.Store(true)

		got := c.until(t, finalFor(ack.RequestID))
		if final := got[len(got)-1]; final.Type != "complete" {
			t.Fatalf("final message %+v, want complete", final)
		}
		attempts := map[int]bool{}
		for _, w := range got {
			if w.Type == "progress" {
				attempts[w.Attempt] = true
			}
		}
		if !attempts[2] || len(attempts) > 2 {
			t.Errorf("progress attempts %v, want attempt 2 after attempt 1", attempts)
		}
		for _, w := range c.flush(t) {
			if finalFor(ack.RequestID)(w) {
				t.Fatalf("second final message %+v", w)
			}
		}
		if runsA, runsB := a.reportRuns()[ack.RequestID], b.reportRuns()[ack.RequestID]; runsA != 1 || runsB != 1 {
			t.Errorf("runs: A %d, B %d, want 1 each", runsA, runsB)
		}
		if n := a.cancelled.Load(); n != 1 {
			t.Errorf("A's handler stopped %d times, want 1", n)
		}
		stored, err := requests.GetRequest(t.Context(), ack.RequestID)
		if err != nil || stored.Status != store.StatusCompleted || stored.Attempts != 1 {
			t.Errorf("stored %+v, %v: want COMPLETED after one take-over", stored, err)
		}
	})
}

// TestE2EResumeTakesOverWhenTheDeadWorkersLeaseEnds: a worker died holding
// a request (its lease still runs). The client resumes on another process
// whose periodic sweep is an hour away: that process looks again when the
// lease ends and runs the request, so the client gets its result after the
// lease, not after the sweep interval.
func TestE2EResumeTakesOverWhenTheDeadWorkersLeaseEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		conns, requests := newStores(t)
		s := startStack(t, func(testing.TB) (store.ConnectionStore, store.RequestStore) { return conns, requests },
			fastProgress, streamer.WithSweepInterval(time.Hour))
		// The dead worker's request: queued by alice from a connection
		// that died with it, claimed, and never renewed again.
		ar := &store.AsyncRequest{
			RequestID: "r-dead-worker", ClientRequestID: "job", ConnectionID: "conn-gone",
			UserID: "alice", TenantID: "t1", Action: "report", Payload: []byte(`{"steps":2}`),
			TTL: time.Now().Add(time.Hour).Unix(),
		}
		if err := requests.Enqueue(t.Context(), ar); err != nil {
			t.Fatal(err)
		}
		if _, err := requests.Claim(t.Context(), ar.RequestID, "dead-worker", 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}

		c := s.dial(t, e2eToken(t, "alice", "t1"))
		if w := c.roundTrip(t, `{"type":"resume","request_id":"r-dead-worker"}`); w.Type != "progress" || w.Attempt != 1 {
			t.Fatalf("resume while the dead worker's lease runs: %+v", w)
		}
		got := c.until(t, finalFor(ar.RequestID))
		if final := got[len(got)-1]; final.Type != "complete" {
			t.Fatalf("final message %+v, want complete", final)
		}
		for _, w := range got[:len(got)-1] {
			if w.Type == "progress" && w.Attempt != 2 {
				t.Errorf("progress of the take-over %+v, want attempt 2", w)
			}
		}
		if n := s.reportRuns()[ar.RequestID]; n != 1 {
			t.Errorf("ran %d times, want 1", n)
		}
	})
}

// TestShutdownRequeuesCutRequestsWithoutUsingUpAttempts: at Shutdown's
// deadline a running handler is cancelled and its request put back
// PENDING, even on its last allowed attempt (shutdown is not the
// request's failure), and a queued request that had not started is not
// claimed.
func TestShutdownRequeuesCutRequestsWithoutUsingUpAttempts(t *testing.T) {
	e := newEnv(t)
	started, ended := make(chan string, 4), make(chan error, 4)
	e.router.HandleAsync("long", blockingHandler(started, ended))
	p := e.processor(fastProgress, streamer.WithMaxAttempts(1), streamer.WithWorkers(1), streamer.WithSweepInterval(0))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c1", "alice", "")
	e.send(t, "c1", `{"type":"request","id":"a","action":"long"}`)
	<-started
	e.send(t, "c1", `{"type":"request","id":"b","action":"long"}`) // waits for the one worker
	var first, second wire
	for _, m := range e.sent.messages("c1") {
		switch {
		case m.Type == "ack" && m.ID == "a":
			first = m
		case m.Type == "ack" && m.ID == "b":
			second = m
		}
	}
	if first.RequestID == "" || second.RequestID == "" {
		t.Fatalf("acks missing: %+v", e.sent.messages("c1"))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ended with %v", err)
	}
	for _, id := range []string{first.RequestID, second.RequestID} {
		got, err := e.store.GetRequest(t.Context(), id)
		if err != nil || got.Status != store.StatusPending {
			t.Errorf("%s: %+v, %v; want PENDING", id, got, err)
		}
	}
	if got, _ := e.store.GetRequest(t.Context(), first.RequestID); got.Attempts != 1 {
		t.Errorf("cut request's attempts %d, want 1 (the next run is attempt 2)", got.Attempts)
	}
	select {
	case id := <-started:
		t.Errorf("%s started during shutdown", id)
	default:
	}
	for _, m := range e.sent.messages("c1") {
		if m.Type == "error" || m.Type == "complete" {
			t.Errorf("final message at shutdown %+v; the request is only paused", m)
		}
	}
}

// TestRetryCarriesTheNextAttemptNumber: a retryable failure puts the
// request back, and the progress of the re-run says attempt 2.
func TestRetryCarriesTheNextAttemptNumber(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	runs := 0
	e.router.HandleAsyncFunc("flaky", func(ctx context.Context, _ *streamer.Request, p progress.Reporter) (any, error) {
		mu.Lock()
		runs++
		n := runs
		mu.Unlock()
		if err := p.Report(50, "half"); err != nil {
			return nil, err
		}
		if n == 1 {
			return nil, streamer.Retryable(errors.New("upstream busy"))
		}
		return "ok", nil
	})
	p := e.processor(fastProgress, streamer.WithRetryBackoff(time.Millisecond, time.Millisecond))
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"f","action":"flaky"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	var attempts []int
	for _, m := range e.sent.messages("c1") {
		if m.Type == "progress" {
			attempts = append(attempts, m.Attempt)
		}
	}
	if len(attempts) != 2 || attempts[0] != 1 || attempts[1] != 2 {
		t.Fatalf("progress attempts %v, want [1 2]", attempts)
	}
	if w := e.sent.last(t, "c1"); w.Type != "complete" {
		t.Fatalf("last %+v", w)
	}
	// A resubmission's ack tells the attempt too.
	e.send(t, "c1", `{"type":"request","id":"f","action":"flaky"}`)
	ms := e.sent.messages("c1")
	if again := ms[len(ms)-2]; again.Type != "ack" || again.Attempt != 2 {
		t.Fatalf("resubmission ack %+v, want attempt 2", again)
	}
}
