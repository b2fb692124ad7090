package connection_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/runtime/local"
)

// These tests prove the FastClient's requests are wire compatible with
// API Gateway: the local runtime checks every management call's SigV4
// signature by signing the request it received again with the SDK's
// signer (runtime/local/sigv4.go), independently of how the client built
// it, and refuses a mismatch with 403.

// switchable is a credentials provider whose keys a test can rotate; it
// counts how often it is asked.
type switchable struct {
	mu        sync.Mutex
	creds     aws.Credentials
	retrieves atomic.Int64
}

func (s *switchable) set(c aws.Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = c
}

func (s *switchable) Retrieve(context.Context) (aws.Credentials, error) {
	s.retrieves.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds, nil
}

// signedGateway runs the local runtime on stage, checking signatures
// against verify, with a two-way $default route that tells a client its
// connection ID.
func signedGateway(t *testing.T, stage string, verify aws.CredentialsProvider) *local.Gateway {
	t.Helper()
	whoami := func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: req.RequestContext.ConnectionID}, nil
	}
	gw, err := local.New(local.Config{
		Stage:             stage,
		Routes:            map[string]local.Handler{local.RouteDefault: whoami},
		TwoWayRoutes:      []string{local.RouteDefault},
		VerifyCredentials: verify,
	})
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
			t.Errorf("gateway Shutdown: %v", err)
		}
	})
	return gw
}

// wsClient connects a WebSocket client and learns its connection ID.
func wsClient(t *testing.T, gw *local.Gateway) (*websocket.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, gw.URL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(connection.MaxMessageBytes + 1)
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, []byte("id")); err != nil {
		t.Fatal(err)
	}
	_, id, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c, string(id)
}

func readFrame(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, b
}

func post(ctx context.Context, c connection.APIGatewayClient, id string, data []byte) error {
	_, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data})
	return err
}

func TestFastClientSignaturesVerifyAtTheGateway(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDWIRE", SecretAccessKey: "wire-secret", SessionToken: "session-token"}
	verify := &switchable{creds: creds}
	for _, stage := range []string{"prod", "v1-beta"} {
		t.Run(stage, func(t *testing.T) {
			gw := signedGateway(t, stage, verify)
			fc := connection.NewFastClient(aws.Config{Region: "eu-west-1", Credentials: &switchable{creds: creds}}, gw.ManagementEndpoint()+"/")
			defer fc.CloseIdleConnections()
			ctx := context.Background()
			ws, id := wsClient(t, gw)

			// Text stays text, binary stays binary, byte for byte.
			for _, tc := range []struct {
				body []byte
				typ  websocket.MessageType
			}{
				{[]byte(`{"text":"héllo"}`), websocket.MessageText},
				{[]byte{0x00, 0xff, 0xfe, 'b', 'i', 'n'}, websocket.MessageBinary},
				{make([]byte, connection.MaxMessageBytes), websocket.MessageText}, // 128 KiB of zero bytes is valid UTF-8
			} {
				if err := post(ctx, fc, id, tc.body); err != nil {
					t.Fatalf("post %d bytes: %v", len(tc.body), err)
				}
				typ, got := readFrame(t, ws)
				if typ != tc.typ || string(got) != string(tc.body) {
					t.Errorf("got %v %d bytes, want %v %d bytes", typ, len(got), tc.typ, len(tc.body))
				}
			}
			// GET is signed too and decoded like the SDK decodes it.
			out, err := fc.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
			if err != nil {
				t.Fatalf("GetConnection: %v", err)
			}
			if out.ConnectedAt == nil || out.LastActiveAt == nil || out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" {
				t.Errorf("GetConnection = %+v", out)
			}
			// An ID that needs escaping (not one the gateway knows): the
			// signature still verifies, so the answer is 410, not 403.
			for _, odd := range []string{"a/b+c=", "with space", "ü?#%"} {
				var gone *types.GoneException
				if err := post(ctx, fc, odd, []byte("x")); !errors.As(err, &gone) {
					t.Errorf("post to %q: %v, want GoneException (signature accepted)", odd, err)
				}
			}
			// DELETE closes the client's socket.
			if _, err := fc.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
				t.Fatalf("DeleteConnection: %v", err)
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, _, err := ws.Read(rctx); websocket.CloseStatus(err) == -1 {
				t.Errorf("after DELETE, read = %v, want a close frame", err)
			}
		})
	}
}

func TestFastClientWrongKeyIsForbiddenWithStatusAndRequestID(t *testing.T) {
	gw := signedGateway(t, "prod", &switchable{creds: aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "right"}})
	_, id := wsClient(t, gw)
	fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: &switchable{creds: aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "wrong"}}}, gw.ManagementEndpoint())
	defer fc.CloseIdleConnections()
	err := post(context.Background(), fc, id, []byte("x"))
	var forbidden *types.ForbiddenException
	var re *awshttp.ResponseError
	if !errors.As(err, &forbidden) || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Fatalf("err = %v, want ForbiddenException with status 403", err)
	}
	if forbidden.ErrorMessage() == "" {
		t.Errorf("no message in %v", err)
	}
}

