package streamer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// endpointRecorder is a recorder that also posts through given endpoints,
// as *connection.Manager does, and remembers which it was asked for.
type endpointRecorder struct {
	*recorder
	mu        sync.Mutex
	endpoints []string
}

func (r *endpointRecorder) SendTo(ctx context.Context, endpoint, connectionID string, message any) error {
	r.mu.Lock()
	r.endpoints = append(r.endpoints, endpoint)
	r.mu.Unlock()
	return r.recorder.Send(ctx, connectionID, message)
}

var _ streamer.EndpointSender = (*endpointRecorder)(nil)

func TestRepliesGoThroughTheMessagesEndpoint(t *testing.T) {
	st := memory.New()
	rec := &endpointRecorder{recorder: newRecorder()}
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st))
	for _, tc := range []struct{ domain, stage, want string }{
		{"abc.execute-api.eu-west-1.amazonaws.com", "prod", "https://abc.execute-api.eu-west-1.amazonaws.com/prod"},
		{"127.0.0.1:4001", "dev", "http://127.0.0.1:4001/dev"},
		{"localhost:4001", "", "http://localhost:4001"},
	} {
		msg := streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"ping"}`), DomainName: tc.domain, Stage: tc.stage}
		if err := r.HandleMessage(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		got := rec.endpoints[len(rec.endpoints)-1]
		rec.mu.Unlock()
		if got != tc.want {
			t.Errorf("%s/%s: replied through %q, want %q", tc.domain, tc.stage, got, tc.want)
		}
	}
	// A message without a domain is answered through Send (the record).
	n := len(rec.endpoints)
	if err := r.HandleMessage(t.Context(), streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"ping"}`)}); err != nil {
		t.Fatal(err)
	}
	if len(rec.endpoints) != n || rec.last(t, "c1").Type != "pong" {
		t.Fatalf("endpoints %v, last %+v", rec.endpoints, rec.last(t, "c1"))
	}
}

// deadlineStore records the deadline of every connection and request
// read and every rebind; the calls named in hang block until their
// context ends, like a DynamoDB server that stopped answering, and the
// others go to the memory store.
type deadlineStore struct {
	*memory.Store
	hang map[string]bool // "Get", "GetRequest", "Rebind"

	mu    sync.Mutex
	calls []deadlineCall
}

type deadlineCall struct {
	op       string
	deadline time.Time // zero: none
}

