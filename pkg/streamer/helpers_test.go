package streamer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// wire is a decoded outbound message, with every field any message has.
type wire struct {
	V          int             `json:"v"`
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	RequestID  string          `json:"request_id"`
	Action     string          `json:"action"`
	Data       json.RawMessage `json:"data"`
	Result     json.RawMessage `json:"result"`
	Percentage float64         `json:"percentage"`
	Message    string          `json:"message"`
	Code       string          `json:"code"`
	Attempt    int             `json:"attempt"`
}

// recorder is a Sender that keeps what each connection received, encoded
// like the real Manager, and answers ErrConnectionStale for gone ones.
type recorder struct {
	mu     sync.Mutex
	got    map[string][]wire
	gone   map[string]bool
	notify chan struct{}
}

func newRecorder() *recorder {
	return &recorder{got: map[string][]wire{}, gone: map[string]bool{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) Send(ctx context.Context, connectionID string, message any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := connection.Encode(message)
	if err != nil {
		return err
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	r.mu.Lock()
	if r.gone[connectionID] {
		r.mu.Unlock()
		return fmt.Errorf("recorder: %s: %w", connectionID, connection.ErrConnectionStale)
	}
	r.got[connectionID] = append(r.got[connectionID], w)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) setGone(connectionID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone[connectionID] = true
}

func (r *recorder) messages(connectionID string) []wire {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wire(nil), r.got[connectionID]...)
}

// waitFor waits until connectionID has received a message matching ok.
func (r *recorder) waitFor(t *testing.T, connectionID string, ok func(wire) bool) wire {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for _, w := range r.messages(connectionID) {
			if ok(w) {
				return w
			}
		}
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("connection %s never received the expected message; got %+v", connectionID, r.messages(connectionID))
		}
	}
}

func (r *recorder) last(t *testing.T, connectionID string) wire {
	t.Helper()
	ms := r.messages(connectionID)
	if len(ms) == 0 {
		t.Fatalf("connection %s received nothing", connectionID)
	}
	return ms[len(ms)-1]
}

func isType(typ string) func(wire) bool { return func(w wire) bool { return w.Type == typ } }

// env is a router over a memory store with a recorder, and what a
// Processor for it shares with it (see processor).
type env struct {
	store  *memory.Store
	sent   *recorder
	router *streamer.Router

	// Where the router's dependencies differ from store and sent.
	requests store.RequestStore
	conns    store.ConnectionStore
	sender   streamer.Sender
	clock    func() time.Time
	queue    *streamer.Queue // the router's, if it has one
}

func newEnv(t *testing.T, opts ...streamer.Option) *env {
	t.Helper()
	return newEnvQueue(t, streamer.NewQueue(0), opts...)
}

// newEnvQueue is newEnv whose router and processors share q.
func newEnvQueue(t *testing.T, q *streamer.Queue, opts ...streamer.Option) *env {
	t.Helper()
	st := memory.New()
	rec := newRecorder()
	all := append([]streamer.Option{streamer.WithConnectionStore(st), streamer.WithQueue(q)}, opts...)
	return &env{store: st, sent: rec, router: streamer.NewRouter(st, rec, all...), queue: q}
}

// processor builds the Processor for e's router as an application wires
// one: the router's request store, sender, actions, connection store,
// clock and Queue, then opts.
func (e *env) processor(opts ...streamer.ProcessorOption) *streamer.Processor {
	requests, conns, sender := e.requests, e.conns, e.sender
	if requests == nil {
		requests = e.store
	}
	if conns == nil {
		conns = e.store
	}
	if sender == nil {
		sender = e.sent
	}
	base := []streamer.ProcessorOption{streamer.WithProcessorConnections(conns), streamer.WithProcessorQueue(e.queue)}
	if e.clock != nil {
		base = append(base, streamer.WithProcessorClock(e.clock))
	}
	return streamer.NewProcessor(requests, sender, e.router.Actions(), append(base, opts...)...)
}

// connect stores a connection record as the $connect handler would.
func (e *env) connect(t *testing.T, connectionID, user, tenant string, perms ...string) {
	t.Helper()
	err := e.store.Save(t.Context(), &store.Connection{
		ConnectionID: connectionID, UserID: user, TenantID: tenant, Permissions: perms,
		ConnectedAt: time.Now(), TTL: time.Now().Add(time.Hour).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) send(t *testing.T, connectionID, body string) {
	t.Helper()
	if err := e.router.HandleMessage(t.Context(), streamer.Message{ConnectionID: connectionID, Body: []byte(body)}); err != nil {
		t.Fatalf("HandleMessage: %v", err)
	}
}

// reply sends body and returns the one reply it produced.
func (e *env) reply(t *testing.T, connectionID, body string) wire {
	t.Helper()
	before := len(e.sent.messages(connectionID))
	e.send(t, connectionID, body)
	ms := e.sent.messages(connectionID)[before:]
	// An ack is sent before its request is handed to a started pool, so
	// a worker's frames for that request may already follow it; anything
	// else after the reply is a second reply.
	extra := ms
	if len(ms) > 0 {
		extra = ms[1:]
		if ms[0].Type == "ack" {
			extra = slices.DeleteFunc(slices.Clone(extra), func(w wire) bool { return w.RequestID == ms[0].RequestID })
		}
	}
	if len(ms) == 0 || len(extra) != 0 {
		t.Fatalf("%s: want exactly one reply, got %d: %+v", body, len(ms), ms)
	}
	return ms[0]
}
