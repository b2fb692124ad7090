package streamer_test

// The end-to-end harness: the local API Gateway emulator on loopback, the
// awslambda adapters (the handlers a Lambda deployment runs), the real
// connection Manager posting to the emulator's @connections API through the
// AWS SDK, and a memory or DynamoDB (dynalite) store. Clients are real
// WebSocket clients.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

var e2eSecret = []byte("e2e-secret-e2e-secret-e2e-secret-e2e!")

const e2eAudience = "streamer-e2e"

// backends lists the stores the end-to-end suite runs against. DynamoDB
// needs STREAMER_DYNAMODB_ENDPOINT (dynalite); without it that variant is
// skipped, unless STREAMER_REQUIRE_DYNAMODB=1 makes its absence a failure.
func forEachBackend(t *testing.T, fn func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore))) {
	t.Run("memory", func(t *testing.T) {
		fn(t, func(testing.TB) (store.ConnectionStore, store.RequestStore) {
			st := memory.New()
			return st, st
		})
	})
	t.Run("dynamodb", func(t *testing.T) {
		dynamotest.Endpoint(t)
		fn(t, func(t testing.TB) (store.ConnectionStore, store.RequestStore) {
			st := dynamoStore(t)
			return st, st
		})
	})
}

// dynamoStore creates fresh tables under a unique prefix and deletes them
// when the test ends. opts (a clock, say) are added to the store's.
func dynamoStore(t testing.TB, opts ...dynamo.Option) *dynamo.Store {
	t.Helper()
	client := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, client, "e2e")
	return dynamo.New(client, append([]dynamo.Option{dynamo.WithPrefix(prefix)}, opts...)...)
}

// stack is one running application.
type stack struct {
	url      string
	conns    store.ConnectionStore
	requests store.RequestStore
	router   *streamer.Router
	proc     *streamer.Processor
	// cancelled counts report handlers that ended because their context
	// was cancelled.
	cancelled atomic.Int32

	runsMu sync.Mutex
	runs   map[string]int // server request id → report handler runs
}

// reportRuns returns how often the report handler started, by request id.
func (s *stack) reportRuns() map[string]int {
	s.runsMu.Lock()
	defer s.runsMu.Unlock()
	out := make(map[string]int, len(s.runs))
	for id, n := range s.runs {
		out[id] = n
	}
	return out
}

type reportIn struct {
	Steps   int `json:"steps"`
	DelayMS int `json:"delay_ms"`
}

// startStack runs the application the way `streamer dev` does.
func startStack(t testing.TB, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore), procOpts ...streamer.ProcessorOption) *stack {
	t.Helper()
	return startStackWith(t, newStores, nil, procOpts...)
}

// startStackWith is startStack with router options.
func startStackWith(t testing.TB, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore), routerOpts []streamer.Option, procOpts ...streamer.ProcessorOption) *stack {
	t.Helper()
	return startStackSending(t, newStores, routerOpts, nil, procOpts...)
}

