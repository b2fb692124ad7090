package local_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/runtime/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// idPattern is API Gateway's connection ID shape: 15 base64 characters and "=".
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]{15}=$`)

// recorder is an application that records every event it gets and answers
// with the response its fields say.
type recorder struct {
	mu       sync.Mutex
	all      []events.APIGatewayWebsocketProxyRequest
	connects chan events.APIGatewayWebsocketProxyRequest
	messages chan events.APIGatewayWebsocketProxyRequest
	discs    chan events.APIGatewayWebsocketProxyRequest
}

func newRecorder() *recorder {
	return &recorder{
		connects: make(chan events.APIGatewayWebsocketProxyRequest, 1000),
		messages: make(chan events.APIGatewayWebsocketProxyRequest, 1000),
		discs:    make(chan events.APIGatewayWebsocketProxyRequest, 1000),
	}
}

func (r *recorder) record(ev events.APIGatewayWebsocketProxyRequest) {
	r.mu.Lock()
	r.all = append(r.all, ev)
	r.mu.Unlock()
	switch ev.RequestContext.EventType {
	case "CONNECT":
		r.connects <- ev
	case "MESSAGE":
		r.messages <- ev
	case "DISCONNECT":
		r.discs <- ev
	}
}

// handler records the event and answers 200 with body.
func (r *recorder) handler(body string) local.Handler {
	return func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		r.record(ev)
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: body}, nil
	}
}

// routes is the usual app: $connect, $disconnect and $default recorded.
func (r *recorder) routes() map[string]local.Handler {
	return map[string]local.Handler{
		local.RouteConnect:    r.handler(""),
		local.RouteDisconnect: r.handler(""),
		local.RouteDefault:    r.handler(""),
	}
}

// disconnectsOf counts the $disconnect events of one connection so far.
func (r *recorder) disconnectsOf(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.all {
		if ev.RequestContext.EventType == "DISCONNECT" && ev.RequestContext.ConnectionID == id {
			n++
		}
	}
	return n
}

func next(t *testing.T, ch <-chan events.APIGatewayWebsocketProxyRequest) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
		return events.APIGatewayWebsocketProxyRequest{}
	}
}

// start runs a gateway on a random loopback port, shut down at cleanup.
func start(t *testing.T, cfg local.Config) *local.Gateway {
	t.Helper()
	gw, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return gw
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a real WebSocket client; it is closed at cleanup.
func dial(t *testing.T, gw *local.Gateway, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctxT(t), gw.URL(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// connect dials and returns the connection ID $connect saw.
func connect(t *testing.T, gw *local.Gateway, rec *recorder) (*websocket.Conn, string) {
	t.Helper()
	c := dial(t, gw, nil)
	ev := next(t, rec.connects)
	return c, ev.RequestContext.ConnectionID
}

// sdk is the real AWS SDK management client pointed at the gateway, with
// retries off so each call is one HTTP request.
func sdk(t *testing.T, gw *local.Gateway) *apigatewaymanagementapi.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(gw.ManagementEndpoint()),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: tr},
	})
}

// readClose reads until the connection ends and returns the close status.
func readClose(t *testing.T, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	for {
		_, _, err := c.Read(ctxT(t))
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			return websocket.CloseStatus(err), err.Error()
		}
	}
}