// The credentials are cached: many calls, one Retrieve. Credentials that
// expire are fetched again before each call that would sign with expired
// (or nearly expired) keys, so a rotation at the source is picked up and
// the gateway, now checking the new key, accepts the calls.
func TestFastClientCachesAndRefreshesCredentials(t *testing.T) {
	keyA := aws.Credentials{AccessKeyID: "AKIDA", SecretAccessKey: "secret-a"}
	keyB := aws.Credentials{AccessKeyID: "AKIDB", SecretAccessKey: "secret-b", SessionToken: "token-b"}
	ctx := context.Background()

	t.Run("cached", func(t *testing.T) {
		verify := &switchable{creds: keyA}
		gw := signedGateway(t, "prod", verify)
		_, id := wsClient(t, gw)
		src := &switchable{creds: keyA}
		fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: src}, gw.ManagementEndpoint())
		defer fc.CloseIdleConnections()
		for range 20 {
			if err := post(ctx, fc, id, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if n := src.retrieves.Load(); n != 1 {
			t.Errorf("Retrieve called %d times for 20 calls with credentials that never expire, want 1", n)
		}
		// The source rotates, but the cached key does not expire: the
		// client keeps signing with key A, which the gateway now refuses.
		src.set(keyB)
		verify.set(keyB)
		var forbidden *types.ForbiddenException
		if err := post(ctx, fc, id, []byte("x")); !errors.As(err, &forbidden) {
			t.Errorf("with the old cached key: %v, want ForbiddenException", err)
		}
	})

	t.Run("expiring", func(t *testing.T) {
		verify := &switchable{creds: keyA}
		gw := signedGateway(t, "prod", verify)
		ws, id := wsClient(t, gw)
		// Expiring within the client's 30 s refresh window: never used
		// from the cache.
		a := keyA
		a.CanExpire, a.Expires = true, time.Now().Add(10*time.Second)
		src := &switchable{creds: a}
		fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: src}, gw.ManagementEndpoint())
		defer fc.CloseIdleConnections()
		if err := post(ctx, fc, id, []byte("with A")); err != nil {
			t.Fatal(err)
		}
		readFrame(t, ws)
		b := keyB
		b.CanExpire, b.Expires = true, time.Now().Add(time.Hour)
		src.set(b)
		verify.set(keyB)
		for range 5 {
			if err := post(ctx, fc, id, []byte("with B")); err != nil {
				t.Fatalf("after rotation: %v", err)
			}
			if _, got := readFrame(t, ws); string(got) != "with B" {
				t.Errorf("read %q", got)
			}
		}
		// One Retrieve for A, one for B (B is then cached for an hour).
		if n := src.retrieves.Load(); n != 2 {
			t.Errorf("Retrieve called %d times, want 2", n)
		}
	})

	t.Run("config cache kept", func(t *testing.T) {
		// A provider that already is an aws.CredentialsCache (what
		// config.LoadDefaultConfig builds) is used as is: invalidating it
		// makes the next call fetch again.
		verify := &switchable{creds: keyA}
		gw := signedGateway(t, "prod", verify)
		_, id := wsClient(t, gw)
		src := &switchable{creds: keyA}
		cache := aws.NewCredentialsCache(src)
		fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: cache}, gw.ManagementEndpoint())
		defer fc.CloseIdleConnections()
		if err := post(ctx, fc, id, []byte("x")); err != nil {
			t.Fatal(err)
		}
		src.set(keyB)
		verify.set(keyB)
		cache.Invalidate()
		if err := post(ctx, fc, id, []byte("x")); err != nil {
			t.Fatalf("after Invalidate: %v", err)
		}
		if n := src.retrieves.Load(); n != 2 {
			t.Errorf("Retrieve called %d times, want 2", n)
		}
	})
}

// A Manager on the FastClient against the signing gateway: Send and
// Broadcast deliver, and a Broadcast signs each ID's request with the one
// payload hash it computed for the message.
func TestManagerOnFastClientDeliversThroughTheSigningGateway(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDM", SecretAccessKey: "m-secret"}
	gw := signedGateway(t, "prod", &switchable{creds: creds})
	fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: &switchable{creds: creds}}, gw.ManagementEndpoint())
	st := memory.New()
	m := connection.NewManager(st, fc, gw.ManagementEndpoint())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	})
	const n = 5
	var conns []*websocket.Conn
	var ids []string
	for range n {
		c, id := wsClient(t, gw)
		conns = append(conns, c)
		ids = append(ids, id)
		if err := st.Save(context.Background(), &store.Connection{ConnectionID: id, UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := m.Send(ctx, ids[0], map[string]string{"hello": "one"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, got := readFrame(t, conns[0]); string(got) != `{"hello":"one"}` {
		t.Errorf("Send delivered %q", got)
	}
	if err := m.Broadcast(ctx, ids, []byte{0xff, 0x00, 0x01}); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for i, c := range conns {
		if typ, got := readFrame(t, c); typ != websocket.MessageBinary || string(got) != "\xff\x00\x01" {
			t.Errorf("client %d got %v %q", i, typ, got)
		}
	}
}
