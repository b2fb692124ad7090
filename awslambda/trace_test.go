package awslambda_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestTraceID(t *testing.T) {
	ev := func(h string) events.APIGatewayWebsocketProxyRequest {
		return events.APIGatewayWebsocketProxyRequest{Headers: map[string]string{"x-amzn-trace-id": h}}
	}
	lambdaCtx := context.WithValue(context.Background(), "x-amzn-trace-id", "Root=1-invoke-0001;Parent=aa;Sampled=0")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		ev   events.APIGatewayWebsocketProxyRequest
		want string
	}{
		{"header", context.Background(), ev("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"), "1-5759e988-bd862e3fe1be46a994272793"},
		{"header wins over the invocation", lambdaCtx, ev("Self=1-x;Root=1-hdr-2"), "1-hdr-2"},
		{"bare header value", context.Background(), ev("1-bare-3"), "1-bare-3"},
		{"invocation", lambdaCtx, events.APIGatewayWebsocketProxyRequest{}, "1-invoke-0001"},
		{"hostile header falls back", lambdaCtx, ev("Root=1-a\nforged log line"), "1-invoke-0001"},
		{"too long", context.Background(), ev("Root=" + strings.Repeat("x", 200)), ""},
		{"none", context.Background(), events.APIGatewayWebsocketProxyRequest{}, ""},
	} {
		if got := awslambda.TraceID(tc.ctx, tc.ev); got != tc.want {
			t.Errorf("%s: TraceID = %q, want %q", tc.name, got, tc.want)
		}
	}
	t.Setenv("_X_AMZN_TRACE_ID", "Root=1-env-4;Sampled=1")
	if got := awslambda.TraceID(context.Background(), events.APIGatewayWebsocketProxyRequest{}); got != "1-env-4" {
		t.Errorf("from the environment: %q", got)
	}
}

// The invocation's trace ID becomes the correlation ID of the router's and
// the manager's log lines for a message, through the real @connections
// wire: the reply to a bad message finds the connection gone (410), and
// both the router's line and the manager's cleanup line carry the trace.
func TestTraceIDBecomesTheCorrelationID(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	srv.Disconnect("c1")
	logs := &lines{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := memory.New()
	if err := st.Save(t.Context(), &store.Connection{ConnectionID: "c1", UserID: "u", TenantID: "t", TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	mgr := connection.NewManager(st, srv.Client(), srv.URL, connection.WithLogger(log))
	defer mgr.Shutdown(t.Context())
	router := streamer.NewRouter(st, mgr, streamer.WithConnectionStore(st), streamer.WithLogger(log))
	h := awslambda.RouterHandler(router, awslambda.WithFlusher(mgr), awslambda.WithLogger(log))

	ctx := context.WithValue(t.Context(), "x-amzn-trace-id", "Root=1-67891233-abcdef012345678912345678;Parent=1;Sampled=1")
	ev := events.APIGatewayWebsocketProxyRequest{Body: "not json", RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		ConnectionID: "c1", RequestID: "gw-req-1", RouteKey: "$default", EventType: "MESSAGE"}}
	if _, err := h(ctx, ev); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, msg := range []string{`msg="refused message"`, `msg="connection: removed gone connection"`} {
		if !hasLine(out, msg, "correlation_id=1-67891233-abcdef012345678912345678") {
			t.Errorf("no %s line with the trace as correlation_id:\n%s", msg, out)
		}
	}
	// An async request's queued line ties the trace to its request ID,
	// which the processor's lines carry.
	router.HandleAsyncFunc("work", func(context.Context, *streamer.Request, progress.Reporter) (any, error) { return "ok", nil })
	// (The 410 above removed c1's record; the user is back.)
	if err := st.Save(t.Context(), &store.Connection{ConnectionID: "c1", UserID: "u", TenantID: "t", TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	ev.Body = `{"type":"request","id":"w1","action":"work"}`
	if _, err := h(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if !hasLine(logs.String(), `msg="queued async request"`, "correlation_id=1-67891233-abcdef012345678912345678", "request_id=r-") {
		t.Errorf("no queued line tying the trace to the request id:\n%s", logs.String())
	}
	ev.Body = "not json"

	// Without a trace, API Gateway's request ID is the correlation ID.
	logs.Reset()
	if _, err := h(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if !hasLine(logs.String(), `msg="refused message"`, "correlation_id=gw-req-1") {
		t.Errorf("no line with the gateway request id:\n%s", logs.String())
	}
}

func hasLine(out string, parts ...string) bool {
	for l := range strings.SplitSeq(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// lines collects log output from several goroutines.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lines) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
