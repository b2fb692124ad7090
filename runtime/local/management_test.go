package local_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

func TestPostDeliversTextAsTextAndBinaryAsBinary(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	api := sdk(t, gw)
	for _, tc := range []struct {
		data []byte
		typ  websocket.MessageType
	}{
		{[]byte(`{"hello":"wörld"}`), websocket.MessageText},
		{[]byte{0xff, 0xfe, 0x00, 0x01}, websocket.MessageBinary},
		{[]byte{}, websocket.MessageText},
	} {
		if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: tc.data}); err != nil {
			t.Fatalf("PostToConnection: %v", err)
		}
		typ, b, err := c.Read(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if typ != tc.typ || !bytes.Equal(b, tc.data) {
			t.Errorf("got %v %q, want %v %q", typ, b, tc.typ, tc.data)
		}
	}
}

func TestGetConnection(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	h := http.Header{}
	h.Set("User-Agent", "ua-test")
	before := time.Now().Add(-time.Second)
	dial(t, gw, &websocket.DialOptions{HTTPHeader: h})
	id := next(t, rec.connects).RequestContext.ConnectionID
	out, err := sdk(t, gw).GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if out.ConnectedAt == nil || out.ConnectedAt.Before(before) || out.LastActiveAt == nil || out.LastActiveAt.Before(*out.ConnectedAt) {
		t.Errorf("connectedAt %v lastActiveAt %v", out.ConnectedAt, out.LastActiveAt)
	}
	if out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" || aws.ToString(out.Identity.UserAgent) != "ua-test" {
		t.Errorf("identity %+v", out.Identity)
	}
}

func TestDeleteConnectionClosesAndIsThenGone(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	api := sdk(t, gw)
	if _, err := api.DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	if code, _ := readClose(t, c); code != websocket.StatusNormalClosure {
		t.Errorf("client saw close %d, want 1000", code)
	}
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1000 {
		t.Errorf("disconnect %+v", ev.RequestContext)
	}
	var gone *types.GoneException
	_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	if !errors.As(err, &gone) {
		t.Errorf("post after delete: %v, want GoneException", err)
	}
	_, err = api.DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
	if !errors.As(err, &gone) {
		t.Errorf("second delete: %v, want GoneException", err)
	}
	if n := rec.disconnectsOf(id); n != 1 {
		t.Errorf("$disconnect ran %d times", n)
	}
}

func TestUnknownConnectionIsGone(t *testing.T) {
	gw := start(t, local.Config{})
	api := sdk(t, gw)
	id := aws.String("L0SM9cOFvHcCIhw=")
	var gone *types.GoneException
	if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: []byte("x")}); !errors.As(err, &gone) {
		t.Errorf("post: %v", err)
	}
	if _, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id}); !errors.As(err, &gone) {
		t.Errorf("get: %v", err)
	}
	if _, err := api.DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: id}); !errors.As(err, &gone) {
		t.Errorf("delete: %v", err)
	}
}

func TestPayloadTooLarge(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	api := sdk(t, gw)
	var tooLarge *types.PayloadTooLargeException
	_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: make([]byte, local.MaxMessageBytes+1)})
	if !errors.As(err, &tooLarge) {
		t.Fatalf("post 131073 bytes: %v, want PayloadTooLargeException", err)
	}
	exact := bytes.Repeat([]byte("z"), local.MaxMessageBytes)
	if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: exact}); err != nil {
		t.Fatalf("post 131072 bytes: %v", err)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || !bytes.Equal(b, exact) {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
}

func TestSlowClientGets429(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), OutboundQueue: 4})
	_, id := connect(t, gw, rec) // never reads
	api := sdk(t, gw)
	msg := make([]byte, 100*1024)
	// The socket buffers fill first (a few MB on loopback), then the queue.
	var limit *types.LimitExceededException
	for i := range 2000 {
		_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: msg})
		if errors.As(err, &limit) {
			if i < 4 {
				t.Errorf("429 after only %d posts", i)
			}
			return
		}
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	t.Fatal("no LimitExceededException after 2000 posts to a client that never reads")
}

// TestErrorsCarryErrorType checks the raw wire: every error has
// X-Amzn-Errortype and a JSON body, as the SDK expects.
func TestErrorsCarryErrorType(t *testing.T) {
	gw := start(t, local.Config{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	base := gw.ManagementEndpoint() + "/@connections/"
	for _, tc := range []struct {
		method, path string
		body         []byte
		status       int
		errType      string
	}{
		{"POST", url.PathEscape("L0SM9cOFvHcCIhw="), []byte("x"), 410, "GoneException"},
		{"GET", "L0SM9cOFvHcCIhw=", nil, 410, "GoneException"},
		{"DELETE", "abc", nil, 410, "GoneException"},
		{"POST", "abc", make([]byte, local.MaxMessageBytes+1), 413, "PayloadTooLargeException"},
		{"PUT", "abc", nil, 403, "ForbiddenException"},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, bytes.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-Amzn-Errortype") != tc.errType || !bytes.HasPrefix(b, []byte(`{"message":`)) {
			t.Errorf("%s %s: %d %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b)
		}
	}
}

// TestLongMessagesAreSplitIntoFrames reads the raw frames of a 100 KiB
// message: each at most 32 KiB, one message, reassembled intact.
func TestLongMessagesAreSplitIntoFrames(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	raw := dialRaw(t, gw)
	id := next(t, rec.connects).RequestContext.ConnectionID
	msg := make([]byte, 100*1024)
	rand.Read(msg)
	if _, err := sdk(t, gw).PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: msg}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	frames := 0
	for {
		fin, op, payload := raw.readFrame(t)
		frames++
		if len(payload) > local.MaxFrameBytes {
			t.Errorf("frame %d has %d bytes", frames, len(payload))
		}
		if frames == 1 && op != 2 {
			t.Errorf("first frame opcode %d, want 2 (binary)", op)
		}
		if frames > 1 && op != 0 {
			t.Errorf("frame %d opcode %d, want 0 (continuation)", frames, op)
		}
		got = append(got, payload...)
		if fin {
			break
		}
	}
	if frames < 4 || !bytes.Equal(got, msg) {
		t.Errorf("%d frames, reassembled %d bytes equal=%v", frames, len(got), bytes.Equal(got, msg))
	}
}

// rawClient is just enough of a WebSocket client to see frames.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, gw *local.Gateway) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", gw.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	io.WriteString(conn, "GET /dev HTTP/1.1\r\nHost: "+gw.Addr()+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	return &rawClient{conn: conn, br: br}
}

