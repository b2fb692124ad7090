package streamer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// TestWithAsyncTimeout: the processor's default run timeout ends a run
// that does not finish in time with TIMEOUT; an action's own Timeout
// overrides it.
func TestWithAsyncTimeout(t *testing.T) {
	e := newEnv(t)
	e.router.HandleAsyncFunc("slow", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	e.router.HandleAsyncFunc("patient", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
			return "done", nil
		}
	}, streamer.Timeout(time.Minute))
	p := e.processor(streamer.WithAsyncTimeout(20 * time.Millisecond))
	e.connect(t, "c1", "alice", "")

	ack := e.reply(t, "c1", `{"type":"request","id":"s","action":"slow"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := e.sent.last(t, "c1"); w.Type != "error" || w.Code != "TIMEOUT" {
		t.Fatalf("slow run ended with %+v, want TIMEOUT", w)
	}

	ack = e.reply(t, "c1", `{"type":"request","id":"p","action":"patient"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := e.sent.last(t, "c1"); w.Type != "complete" {
		t.Fatalf("an action with its own Timeout: %+v, want complete", w)
	}
}

// TestProcessorOwner: each processor has its own lease owner name, and a
// run claims its request under it.
func TestProcessorOwner(t *testing.T) {
	e := newEnv(t)
	claimed := make(chan string, 1)
	e.router.HandleAsyncFunc("peek", func(ctx context.Context, req *streamer.Request, _ progress.Reporter) (any, error) {
		r, err := e.store.GetRequest(ctx, req.RequestID)
		if err != nil {
			return nil, err
		}
		claimed <- r.LeaseOwner
		return nil, nil
	})
	p, q := e.processor(), e.processor()
	if p.Owner() == "" || p.Owner() == q.Owner() {
		t.Fatalf("owners %q and %q: want two distinct names", p.Owner(), q.Owner())
	}
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"o","action":"peek"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if owner := <-claimed; !strings.HasPrefix(owner, p.Owner()+"/") {
		t.Errorf("the run claimed the request as %q, want %q/<run>", owner, p.Owner())
	}
}

// TestConnectOptions: the record $connect stores takes its time from
// WithConnectClock, its lifetime from WithConnectionTTL and its
// management endpoint from WithEndpointFunc.
func TestConnectOptions(t *testing.T) {
	st := memory.New()
	now := time.Now().Add(time.Hour).Truncate(time.Second)
	h := streamer.NewConnectHandler(st,
		streamer.WithConnectClock(func() time.Time { return now }),
		streamer.WithConnectionTTL(10*time.Minute),
		streamer.WithEndpointFunc(func(r streamer.ConnectRequest) string { return "https://ws.example.com/" + r.Stage }),
	)
	err := h.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "c1", DomainName: "abc.execute-api.eu-west-1.amazonaws.com", Stage: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Get(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !c.ConnectedAt.Equal(now) || c.TTL != now.Add(10*time.Minute).Unix() || c.Endpoint != "https://ws.example.com/prod" {
		t.Errorf("record: connected %v (want %v), TTL %d (want %d), endpoint %q", c.ConnectedAt, now, c.TTL, now.Add(10*time.Minute).Unix(), c.Endpoint)
	}

	// The defaults: time.Now, DefaultConnectionTTL, https://{domain}/{stage}.
	d := streamer.NewConnectHandler(st, streamer.WithConnectionTTL(0), streamer.WithEndpointFunc(nil), streamer.WithConnectClock(nil))
	before := time.Now()
	if err := d.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "c2", DomainName: "abc.example.com", Stage: "prod"}); err != nil {
		t.Fatal(err)
	}
	c, err = st.Get(t.Context(), "c2")
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://abc.example.com/prod" || c.TTL < before.Add(streamer.DefaultConnectionTTL).Unix() || c.TTL > time.Now().Add(streamer.DefaultConnectionTTL).Unix() {
		t.Errorf("defaults: endpoint %q, TTL %d", c.Endpoint, c.TTL)
	}
}
