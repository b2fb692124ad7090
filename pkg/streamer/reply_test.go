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

// hangingStore is a store whose reads of connections and requests block
// until their context ends, like a DynamoDB server that stopped answering.
type hangingStore struct{ *memory.Store }

func (hangingStore) Get(ctx context.Context, _ string) (*store.Connection, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (hangingStore) GetRequest(ctx context.Context, _ string) (*store.AsyncRequest, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

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

// TestResumeIsAnsweredWithinASecondWhenTheStoreHangs: the store stops
// answering; a resume still gets an answer, at once.
func TestResumeIsAnsweredWithinASecondWhenTheStoreHangs(t *testing.T) {
	st := hangingStore{memory.New()}
	rec := newRecorder()
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.HandleMessage(ctx, streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"resume","request_id":"r-1"}`)}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second { // each store read of a resume is bounded at 450 ms
		t.Errorf("resume answered after %s", took)
	}
	if w := rec.last(t, "c1"); w.Type != "error" || w.RequestID != "r-1" {
		t.Fatalf("answer %+v", w)
	}
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
