package local_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// dialAll dials n clients at once and returns how many were admitted
// (101) and how many refused with 429 LimitExceededException.
func dialAll(t *testing.T, gw *local.Gateway, n int) (admitted, throttled int) {
	t.Helper()
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, resp, err := websocket.Dial(ctxT(t), gw.URL(), nil)
			switch {
			case err == nil:
				ok.Add(1)
				c.CloseNow()
			case resp != nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("X-Amzn-Errortype") == "LimitExceededException":
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("dial: %v %v", resp, err)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load()), int(refused.Load())
}

// TestQuotaNewConnections: 1,000 clients dialling at once under AWS's
// quota are admitted 500 in a second's window (the clock stands still
// while they dial), the rest refused with 429; a second later, 500 more.
func TestQuotaNewConnections(t *testing.T) {
	clock := newFakeClock()
	var connects atomic.Int64
	count := func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		connects.Add(1)
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	gw := start(t, local.Config{Routes: map[string]local.Handler{local.RouteConnect: count}, Quotas: &local.Quotas{Now: clock.Now}})
	admitted, throttled := dialAll(t, gw, 1000)
	if admitted != local.AWSNewConnectionsPerSecond || throttled != 1000-admitted {
		t.Fatalf("1,000 at once: %d admitted, %d throttled; want 500 and 500", admitted, throttled)
	}
	// Refused upgrades never reached $connect.
	if n := connects.Load(); n != int64(admitted) {
		t.Errorf("$connect ran %d times for %d admitted", n, admitted)
	}
	clock.Advance(500 * time.Millisecond)
	if admitted, _ := dialAll(t, gw, 400); admitted != 250 {
		t.Errorf("half a second later: %d admitted, want 250", admitted)
	}
	clock.Advance(time.Second)
	if admitted, _ := dialAll(t, gw, 600); admitted != 500 {
		t.Errorf("a second later: %d admitted, want 500", admitted)
	}
	if st := gw.LimitStats(); st.ThrottledConnections != 500+150+100 || st.Quotas.NewConnectionsPerSecond != 500 || st.Quotas.RequestsBurst != 5000 {
		t.Errorf("stats %+v", st)
	}
}

// TestQuotaRequests: @connections calls over the request rate and burst
// are answered 429 LimitExceededException, which the SDK surfaces as
// *types.LimitExceededException; the bucket refills at the rate.
func TestQuotaRequests(t *testing.T) {
	clock := newFakeClock()
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), Quotas: &local.Quotas{RequestsPerSecond: 100, RequestsBurst: 50, Now: clock.Now}})
	c, id := connect(t, gw, rec)
	api := sdk(t, gw)
	post := func() error {
		_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("m")})
		return err
	}
	count := func(n int) (ok, limited int) {
		for range n {
			var le *types.LimitExceededException
			switch err := post(); {
			case err == nil:
				ok++
			case errors.As(err, &le):
				limited++
			default:
				t.Fatalf("post: %v", err)
			}
		}
		return
	}
	if ok, limited := count(60); ok != 50 || limited != 10 {
		t.Fatalf("60 calls at once: %d ok, %d limited; want 50 and 10", ok, limited)
	}
	clock.Advance(100 * time.Millisecond)
	if ok, limited := count(20); ok != 10 || limited != 10 {
		t.Fatalf("100 ms later: %d ok, %d limited; want 10 and 10", ok, limited)
	}
	// GET and DELETE count too.
	if _, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err == nil {
		t.Error("GET over the quota answered")
	}
	for range 60 {
		if _, _, err := c.Read(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if st := gw.LimitStats(); st.ThrottledRequests != 21 {
		t.Errorf("throttled %d, want 21", st.ThrottledRequests)
	}
}

func TestMessageLimitOverride(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), MessageLimit: 100, FrameLimit: 10})
	c, id := connect(t, gw, rec)
	if status, typ := rawPost(t, gw, id, "", nil, strings.Repeat("x", 101)); status != 413 || typ != "PayloadTooLargeException" {
		t.Errorf("101 bytes over a 100-byte limit: %d %s", status, typ)
	}
	if status, _ := rawPost(t, gw, id, "", nil, strings.Repeat("y", 100)); status != 200 {
		t.Errorf("100 bytes: %d", status)
	}
	// Split into 10-byte frames, still one message.
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != strings.Repeat("y", 100) {
		t.Fatalf("read %q %v", b, err)
	}
	// An inbound message over the limit closes the socket with 1009.
	if err := c.Write(ctxT(t), websocket.MessageText, []byte(strings.Repeat("z", 101))); err != nil {
		t.Fatal(err)
	}
	if code, _ := readClose(t, c); code != websocket.StatusMessageTooBig {
		t.Errorf("close %d, want 1009", code)
	}
}