func (r *rawClient) readFrame(t *testing.T) (fin bool, opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		t.Fatal(err)
	}
	fin, opcode = h[0]&0x80 != 0, h[0]&0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		t.Fatal(err)
	}
	return fin, opcode, payload
}

func TestSignatureVerification(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), VerifyCredentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	c, id := connect(t, gw, rec)

	// The right key: accepted and delivered.
	if _, err := sdk(t, gw).PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("signed")}); err != nil {
		t.Fatalf("signed post: %v", err)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "signed" {
		t.Fatalf("read %q %v", b, err)
	}

	// A wrong secret: ForbiddenException.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	wrong := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(gw.ManagementEndpoint()),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("a", "wrong", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: tr},
	})
	var forbidden *types.ForbiddenException
	if _, err := wrong.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")}); !errors.As(err, &forbidden) {
		t.Errorf("wrong secret: %v, want ForbiddenException", err)
	}

	// Unsigned: refused.
	resp, err := (&http.Client{Transport: tr}).Post(gw.ManagementEndpoint()+"/@connections/"+url.PathEscape(id), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "ForbiddenException" {
		t.Errorf("unsigned: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
}

func TestUnsignedAcceptedByDefault(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	// The ID unescaped ("=" in the path) works too.
	resp, err := (&http.Client{Transport: tr}).Post(gw.ManagementEndpoint()+"/@connections/"+id, "text/plain", strings.NewReader("plain"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("unsigned post: %d", resp.StatusCode)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "plain" {
		t.Fatalf("read %q %v", b, err)
	}
}

// TestPostDuringConnectIsGone: as in API Gateway, a connection cannot be
// posted to while its $connect runs, only once the upgrade is done.
func TestPostDuringConnectIsGone(t *testing.T) {
	var gw *local.Gateway
	duringConnect := make(chan error, 1)
	gw = start(t, local.Config{Routes: map[string]local.Handler{
		local.RouteConnect: func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			_, err := sdk(t, gw).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(ev.RequestContext.ConnectionID), Data: []byte("early")})
			duringConnect <- err
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		},
	}})
	dial(t, gw, nil)
	var gone *types.GoneException
	if err := <-duringConnect; !errors.As(err, &gone) {
		t.Errorf("post during $connect: %v, want GoneException", err)
	}
}

// TestManagementAnswersOnTheWire checks the raw answers the SDK hides:
// POST 200, GET 200 with connectedAt and lastActiveAt in ISO-8601 with
// milliseconds ("2006-01-02T15:04:05.000Z") and the identity, DELETE 204.
func TestManagementAnswersOnTheWire(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	h := http.Header{}
	h.Set("User-Agent", "wire-test")
	c := dial(t, gw, &websocket.DialOptions{HTTPHeader: h})
	id := next(t, rec.connects).RequestContext.ConnectionID
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	u := gw.ManagementEndpoint() + "/@connections/" + url.PathEscape(id)
	do := func(method string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, u, bytes.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}

	if resp, _ := do(http.MethodPost, []byte("wire")); resp.StatusCode != http.StatusOK {
		t.Errorf("POST: %d, want 200", resp.StatusCode)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "wire" {
		t.Fatalf("read %q %v", b, err)
	}

	resp, b := do(http.MethodGet, nil)
	var info struct {
		ConnectedAt  string `json:"connectedAt"`
		LastActiveAt string `json:"lastActiveAt"`
		Identity     struct {
			SourceIP  string `json:"sourceIp"`
			UserAgent string `json:"userAgent"`
		} `json:"identity"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &info) != nil {
		t.Fatalf("GET: %d %s", resp.StatusCode, b)
	}
	iso := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
	if !iso.MatchString(info.ConnectedAt) || !iso.MatchString(info.LastActiveAt) || info.LastActiveAt < info.ConnectedAt {
		t.Errorf("GET times: connectedAt %q lastActiveAt %q", info.ConnectedAt, info.LastActiveAt)
	}
	if info.Identity.SourceIP != "127.0.0.1" || info.Identity.UserAgent != "wire-test" {
		t.Errorf("GET identity %+v", info.Identity)
	}

	if resp, b := do(http.MethodDelete, nil); resp.StatusCode != http.StatusNoContent || len(b) != 0 {
		t.Errorf("DELETE: %d %q, want 204 and no body", resp.StatusCode, b)
	}
	if code, _ := readClose(t, c); code != websocket.StatusNormalClosure {
		t.Errorf("client saw close %d after DELETE, want 1000", code)
	}
}