func (s *deadlineStore) enter(ctx context.Context, op string) error {
	dl, _ := ctx.Deadline()
	s.mu.Lock()
	s.calls = append(s.calls, deadlineCall{op, dl})
	s.mu.Unlock()
	if s.hang[op] {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *deadlineStore) Get(ctx context.Context, id string) (*store.Connection, error) {
	if err := s.enter(ctx, "Get"); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

func (s *deadlineStore) GetRequest(ctx context.Context, id string) (*store.AsyncRequest, error) {
	if err := s.enter(ctx, "GetRequest"); err != nil {
		return nil, err
	}
	return s.Store.GetRequest(ctx, id)
}

func (s *deadlineStore) Rebind(ctx context.Context, id, connectionID string) error {
	if err := s.enter(ctx, "Rebind"); err != nil {
		return err
	}
	return s.Store.Rebind(ctx, id, connectionID)
}

// deadlineSender is a recorder that also records the deadline of each
// send.
type deadlineSender struct {
	*recorder
	mu        sync.Mutex
	deadlines []time.Time
}

func (s *deadlineSender) Send(ctx context.Context, connectionID string, message any) error {
	dl, _ := ctx.Deadline()
	s.mu.Lock()
	s.deadlines = append(s.deadlines, dl)
	s.mu.Unlock()
	return s.recorder.Send(ctx, connectionID, message)
}

// TestResumeIsBoundedByOneDeadlineWhateverTheStoreDoes: whichever store
// call hangs, a resume gets its answer and returns, because everything it
// does runs under one of two deadlines taken when it starts: one that all
// its store reads before the answer share (a slow store costs the client
// that once, not once per read), and one, at most a second away, for the
// answer and the rebind after it. Nothing waits on the caller's own
// context (here ten seconds; API Gateway's integration timeout is 29).
func TestResumeIsBoundedByOneDeadlineWhateverTheStoreDoes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hang       []string
		connected  bool // the resuming connection has a record
		want       func(wire) bool
		wantReads  []string
		wantRebind bool
	}{
		{"connection read hangs", []string{"Get"}, true, codeIs("INTERNAL"), []string{"Get"}, false},
		{"request read hangs", []string{"GetRequest"}, true, codeIs("INTERNAL"), []string{"Get", "GetRequest"}, false},
		{"record gone, request read hangs", []string{"GetRequest"}, false, codeIs("INTERNAL"), []string{"Get", "GetRequest"}, false},
		{"rebind hangs", []string{"Rebind"}, true, isType("progress"), []string{"Get", "GetRequest"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &deadlineStore{Store: memory.New(), hang: map[string]bool{}}
			for _, op := range tc.hang {
				st.hang[op] = true
			}
			if err := st.Store.Enqueue(t.Context(), &store.AsyncRequest{RequestID: "r-1", ConnectionID: "old", UserID: "alice", Action: "work"}); err != nil {
				t.Fatal(err)
			}
			if tc.connected {
				if err := st.Save(t.Context(), &store.Connection{ConnectionID: "c1", UserID: "alice", TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
					t.Fatal(err)
				}
			}
			sent := &deadlineSender{recorder: newRecorder()}
			r := streamer.NewRouter(st, sent, streamer.WithConnectionStore(st), streamer.WithIdentityCache(0, 0))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := r.HandleMessage(ctx, streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"resume","request_id":"r-1"}`)}); err != nil {
				t.Fatal(err)
			}
			returned := time.Now()
			if ctx.Err() != nil {
				t.Fatal("the resume waited for the caller's context to end")
			}
			if w := sent.last(t, "c1"); !tc.want(w) || w.RequestID != "r-1" {
				t.Fatalf("answer %+v", w)
			}

			var reads, rebinds []deadlineCall
			for _, c := range st.calls {
				if c.op == "Rebind" {
					rebinds = append(rebinds, c)
				} else {
					reads = append(reads, c)
				}
			}
			if len(reads) != len(tc.wantReads) || len(rebinds) != map[bool]int{true: 1}[tc.wantRebind] || len(sent.deadlines) != 1 {
				t.Fatalf("calls %+v, %d sends; want reads %v, rebind %v, one send", st.calls, len(sent.deadlines), tc.wantReads, tc.wantRebind)
			}
			answer := sent.deadlines[0]
			if answer.IsZero() || answer.Sub(returned) > time.Second {
				t.Fatalf("the answer was sent under deadline %v, want one at most a second from the start (returned at %v)", answer, returned)
			}
			for i, c := range reads {
				if c.op != tc.wantReads[i] || c.deadline.IsZero() || !c.deadline.Equal(reads[0].deadline) || !c.deadline.Before(answer) {
					t.Errorf("read %d: %s under deadline %v; want %s under the reads' one deadline (%v), before the answer's (%v)",
						i, c.op, c.deadline, tc.wantReads[i], reads[0].deadline, answer)
				}
			}
			for _, c := range rebinds {
				if c.deadline.IsZero() || c.deadline.After(answer) {
					t.Errorf("rebind under deadline %v, want one by the answer's (%v)", c.deadline, answer)
				}
			}
		})
	}
}

func codeIs(code string) func(wire) bool {
	return func(w wire) bool { return w.Type == "error" && w.Code == code }
}

// TestResumeRebindsTheRequestToTheResumingConnection: a client that
// resumes its request from a new connection gets the outcome there, and
// the connection it left gets nothing more.
func TestResumeRebindsTheRequestToTheResumingConnection(t *testing.T) {
	e := newEnv(t)
	e.router.HandleAsyncFunc("work", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return "done", nil
	})
	p := e.processor()
	e.connect(t, "old", "alice", "")
	e.connect(t, "new", "alice", "")
	ack := e.reply(t, "old", `{"type":"request","id":"w","action":"work"}`)
	if w := e.reply(t, "new", `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Type != "progress" || w.Attempt != 1 {
		t.Fatalf("resume answer %+v", w)
	}
	if got, _ := e.store.GetRequest(t.Context(), ack.RequestID); got.ConnectionID != "new" {
		t.Fatalf("stored connection %q, want new", got.ConnectionID)
	}
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := e.sent.last(t, "new"); w.Type != "complete" || w.RequestID != ack.RequestID {
		t.Fatalf("new connection's last message %+v", w)
	}
	for _, w := range e.sent.messages("old") {
		if w.Type == "complete" {
			t.Fatalf("the connection the client left got the outcome: %+v", e.sent.messages("old"))
		}
	}
	// Another user's resume rebinds nothing.
	e.connect(t, "eve", "eve", "")
	if w := e.reply(t, "eve", `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Code != "NOT_FOUND" {
		t.Fatalf("eve's resume %+v", w)
	}
	if got, _ := e.store.GetRequest(t.Context(), ack.RequestID); got.ConnectionID != "new" {
		t.Fatalf("stored connection %q after another user's resume", got.ConnectionID)
	}
}
