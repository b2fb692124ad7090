package awslambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/emf golden files")

// emfUnits are the units the EMF specification allows (CloudWatch's
// StandardUnit values).
var emfUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true, "Megabytes": true,
	"Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true, "Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true,
	"Gigabytes/Second": true, "Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true,
	"Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// checkEMF checks one line against the EMF specification's rules and
// returns it decoded.
func checkEMF(t *testing.T, line string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(line), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	aws, ok := doc["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws object: %s", line)
	}
	ts, ok := aws["Timestamp"].(float64)
	if !ok || ts != float64(int64(ts)) || ts < 1e12 {
		t.Errorf("_aws.Timestamp %v is not epoch milliseconds", aws["Timestamp"])
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics %v", aws["CloudWatchMetrics"])
	}
	for _, d := range directives {
		dir := d.(map[string]any)
		if ns, ok := dir["Namespace"].(string); !ok || ns == "" || len(ns) > 255 {
			t.Errorf("Namespace %v", dir["Namespace"])
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			t.Fatalf("Dimensions %v", dir["Dimensions"])
		}
		for _, s := range sets {
			names := s.([]any)
			if len(names) > 30 {
				t.Errorf("dimension set of %d names, EMF allows 30", len(names))
			}
			for _, n := range names {
				if v, ok := doc[n.(string)].(string); !ok || v == "" {
					t.Errorf("dimension %v has no string member: %v", n, doc[n.(string)])
				}
			}
		}
		metrics, ok := dir["Metrics"].([]any)
		if !ok || len(metrics) > 100 {
			t.Fatalf("Metrics %v", dir["Metrics"])
		}
		seen := map[string]bool{}
		for _, m := range metrics {
			md := m.(map[string]any)
			name, _ := md["Name"].(string)
			if name == "" || len(name) > 255 || seen[name] {
				t.Errorf("metric name %q empty, too long or repeated", name)
			}
			seen[name] = true
			if _, ok := doc[name].(float64); !ok {
				t.Errorf("metric %s has no numeric member: %v", name, doc[name])
			}
			if u, ok := md["Unit"].(string); ok && !emfUnits[u] {
				t.Errorf("metric %s has unit %q, not a CloudWatch unit", name, u)
			}
		}
	}
	return doc
}

// emfLines splits the writer's output into lines, checking each.
func emfLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	out := buf.String()
	if out != "" && !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end in a newline: %q", out)
	}
	var docs []map[string]any
	for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		if l != "" {
			docs = append(docs, checkEMF(t, l))
		}
	}
	return docs
}

