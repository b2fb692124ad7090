package connectiontest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sender is the interface the router declares; the Manager and the
// Recorder must both satisfy it.
type sender interface {
	Send(ctx context.Context, connectionID string, message any) error
}

var (
	_ sender = (*connection.Manager)(nil)
	_ sender = (*connectiontest.Recorder)(nil)
)

func closeIdle(c *apigatewaymanagementapi.Client) {
	c.Options().HTTPClient.(interface{ CloseIdleConnections() }).CloseIdleConnections()
}

func TestServerSpeaksTheWireFormatToTheSDK(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	c := srv.Client()
	defer closeIdle(c)
	ctx := context.Background()
	id := aws.String("L0SM9cOFvHcCIhw=")

	if _, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: []byte("hi")}); err != nil {
		t.Fatalf("Post: %v", err)
	}
	out, err := c.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if out.ConnectedAt == nil || out.LastActiveAt == nil || out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" {
		t.Errorf("GetConnection output not parsed: %+v", out)
	}
	if time.Since(*out.ConnectedAt) > time.Minute {
		t.Errorf("ConnectedAt = %v", out.ConnectedAt)
	}
	if _, err := c.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: id}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: []byte("again")})
	var gone *types.GoneException
	if !errors.As(err, &gone) {
		t.Fatalf("after Delete: %v, want *types.GoneException", err)
	}
	if got := srv.Received("L0SM9cOFvHcCIhw="); len(got) != 1 || string(got[0]) != "hi" {
		t.Errorf("Received = %q", got)
	}
	if !srv.IsGone("L0SM9cOFvHcCIhw=") || srv.Attempts("L0SM9cOFvHcCIhw=") != 4 {
		t.Errorf("gone %v, attempts %d", srv.IsGone("L0SM9cOFvHcCIhw="), srv.Attempts("L0SM9cOFvHcCIhw="))
	}
}

func TestServerScriptedErrorsBecomeSDKTypes(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	c := srv.Client()
	defer closeIdle(c)
	srv.Script("x", 429, 413, 403, 410, 200)
	post := func() error {
		_, err := c.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("x"), Data: []byte("m")})
		return err
	}
	var (
		limit    *types.LimitExceededException
		tooLarge *types.PayloadTooLargeException
		forbid   *types.ForbiddenException
		gone     *types.GoneException
	)
	for i, target := range []any{&limit, &tooLarge, &forbid, &gone} {
		if err := post(); !errors.As(err, target) {
			t.Errorf("scripted answer %d: %v, want %T (server saw %d requests)", i, err, target, srv.TotalAttempts())
		}
	}
	if err := post(); err != nil {
		t.Errorf("after the script: %v (server saw %d requests)", err, srv.TotalAttempts())
	}
	if got := len(srv.Received("x")); got != 1 {
		t.Errorf("scripted failures delivered: %d messages", got)
	}
	srv.ThrottleNext(2)
	if err := post(); !errors.As(err, &limit) {
		t.Errorf("throttled: %v", err)
	}
	if err := post(); !errors.As(err, &limit) {
		t.Errorf("second of the burst: %v", err)
	}
	if err := post(); err != nil {
		t.Errorf("after the burst: %v", err)
	}

	// Bursts: after every 5th request, the next 2 are throttled.
	srv.Reset()
	srv.ThrottleBursts(5, 2)
	var (
		pattern []bool
		errs    []error
	)
	for i := 0; i < 10; i++ {
		err := post()
		errs = append(errs, err)
		pattern = append(pattern, errors.As(err, &limit))
	}
	want := []bool{false, false, false, false, false, true, true, false, false, false}
	for i := range want {
		if pattern[i] != want[i] {
			t.Fatalf("throttled pattern %v, want %v (server saw %d requests; errors %v)", pattern, want, srv.TotalAttempts(), errs)
		}
	}
	if srv.TotalAttempts() != 10 {
		t.Errorf("TotalAttempts after Reset = %d", srv.TotalAttempts())
	}
}

func TestServerRawWireFormat(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	client := &http.Client{}
	defer client.CloseIdleConnections()

	// Unsigned: refused like API Gateway refuses it.
	resp, err := client.Post(srv.URL+"/@connections/abc", "application/octet-stream", strings.NewReader("m"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "ForbiddenException" {
		t.Errorf("unsigned: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	var e struct{ Message string }
	if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
		t.Errorf("error body %q", body)
	}
	if srv.Attempts("abc") != 0 || len(srv.Received("abc")) != 0 {
		t.Error("unsigned request counted or delivered")
	}

	// Signed enough for the server, gone: 410 GoneException.
	srv.Disconnect("abc")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stage/@connections/abc", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request")
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || resp.Header.Get("X-Amzn-Errortype") != "GoneException" {
		t.Errorf("gone GET: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
}

func TestServerLatencyAndHold(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	c := srv.Client()
	defer closeIdle(c)
	// The latency is far longer than the test, and the client gives up
	// only once the server is known to be applying it: no race between a
	// short deadline and a short sleep, which a loaded machine can lose
	// either way (a 1 ms deadline against a 20 ms latency once saw the
	// answer win).
	waiting := make(chan string, 1)
	srv.SetLatency(func(id string) time.Duration {
		waiting <- id
		return time.Hour
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("slow"), Data: []byte("m")})
		errc <- err
	}()
	select {
	case id := <-waiting:
		if id != "slow" {
			t.Errorf("latency asked for %q, want slow", id)
		}
	case err := <-errc:
		t.Fatalf("answered (%v) without asking for the latency", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("request under latency: %v, want context.Canceled", err)
	}
	if got := srv.Received("slow"); len(got) != 0 {
		t.Errorf("abandoned request delivered: %q", got)
	}
	srv.SetLatency(nil)
	arrived, release := srv.Hold("h")
	done := make(chan error, 1)
	go func() {
		_, err := c.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("h"), Data: []byte("m")})
		done <- err
	}()
	<-arrived
	if len(srv.Received("h")) != 0 {
		t.Error("held request delivered before release")
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(srv.Received("h")) != 1 {
		t.Error("released request not delivered")
	}
}

func TestRecorder(t *testing.T) {
	var r connectiontest.Recorder
	ctx := context.Background()
	if err := r.Send(ctx, "a", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(ctx, "a", make(chan int)); !errors.Is(err, connection.ErrInvalidMessage) {
		t.Errorf("unencodable: %v", err)
	}
	if err := r.Send(ctx, "a", strings.Repeat("x", connection.MaxMessageBytes+1)); !errors.Is(err, connection.ErrMessageTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	r.SendFunc = func(_ context.Context, id string, _ any) error {
		if id == "gone" {
			return connection.ErrConnectionStale
		}
		return nil
	}
	err := r.Broadcast(ctx, []string{"a", "b", "gone", "b"}, "hi")
	var be *connection.BroadcastError
	if !errors.As(err, &be) || be.Total != 3 || len(be.Failed) != 1 || !errors.Is(be.Failed["gone"], connection.ErrConnectionStale) {
		t.Fatalf("Broadcast = %v", err)
	}
	if got := r.To("a"); len(got) != 2 || string(got[0]) != `{"n":1}` || string(got[1]) != "hi" {
		t.Errorf("To(a) = %q", got)
	}
	if got := r.To("b"); len(got) != 1 {
		t.Errorf("To(b) = %q", got)
	}
	if got := len(r.Sent()); got != 3 {
		t.Errorf("Sent = %d messages, want 3", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Send(cctx, "a", "m"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	r.Reset()
	if len(r.Sent()) != 0 {
		t.Error("Reset kept messages")
	}
}
