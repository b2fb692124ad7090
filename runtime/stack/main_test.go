package stack_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/runtime/stack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the functions' output goroutines
// and the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// running is a stack started for a test, with what it printed.
type running struct {
	*stack.Stack
	notices, output *syncBuffer
}

// start starts cfg's stack with its start-up lines, the functions' output
// and the logs captured, and shuts it down when the test ends (logging
// what was captured if the test failed).
func start(t *testing.T, cfg stack.Config) *running {
	t.Helper()
	r := &running{notices: &syncBuffer{}, output: &syncBuffer{}}
	cfg.Notices = r.notices
	cfg.FunctionOutput = r.output
	cfg.Logger = slog.New(slog.NewTextHandler(r.output, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, r.output.String())
	}
	r.Stack = s
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop shuts the stack down; a second call does nothing.
func (r *running) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if t.Failed() {
		t.Logf("start-up lines:\n%s\noutput:\n%s", r.notices.String(), r.output.String())
	}
}

type client struct {
	t testing.TB
	c *websocket.Conn
}

func dial(ctx context.Context, t testing.TB, url string, opts *websocket.DialOptions) *client {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, c: c}
}

func (c *client) send(ctx context.Context, msg string) {
	c.t.Helper()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one message as text.
func (c *client) read(ctx context.Context) string {
	c.t.Helper()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// short skips tests that start real function processes under -short.
func short(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts function processes")
	}
}
