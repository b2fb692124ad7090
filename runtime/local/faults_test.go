package local_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// script is a random source that returns the values a test lines up,
// then 0.99 (no fault) when they run out.
type script struct {
	mu sync.Mutex
	v  []float64
}

func (s *script) push(v ...float64) {
	s.mu.Lock()
	s.v = append(s.v, v...)
	s.mu.Unlock()
}

func (s *script) next() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.v) == 0 {
		return 0.99
	}
	v := s.v[0]
	s.v = s.v[1:]
	return v
}

// TestFaultsInjectAWSFailures: each fault, drawn from an injected source,
// gives what API Gateway gives on a bad day, through the real SDK and a
// real WebSocket client.
func TestFaultsInjectAWSFailures(t *testing.T) {
	rnd := &script{}
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), Faults: &local.Faults{
		ServerError: 0.1, Gone: 0.1, Drop: 0.1, LostDisconnect: 0.5, Latency: 20 * time.Millisecond, LatencyRate: 0.5, Rand: rnd.next,
	}})
	c, id := connect(t, gw, rec)
	api := sdk(t, gw)
	post := func(data string) error {
		_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(data)})
		return err
	}

	// Draws per call: latency first, then the call's fault.
	rnd.push(0.9, 0.05) // no latency; 0.05 < ServerError: 500
	var apiErr smithy.APIError
	if err := post("a"); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalServerErrorException" {
		t.Errorf("server error: %v", err)
	}
	rnd.push(0.9, 0.15) // 410 for a live connection
	var gone *types.GoneException
	if err := post("b"); !errors.As(err, &gone) {
		t.Errorf("gone: %v", err)
	}
	rnd.push(0.1, 0.9) // latency, then delivered
	if err := post("c"); err != nil {
		t.Errorf("delayed: %v", err)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "c" {
		t.Fatalf("read %q %v, want only the delivered post", b, err)
	}
	// The connection is still open after the injected 410.
	if _, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Errorf("GET after the injected 410: %v", err)
	}
	// A drop: no close frame, 1006 on the client, 410 to the caller, and
	// $disconnect (not lost: the next draw is 0.99) with 1006.
	rnd.push(0.9, 0.25)
	if err := post("d"); !errors.As(err, &gone) {
		t.Errorf("drop: %v", err)
	}
	if code, _ := readClose(t, c); code != -1 && code != websocket.StatusAbnormalClosure {
		t.Errorf("client saw close %d, want none (1006)", code)
	}
	if ev := next(t, rec.discs); ev.RequestContext.DisconnectStatusCode != 1006 {
		t.Errorf("$disconnect code %d, want 1006", ev.RequestContext.DisconnectStatusCode)
	}

	// A lost $disconnect: the client closes, $disconnect never comes.
	c2, id2 := connect(t, gw, rec)
	rnd.push(0.2) // < LostDisconnect
	c2.Close(websocket.StatusNormalClosure, "bye")
	for deadline := time.Now().Add(10 * time.Second); gw.ActiveConnections() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id2)}); !errors.As(err, &gone) {
		t.Errorf("GET of the closed connection: %v", err)
	}
	if n := rec.disconnectsOf(id2); n != 0 {
		t.Errorf("$disconnect delivered %d times, want lost", n)
	}
	st := gw.LimitStats()
	if got := st.Injected; got != (local.FaultCounts{ServerErrors: 1, Gone: 1, Delayed: 1, LostDisconnects: 1, Dropped: 1}) {
		t.Errorf("injected %+v", got)
	}
	if st.Faults == nil || st.Faults.Drop != 0.1 || st.Quotas != nil {
		t.Errorf("stats config %+v %+v", st.Faults, st.Quotas)
	}
}

// TestFaultsSeeded: the same seed injects the same faults.
func TestFaultsSeeded(t *testing.T) {
	run := func(seed uint64) []int {
		rec := newRecorder()
		gw := start(t, local.Config{Routes: rec.routes(), Faults: &local.Faults{ServerError: 0.3, Gone: 0.3, Seed: seed}})
		_, id := connect(t, gw, rec)
		var out []int
		for range 40 {
			status, _ := rawPost(t, gw, id, "", nil, "x")
			out = append(out, status)
		}
		return out
	}
	a, b, other := run(7), run(7), run(8)
	if !equalInts(a, b) {
		t.Errorf("seed 7 twice:\n%v\n%v", a, b)
	}
	if equalInts(a, other) {
		t.Errorf("seeds 7 and 8 injected the same faults: %v", a)
	}
	n := map[int]int{}
	for _, s := range a {
		n[s]++
	}
	if n[http.StatusOK] == 0 || n[http.StatusGone] == 0 || n[http.StatusInternalServerError] == 0 {
		t.Errorf("40 calls at 30 %% / 30 %%: %v", n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