// startStackSending is startStackWith whose router and processor send
// through wrap(manager) (nil: the manager itself), for tests that make
// sends fail.
func startStackSending(t testing.TB, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore), routerOpts []streamer.Option, wrap func(*connection.Manager) streamer.Sender, procOpts ...streamer.ProcessorOption) *stack {
	t.Helper()
	conns, requests := newStores(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/" + local.DefaultStage
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	mgr := connection.NewManager(conns, connection.NewAPIGatewayClient(awsCfg, endpoint), endpoint)

	verifier, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"HS256"},
		Audience:   e2eAudience,
		Keys:       auth.Keys{HMACSecrets: [][]byte{e2eSecret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{url: "ws://" + ln.Addr().String() + "/" + local.DefaultStage, conns: conns, requests: requests, runs: map[string]int{}}
	var sender streamer.Sender = mgr
	if wrap != nil {
		sender = wrap(mgr)
	}
	queue := streamer.NewQueue(0)
	s.router = streamer.NewRouter(requests, sender, append([]streamer.Option{streamer.WithConnectionStore(conns), streamer.WithQueue(queue)}, routerOpts...)...)
	s.router.Handle("echo", echoHandler())
	s.router.HandleAsync("report", streamer.AsyncHandlerOf(func(ctx context.Context, req *streamer.Request, in reportIn, p progress.Reporter) (any, error) {
		s.runsMu.Lock()
		s.runs[req.RequestID]++
		s.runsMu.Unlock()
		for i := 1; i <= in.Steps; i++ {
			if in.DelayMS > 0 {
				select {
				case <-ctx.Done():
					s.cancelled.Add(1)
					return nil, ctx.Err()
				case <-time.After(time.Duration(in.DelayMS) * time.Millisecond):
				}
			}
			if err := p.Report(float64(i*100/in.Steps), fmt.Sprintf("step %d of %d", i, in.Steps)); err != nil {
				return nil, err
			}
		}
		return map[string]any{"steps": in.Steps, "user": req.Identity.UserID}, nil
	}))
	s.proc = streamer.NewProcessor(requests, sender, s.router.Actions(),
		append([]streamer.ProcessorOption{streamer.WithProcessorConnections(conns), streamer.WithProcessorQueue(queue)}, procOpts...)...)
	if err := s.proc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ch := streamer.NewConnectHandler(conns, streamer.WithVerifier(verifier))
	gw, err := local.New(local.Config{Routes: map[string]local.Handler{
		local.RouteConnect:    awslambda.ConnectHandler(ch, awslambda.WithFlusher(mgr)),
		local.RouteDisconnect: awslambda.DisconnectHandler(ch, awslambda.WithFlusher(mgr)),
		local.RouteDefault:    awslambda.RouterHandler(s.router, awslambda.WithFlusher(mgr)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 20*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if err := s.proc.Shutdown(ctx); err != nil {
			t.Errorf("processor Shutdown: %v", err)
		}
		if err := mgr.Shutdown(ctx); err != nil {
			t.Errorf("manager Shutdown: %v", err)
		}
	})
	return s
}

func e2eToken(t testing.TB, user, tenant string) string {
	t.Helper()
	return signE2E(t, jwt.MapClaims{"sub": user, "tenant_id": tenant, "aud": e2eAudience, "exp": time.Now().Add(time.Hour).Unix()}, e2eSecret)
}

func signE2E(t testing.TB, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wsClient is a real WebSocket client with a reader goroutine.
type wsClient struct {
	conn *websocket.Conn
	in   chan wire
	done chan struct{}
}

func (s *stack) dial(t testing.TB, token string) *wsClient {
	t.Helper()
	c, err := s.tryDial(t.Context(), token)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.close)
	return c
}

func (s *stack) tryDial(ctx context.Context, token string) (*wsClient, error) {
	conn, resp, err := websocket.Dial(ctx, s.url+"?token="+token, nil)
	if err != nil {
		if resp != nil {
			return nil, &dialError{status: resp.StatusCode, err: err}
		}
		return nil, err
	}
	conn.SetReadLimit(local.MaxMessageBytes)
	c := &wsClient{conn: conn, in: make(chan wire, 4096), done: make(chan struct{})}
	go c.read()
	return c, nil
}

type dialError struct {
	status int
	err    error
}

func (e *dialError) Error() string { return fmt.Sprintf("dial: HTTP %d: %v", e.status, e.err) }

func (c *wsClient) read() {
	defer close(c.done)
	defer close(c.in)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			return
		}
		var w wire
		if json.Unmarshal(data, &w) == nil {
			c.in <- w
		}
	}
}

// close closes the socket normally and waits for the reader.
func (c *wsClient) close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// drop kills the connection without a close handshake, like a network
// blip, and waits for the reader.
func (c *wsClient) drop() {
	_ = c.conn.CloseNow()
	<-c.done
}

func (c *wsClient) send(t testing.TB, body string) {
	t.Helper()
	if err := c.conn.Write(t.Context(), websocket.MessageText, []byte(body)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// next returns the next message.
func (c *wsClient) next(t testing.TB) wire {
	t.Helper()
	select {
	case w, ok := <-c.in:
		if !ok {
			t.Fatal("connection closed while waiting for a message")
		}
		return w
	case <-time.After(30 * time.Second):
		t.Fatal("no message within 30s")
	}
	panic("unreachable")
}

// until collects messages up to and including the first matching stop.
func (c *wsClient) until(t testing.TB, stop func(wire) bool) []wire {
	t.Helper()
	var got []wire
	for {
		w := c.next(t)
		got = append(got, w)
		if stop(w) {
			return got
		}
	}
}

// roundTrip sends body and returns the next message.
func (c *wsClient) roundTrip(t testing.TB, body string) wire {
	t.Helper()
	c.send(t, body)
	return c.next(t)
}

// flush makes sure every message sent before now has arrived: the pong
// comes after them.
func (c *wsClient) flush(t testing.TB) []wire {
	t.Helper()
	c.send(t, `{"type":"ping"}`)
	return c.until(t, isTypeW("pong"))
}

func isTypeW(typ string) func(wire) bool { return func(w wire) bool { return w.Type == typ } }