// golden compares doc, with its latency values replaced by a marker
// (they are measured), to testdata/emf/name.json.
func golden(t *testing.T, name string, doc map[string]any) {
	t.Helper()
	norm := map[string]any{}
	for k, v := range doc {
		norm[k] = v
	}
	for _, k := range []string{"SendLatency", "BroadcastLatency"} {
		if v, ok := norm[k].(float64); ok {
			if v <= 0 {
				t.Errorf("%s = %v, want a positive duration", k, v)
			}
			norm[k] = "<measured>"
		}
	}
	got, err := json.MarshalIndent(norm, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "emf", name+".json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

var fixedNow = func() time.Time { return time.UnixMilli(1_800_000_000_123) }

// emfStack is a router and processor replying through a real manager over
// the real @connections wire.
type emfStack struct {
	srv    *connectiontest.Server
	st     *memory.Store
	mgr    *connection.Manager
	router *streamer.Router
	out    *bytes.Buffer
	emf    *awslambda.EMF
	proc   *streamer.Processor
}

func newEMFStack(t *testing.T) *emfStack {
	t.Helper()
	s := &emfStack{srv: connectiontest.NewServer(), st: memory.New(), out: &bytes.Buffer{}}
	t.Cleanup(s.srv.Close)
	s.mgr = connection.NewManager(s.st, s.srv.Client(), s.srv.URL)
	t.Cleanup(func() { s.mgr.Shutdown(context.Background()) })
	s.router = streamer.NewRouter(s.st, s.mgr, streamer.WithConnectionStore(s.st))
	s.router.HandleFunc("shout", func(ctx context.Context, req *streamer.Request) (any, error) {
		// Everyone hears it: one broadcast to every connection.
		return "ok", s.mgr.Broadcast(ctx, []string{"c1", "c2", "c3", "gone-1"}, "hello all")
	})
	s.router.HandleAsyncFunc("work", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return "done", nil
	})
	s.router.HandleAsyncFunc("broken", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return nil, errors.New("handler bug")
	})
	s.proc = streamer.NewProcessor(s.st, s.mgr, s.router.Actions(), streamer.WithProcessorConnections(s.st))
	var err error
	s.emf, err = awslambda.NewEMF(s.out, awslambda.EMFOptions{Dimensions: map[string]string{"Stage": "prod"},
		Manager: s.mgr, Processor: s.proc, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2", "c3", "gone-1"} {
		if err := s.st.Save(t.Context(), &store.Connection{ConnectionID: id, UserID: "u-" + id, TenantID: "t", TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	s.srv.Disconnect("gone-1")
	return s
}

func message(conn, body string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{Body: body, RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		ConnectionID: conn, RequestID: "gw-" + conn, RouteKey: "$default", EventType: "MESSAGE"}}
}

// One line per invocation (per flush), not per message sent: an
// invocation that broadcasts to four IDs (one gone) and replies writes one
// line counting five sends, one 410, one broadcast of four recipients.
func TestEMFRouterLine(t *testing.T) {
	s := newEMFStack(t)
	h := s.emf.WebSocket(awslambda.HandlerRouter, awslambda.RouterHandler(s.router, awslambda.WithFlusher(s.mgr)))
	ctx := lambdacontext.NewContext(context.WithValue(t.Context(), "x-amzn-trace-id", "Root=1-abc-def;Sampled=1"),
		&lambdacontext.LambdaContext{AwsRequestID: "lambda-req-1"})
	if _, err := h(ctx, message("c1", `{"type":"request","id":"1","action":"shout"}`)); err != nil {
		t.Fatal(err)
	}
	docs := emfLines(t, s.out)
	if len(docs) != 1 {
		t.Fatalf("%d lines for one invocation, want 1", len(docs))
	}
	golden(t, "router", docs[0])
	for _, id := range []string{"c1", "c2", "c3", "gone-1"} {
		if strings.Contains(s.out.String(), `"`+id+`"`) {
			t.Errorf("connection id %s appears in the EMF line", id)
		}
	}

	// A second invocation counts only its own work.
	s.out.Reset()
	if _, err := h(t.Context(), message("c2", `{"type":"request","id":"2","action":"shout"}`)); err != nil {
		t.Fatal(err)
	}
	docs = emfLines(t, s.out)
	if len(docs) != 1 || docs[0]["Broadcasts"] != 1.0 || docs[0]["BroadcastRecipients"] != 4.0 {
		t.Errorf("second invocation line %v, want its own one broadcast of 4", docs)
	}
}

// Throttled posts (429) are counted, and a connect line has no async
// metrics.
func TestEMFThrottledAndConnect(t *testing.T) {
	s := newEMFStack(t)
	s.srv.Script("c1", 429, 429, 429, 429, 429, 429, 429, 429)
	h := s.emf.WebSocket(awslambda.HandlerRouter, awslambda.RouterHandler(s.router, awslambda.WithFlusher(s.mgr)))
	if _, err := h(t.Context(), message("c1", `{"type":"request","id":"1","action":"nope"}`)); err != nil {
		t.Fatal(err)
	}
	docs := emfLines(t, s.out)
	if len(docs) != 1 || docs[0]["Throttled"] != 1.0 || docs[0]["SendFailures"] != 1.0 || docs[0]["Retries"].(float64) < 1 {
		t.Errorf("throttled reply line %v", docs)
	}
	s.out.Reset()
	conns := streamer.NewConnectHandler(s.st, streamer.WithAnonymousIdentity(func(streamer.ConnectRequest) streamer.Identity { return streamer.Identity{UserID: "anon"} }))
	ch := s.emf.WebSocket(awslambda.HandlerConnect, awslambda.ConnectHandler(conns))
	ev := message("c9", "")
	ev.RequestContext.RouteKey, ev.RequestContext.EventType = "$connect", "CONNECT"
	ev.Headers = map[string]string{"X-Amzn-Trace-Id": "Root=1-connect-trace"}
	if _, err := ch(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	docs = emfLines(t, s.out)
	if len(docs) != 1 {
		t.Fatalf("connect lines %v", docs)
	}
	golden(t, "connect", docs[0])
}

// A stream batch's line carries its async outcomes, and a sweep's the
// stalled requests it ran.
func TestEMFStreamAndSweepLines(t *testing.T) {
	s := newEMFStack(t)
	capture := &itemCapture{}
	ddb := dynamo.New(capture)
	var recs []map[string]any
	for i, id := range []string{"r-ok", "r-broken"} {
		ar := &store.AsyncRequest{RequestID: id, ClientRequestID: "c-" + id, ConnectionID: "c1", UserID: "u-c1",
			Action: strings.TrimPrefix(id, "r-"), TTL: time.Now().Add(time.Hour).Unix()}
		if ar.Action == "ok" {
			ar.Action = "work"
		}
		if err := s.st.Enqueue(t.Context(), ar); err != nil {
			t.Fatal(err)
		}
		if err := ddb.Enqueue(t.Context(), ar); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, streamRecord("INSERT", string(rune('1'+i)), capture.items[i]))
	}
	h := s.emf.Stream(awslambda.StreamHandler(s.proc, awslambda.WithFlusher(s.mgr)))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := h(ctx, decodeEvent(t, recs...)); err != nil {
		t.Fatal(err)
	}
	docs := emfLines(t, s.out)
	if len(docs) != 1 {
		t.Fatalf("%d lines for one batch", len(docs))
	}
	golden(t, "stream", docs[0])

	s.out.Reset()
	sweep := s.emf.Sweep(awslambda.SweepHandler(s.proc, awslambda.WithFlusher(s.mgr)))
	if _, err := sweep(ctx, events.EventBridgeEvent{ID: "sched-1"}); err != nil {
		t.Fatal(err)
	}
	docs = emfLines(t, s.out)
	if len(docs) != 1 || docs[0]["StalledRequests"] != 0.0 || docs[0]["Handler"] != "sweep" {
		t.Errorf("sweep line %v", docs)
	}
}

func TestNewEMFRefusesBadDimensions(t *testing.T) {
	for _, dims := range []map[string]string{
		{"": "x"}, {"Stage": ""}, {"Handler": "x"}, {"Sends": "x"}, {"_aws": "x"},
	} {
		if _, err := awslambda.NewEMF(&bytes.Buffer{}, awslambda.EMFOptions{Dimensions: dims}); !errors.Is(err, awslambda.ErrEMFConfig) {
			t.Errorf("%v: %v, want ErrEMFConfig", dims, err)
		}
	}
	if _, err := awslambda.NewEMF(nil, awslambda.EMFOptions{}); !errors.Is(err, awslambda.ErrEMFConfig) {
		t.Errorf("nil writer: %v", err)
	}
}
