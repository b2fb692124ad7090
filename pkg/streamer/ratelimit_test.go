package streamer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestRateLimitPerConnection(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := memory.New()
	rec := newRecorder()
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st), streamer.WithClock(clock), streamer.WithRateLimit(2, 3))
	var runs int
	r.HandleFunc("x", func(context.Context, *streamer.Request) (any, error) { runs++; return nil, nil })
	e := &env{store: st, sent: rec, router: r}
	e.connect(t, "a", "alice", "")
	e.connect(t, "b", "bob", "")

	codes := func(conn string, n int) []string {
		var out []string
		for range n {
			w := e.reply(t, conn, `{"type":"request","id":"q","action":"x"}`)
			out = append(out, w.Type+"/"+w.Code)
		}
		return out
	}
	got := codes("a", 4) // burst of 3, then refused
	want := []string{"response/", "response/", "response/", "error/RATE_LIMITED"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("burst: %v, want %v", got, want)
		}
	}
	if w := e.sent.last(t, "a"); w.RequestID != "q" {
		t.Fatalf("refusal carries no id: %+v", w)
	}
	// Another connection has its own bucket.
	if got := codes("b", 1); got[0] != "response/" {
		t.Fatalf("b: %v", got)
	}
	// Half a second refills one token at 2/s.
	mu.Lock()
	now = now.Add(500 * time.Millisecond)
	mu.Unlock()
	if got := codes("a", 2); got[0] != "response/" || got[1] != "error/RATE_LIMITED" {
		t.Fatalf("after refill: %v", got)
	}
	if runs != 5 {
		t.Fatalf("handler ran %d times, want 5", runs)
	}
}
