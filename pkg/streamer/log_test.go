package streamer_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// logBuffer is a goroutine-safe sink for a JSON slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

func newLogger(b *logBuffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: level}))
}

// No token reaches any log line of the $connect handler, at any level,
// whether it is refused or accepted, in the header or the query.
func TestConnectNeverLogsTokens(t *testing.T) {
	var logs logBuffer
	h := streamer.NewConnectHandler(memory.New(), streamer.WithVerifier(testVerifier(t)),
		streamer.WithConnectLogger(newLogger(&logs, slog.LevelDebug)))
	expired := validClaims("eve")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	wrongAud := validClaims("eve")
	wrongAud["aud"] = "someone-else"
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims("eve")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{
		signToken(t, validClaims("alice"), testSecret),
		signToken(t, expired, testSecret),
		signToken(t, wrongAud, testSecret),
		signToken(t, validClaims("eve"), []byte("another-secret-another-secret-another")),
		none,
		"opaque-api-key-that-is-no-jwt",
	}
	for i, tok := range tokens {
		for j, req := range []streamer.ConnectRequest{
			{Headers: map[string]string{"Authorization": "Bearer " + tok}},
			{Query: map[string]string{"token": tok}},
		} {
			req.ConnectionID = string(rune('a'+i)) + string(rune('0'+j))
			_ = h.Connect(t.Context(), req)
		}
	}
	lines := logs.lines()
	if len(lines) < 2*len(tokens) {
		t.Fatalf("only %d log lines for %d connects: the test would prove nothing", len(lines), 2*len(tokens))
	}
	for _, line := range lines {
		for _, tok := range tokens {
			// Any of the token's segments (the signature above all) is a leak.
			for _, seg := range strings.Split(tok, ".") {
				if len(seg) >= 16 && strings.Contains(line, seg) {
					t.Errorf("log line holds part of a token: %s", line)
				}
			}
		}
	}
}

// Message bodies and payloads never reach an info (or higher) log line of
// the router or the processor, on success or on any failure path.
func TestRouterAndProcessorNeverLogBodiesAtInfo(t *testing.T) {
	const secret = "s3cr3t-payload-m4rker"
	var logs logBuffer
	log := newLogger(&logs, slog.LevelInfo)
	e := newEnv(t, streamer.WithLogger(log))
	e.router.Handle("echo", echoHandler())
	e.router.HandleFunc("boom", func(context.Context, *streamer.Request) (any, error) { panic("boom") })
	e.router.HandleAsyncFunc("work", func(_ context.Context, _ *streamer.Request, p progress.Reporter) (any, error) {
		_ = p.Report(100, "done")
		return map[string]string{"out": "result"}, nil
	})
	e.router.HandleAsyncFunc("fail", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return nil, streamer.NewClientError(protocol.CodeForbidden, "no")
	})
	proc := e.processor(streamer.WithProcessorLogger(log))
	e.connect(t, "c1", "alice", "")
	bodies := []string{
		`{"type":"request","id":"1","action":"echo","payload":{"text":"` + secret + `"}}`,
		`{"type":"request","id":"2","action":"boom","payload":{"text":"` + secret + `"}}`,
		`{"type":"request","id":"3","action":"nope-` + secret + `"}`,
		`{"type":"` + secret + `"}`,
		`{"type":"request","id":"4","action":"echo","payload":` + secret,
		`{"type":"request","id":"5","action":"work","payload":{"text":"` + secret + `"}}`,
		`{"type":"request","id":"6","action":"fail","payload":{"text":"` + secret + `"}}`,
	}
	for _, b := range bodies {
		e.send(t, "c1", b)
	}
	e.send(t, "ghost", bodies[0]) // unknown connection
	for _, w := range e.sent.messages("c1") {
		if w.Type == "ack" {
			if err := proc.Process(t.Context(), w.RequestID); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines := logs.lines()
	if len(lines) < 3 {
		t.Fatalf("only %d info lines: the test would prove nothing", len(lines))
	}
	for _, line := range lines {
		if strings.Contains(line, secret) {
			t.Errorf("info log line holds a message body: %s", line)
		}
	}
}
