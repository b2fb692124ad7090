package streamer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// countingConns counts connection reads.
type countingConns struct {
	store.ConnectionStore
	gets atomic.Int32
}

func (c *countingConns) Get(ctx context.Context, id string) (*store.Connection, error) {
	c.gets.Add(1)
	return c.ConnectionStore.Get(ctx, id)
}

func TestIdentityIsCachedBrieflyAndBounded(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	st := memory.New()
	conns := &countingConns{ConnectionStore: st}
	rec := newRecorder()
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(conns), streamer.WithClock(clock), streamer.WithIdentityCache(time.Second, 1))
	r.HandleFunc("admin", func(context.Context, *streamer.Request) (any, error) { return "ok", nil }, streamer.RequirePermissions("admin"))
	e := &env{store: st, sent: rec, router: r}
	e.connect(t, "a", "alice", "", "admin")
	e.connect(t, "b", "bob", "")

	call := `{"type":"request","id":"1","action":"admin"}`
	e.reply(t, "a", call)
	e.reply(t, "a", call)
	if n := conns.gets.Load(); n != 1 {
		t.Fatalf("%d reads for two messages within the TTL, want 1", n)
	}
	// Permissions revoked in the store take effect once the entry expires.
	e.connect(t, "a", "alice", "")
	if w := e.reply(t, "a", call); w.Type != "response" {
		t.Fatalf("within TTL: %+v", w)
	}
	advance(time.Second)
	if w := e.reply(t, "a", call); w.Code != "FORBIDDEN" {
		t.Fatalf("after TTL: %+v", w)
	}
	// With room for one entry, alternating connections evict each other.
	before := conns.gets.Load()
	for range 3 { // "a" is cached now: start with "b"
		e.reply(t, "b", call)
		e.reply(t, "a", call)
	}
	if n := conns.gets.Load() - before; n != 6 {
		t.Fatalf("%d reads for 6 alternating messages with a 1-entry cache, want 6", n)
	}
}

func TestIdentityCacheCanBeTurnedOff(t *testing.T) {
	st := memory.New()
	conns := &countingConns{ConnectionStore: st}
	rec := newRecorder()
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(conns), streamer.WithIdentityCache(0, 0))
	r.HandleFunc("x", func(context.Context, *streamer.Request) (any, error) { return nil, nil })
	e := &env{store: st, sent: rec, router: r}
	e.connect(t, "a", "alice", "")
	e.reply(t, "a", `{"type":"request","id":"1","action":"x"}`)
	e.reply(t, "a", `{"type":"request","id":"2","action":"x"}`)
	if n := conns.gets.Load(); n != 2 {
		t.Fatalf("%d reads, want 2", n)
	}
}

func TestWithoutConnectionStoreEachConnectionIsItsOwnUser(t *testing.T) {
	st := memory.New()
	rec := newRecorder()
	r := streamer.NewRouter(st, rec)
	r.HandleFunc("who", func(_ context.Context, req *streamer.Request) (any, error) { return req.Identity.UserID, nil })
	e := &env{store: st, sent: rec, router: r}
	a := e.reply(t, "a", `{"type":"request","id":"1","action":"who"}`)
	b := e.reply(t, "b", `{"type":"request","id":"1","action":"who"}`)
	if string(a.Data) == string(b.Data) || string(a.Data) == `""` {
		t.Fatalf("anonymous identities %s and %s", a.Data, b.Data)
	}
}
