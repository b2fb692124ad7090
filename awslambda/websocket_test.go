package awslambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loadEvent reads one of the real AWS sample events (copied unchanged from
// aws-lambda-go's testdata into testdata/aws-events).
func loadEvent[T any](t *testing.T, name string) T {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "aws-events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev T
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

type countingFlusher struct{ n atomic.Int32 }

func (f *countingFlusher) Flush(context.Context) error { f.n.Add(1); return nil }

func TestConnectRequestFromRealEvent(t *testing.T) {
	ev := loadEvent[events.APIGatewayWebsocketProxyRequest](t, "apigw-websocket-request.json")
	got := awslambda.ConnectRequest(ev)
	if got.ConnectionID != "TWegAcC4EowCHnA=" || got.Stage != "testStage" ||
		got.DomainName != "*.execute-api.eu-central-1.amazonaws.com" || got.SourceIP != "192.168.196.186" ||
		got.UserAgent != "PostmanRuntime/2.4.5" || got.GatewayRequestID != "deef4878-7910-11e6-8f14-25afc3e9ae33" ||
		!got.ConnectedAt.Equal(time.UnixMilli(1547230720092)) || got.Query["name"] != "me" || got.Headers["headerName"] != "headerValue" {
		t.Fatalf("ConnectRequest = %+v", got)
	}
}

func TestDisconnectRequestFromRealEvent(t *testing.T) {
	ev := loadEvent[events.APIGatewayWebsocketProxyRequest](t, "apigw-websocket-request-disconnect.json")
	got := awslambda.DisconnectRequest(ev)
	if got.ConnectionID != "R1kmxc2VNjMCFIA=" || got.StatusCode != 1001 || got.Reason != "" || got.GatewayRequestID != "R1koeHsUtjMFbRw=" {
		t.Fatalf("DisconnectRequest = %+v", got)
	}
}

func TestMessageFromRealEvent(t *testing.T) {
	ev := loadEvent[events.APIGatewayWebsocketProxyRequest](t, "apigw-websocket-request-send-message.json")
	got, err := awslambda.Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got.ConnectionID != "R1kmxc2VNjMCFIA=" || string(got.Body) != "{\r\n\t\"a\": 1\r\n}" ||
		got.GatewayRequestID != "R1knPH17NjMFftw=" || !got.ReceivedAt.Equal(time.UnixMilli(1705751700453)) {
		t.Fatalf("Message = %+v", got)
	}
	ev.Body = base64.StdEncoding.EncodeToString([]byte(`{"type":"ping"}`))
	ev.IsBase64Encoded = true
	if got, err = awslambda.Message(ev); err != nil || string(got.Body) != `{"type":"ping"}` {
		t.Fatalf("base64 body: %q %v", got.Body, err)
	}
	ev.Body = "%%%"
	if _, err = awslambda.Message(ev); err == nil {
		t.Fatal("bad base64 accepted")
	}
}

var secret = []byte("0123456789abcdef0123456789abcdef-lambda")

func token(t *testing.T, user string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": exp.Unix()}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConnectAndDisconnectHandlers(t *testing.T) {
	v, err := auth.NewVerifier(auth.Config{Algorithms: []string{"HS256"}, Keys: auth.Keys{HMACSecrets: [][]byte{secret}}})
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	ch := streamer.NewConnectHandler(st, streamer.WithVerifier(v))
	flusher := &countingFlusher{}
	connect := awslambda.ConnectHandler(ch, awslambda.WithFlusher(flusher))
	disconnect := awslambda.DisconnectHandler(ch, awslambda.WithFlusher(flusher))

	ev := loadEvent[events.APIGatewayWebsocketProxyRequest](t, "apigw-websocket-request.json")
	ev.RequestContext.ConnectedAt = time.Now().UnixMilli()

	// The sample has no token: refused, nothing stored, no body.
	resp, err := connect(t.Context(), ev)
	if err != nil || resp.StatusCode != 401 || resp.Body != "" {
		t.Fatalf("no token: %+v %v", resp, err)
	}
	ev.QueryStringParameters["token"] = token(t, "alice", time.Now().Add(-time.Minute))
	if resp, _ = connect(t.Context(), ev); resp.StatusCode != 401 || resp.Body != "" {
		t.Fatalf("expired token: %+v", resp)
	}
	if _, err := st.Get(t.Context(), "TWegAcC4EowCHnA="); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused connection stored: %v", err)
	}

	ev.Headers["Authorization"] = "Bearer " + token(t, "alice", time.Now().Add(time.Hour))
	if resp, err = connect(t.Context(), ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("valid token: %+v %v", resp, err)
	}
	c, err := st.Get(t.Context(), "TWegAcC4EowCHnA=")
	if err != nil || c.UserID != "alice" || c.Endpoint != "https://*.execute-api.eu-central-1.amazonaws.com/testStage" {
		t.Fatalf("stored %+v, %v", c, err)
	}

	dev := loadEvent[events.APIGatewayWebsocketProxyRequest](t, "apigw-websocket-request-disconnect.json")
	dev.RequestContext.ConnectionID = "TWegAcC4EowCHnA="
	if resp, err = disconnect(t.Context(), dev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("disconnect: %+v %v", resp, err)
	}
	if _, err := st.Get(t.Context(), "TWegAcC4EowCHnA="); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after disconnect: %v", err)
	}
	if flusher.n.Load() != 4 {
		t.Fatalf("flushed %d times, want once per invocation (4)", flusher.n.Load())
	}
}

func TestRouterHandlerRepliesThroughSender(t *testing.T) {
	st := memory.New()
	rec := &connectiontest.Recorder{}
	r := streamer.NewRouter(st, rec) // anonymous: no connection store
	r.HandleFunc("echo", func(_ context.Context, req *streamer.Request) (any, error) { return req.Payload, nil })
	flusher := &countingFlusher{}
	h := awslambda.RouterHandler(r, awslambda.WithFlusher(flusher))

	ev := loadEvent[events.APIGatewayWebsocketProxyRequest](t, "apigw-websocket-request-send-message.json")
	resp, err := h(t.Context(), ev) // {"a": 1}: no type
	if err != nil || resp.StatusCode != 200 || resp.Body != "" {
		t.Fatalf("resp %+v %v", resp, err)
	}
	ev.Body = `{"type":"request","id":"1","action":"echo","payload":{"a":1}}`
	if _, err := h(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	sent := rec.Sent()
	if len(sent) != 2 || sent[0].ConnectionID != "R1kmxc2VNjMCFIA=" {
		t.Fatalf("sent %+v", sent)
	}
	var first, second map[string]any
	_ = json.Unmarshal(sent[0].Data, &first)
	_ = json.Unmarshal(sent[1].Data, &second)
	if first["type"] != "error" || first["code"] != "INVALID_MESSAGE" {
		t.Fatalf("first reply %s", sent[0].Data)
	}
	if string(sent[1].Data) != `{"v":1,"type":"response","request_id":"1","data":{"a":1}}` {
		t.Fatalf("second reply %s", sent[1].Data)
	}
	if flusher.n.Load() != 2 {
		t.Fatalf("flushed %d times", flusher.n.Load())
	}
}
