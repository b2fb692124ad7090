package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/protocol"
)

func TestParseQuotasAndFaults(t *testing.T) {
	o, err := parseDevFlags([]string{"--quotas", "aws,requests=20000,burst=100,message=1024,frame=512,idle=1m,lifetime=3h", "--faults", "5xx=0.01,410=0.02,latency=200ms@0.1,lost-disconnect=0.5,drop=0.001,seed=42"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := o.sec.limits
	if q := l.quotas.WithDefaults(); q.RequestsPerSecond != 20000 || q.RequestsBurst != 100 || q.NewConnectionsPerSecond != 500 || q.NewConnectionsBurst != 500 {
		t.Errorf("quotas %+v", q)
	}
	if l.messageLimit != 1024 || l.frameLimit != 512 || l.idle != time.Minute || l.lifetime != 3*time.Hour {
		t.Errorf("limits %+v", l)
	}
	if f := l.faults; f.ServerError != 0.01 || f.Gone != 0.02 || f.Latency != 200*time.Millisecond || f.LatencyRate != 0.1 || f.LostDisconnect != 0.5 || f.Drop != 0.001 || f.Seed != 42 {
		t.Errorf("faults %+v", f)
	}
	for _, bad := range [][]string{
		{"--quotas", "gcp"}, {"--quotas", "aws,requests=-1"}, {"--quotas", "aws,nope=1"},
		{"--faults", "5xx=2"}, {"--faults", "latency=200ms"}, {"--faults", "5xx=0.6,410=0.6"}, {"--faults", "x"},
	} {
		var u usageError
		if _, err := parseDevFlags(bad, io.Discard); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// demoRun is one client's session of the demo under faults: what it
// sent and every terminal outcome it got for each request.
type demoRun struct {
	mu        sync.Mutex
	outcomes  map[string]int // client request ID -> terminal messages
	chats     map[string]int // chat payload -> copies received
	serverIDs map[string]string
}

// runDemoClient dials, waits for start, sends echo, report and a chat
// broadcast, and reads until done closes or the socket ends, counting
// terminal outcomes in run.
func runDemoClient(ctx context.Context, t *testing.T, url string, i int, run *demoRun, dialled *sync.WaitGroup, start, done <-chan struct{}) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	dialled.Done()
	if err != nil {
		t.Errorf("client %d dial: %v", i, err)
		return
	}
	t.Cleanup(func() { c.CloseNow() })
	// Every client is connected before anyone chats.
	<-start
	for _, msg := range []string{
		fmt.Sprintf(`{"type":"request","id":"echo-%d","action":"echo","payload":{"n":%d}}`, i, i),
		fmt.Sprintf(`{"type":"request","id":"report-%d","action":"report","payload":{"seconds":0.3}}`, i),
		fmt.Sprintf(`{"type":"request","id":"chat-%d","action":"broadcast","payload":{"chat":"hello from %d"}}`, i, i),
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Errorf("client %d write: %v", i, err)
			return
		}
	}
	go func() {
		<-done
		c.CloseNow()
	}()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			serverMessage
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("client %d: %s: %v", i, b, err)
			continue
		}
		var chat struct {
			Chat string `json:"chat"`
		}
		run.mu.Lock()
		switch {
		case m.Type == protocol.TypeRelay && json.Unmarshal(m.Data, &chat) == nil && chat.Chat != "":
			run.chats[chat.Chat]++
		case m.Type == protocol.TypeAck:
			run.serverIDs[m.RequestID] = m.ID
		case m.Type == protocol.TypeResponse, m.Type == protocol.TypeError:
			run.outcomes[m.RequestID]++
		case m.Type == protocol.TypeComplete:
			if id, ok := run.serverIDs[m.RequestID]; ok {
				run.outcomes[id]++
			} else {
				run.outcomes["complete:"+m.RequestID]++
			}
		}
		run.mu.Unlock()
	}
}

func (r *demoRun) complete(clients int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.outcomes) == 3 && len(r.chats) == clients
}

// TestDevDemoUnderQuotasAndFaults runs the demo's requests (echo, a report
// with progress, a chat broadcast to every client) from 8 clients with
// --quotas aws and --faults injecting 5xx, added latency and lost
// $disconnects: the manager's retries absorb them, and every request ends
// with exactly one outcome, every chat copy arrives once, and the
// processor accounts for every report once. The console and /metrics show
// what was injected.
func TestDevDemoUnderQuotasAndFaults(t *testing.T) {
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0", "--quotas", "aws", "--faults", "5xx=0.15,latency=30ms@0.2,lost-disconnect=0.5,seed=3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := s.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	const clients = 8
	start, done := make(chan struct{}), make(chan struct{})
	runs := make([]*demoRun, clients)
	var wg, dialled sync.WaitGroup
	dialled.Add(clients)
	for i := range clients {
		runs[i] = &demoRun{outcomes: map[string]int{}, chats: map[string]int{}, serverIDs: map[string]string{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runDemoClient(ctx, t, s.wsURL, i, runs[i], &dialled, start, done)
		}()
	}
	dialled.Wait()
	close(start)
	// Wait until every client has its three outcomes and all chats (or
	// the test's deadline), then close them.
	for ctx.Err() == nil {
		all := true
		for _, r := range runs {
			if !r.complete(clients) {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(done)
	wg.Wait()

	for i, r := range runs {
		for _, id := range []string{fmt.Sprintf("echo-%d", i), fmt.Sprintf("report-%d", i), fmt.Sprintf("chat-%d", i)} {
			if n := r.outcomes[id]; n != 1 {
				t.Errorf("client %d: %s ended with %d outcomes, want 1 (all: %v)", i, id, n, r.outcomes)
			}
		}
		for j := range clients {
			if n := r.chats[fmt.Sprintf("hello from %d", j)]; n != 1 {
				t.Errorf("client %d got chat %d %d times, want 1", i, j, n)
			}
		}
	}
	st := s.gw.LimitStats()
	if st.Injected.ServerErrors == 0 || st.Injected.Delayed == 0 {
		t.Errorf("the faults were not exercised: %+v", st.Injected)
	}
	if p := s.proc.Stats(); p.Completed != clients || p.Failed != 0 || p.Lost != 0 {
		t.Errorf("processor %+v, want %d reports completed, none failed or lost", p, clients)
	}
	// The console and /metrics show the quotas and the faults.
	state := consoleState(t, "http://"+s.addr)
	if state.Limits == nil || state.Limits.Injected.ServerErrors != st.Injected.ServerErrors || state.Limits.Quotas == nil {
		t.Errorf("console limits %+v", state.Limits)
	}
	fams := scrape(t, "http://"+s.addr+"/metrics")
	if v := value(fams, "streamer_gateway_faults_injected_total", "fault", "5xx"); v != float64(st.Injected.ServerErrors) {
		t.Errorf("metrics 5xx %v, stats %d", v, st.Injected.ServerErrors)
	}
	if v := value(fams, "streamer_gateway_quota", "kind", "request", "limit", "rate"); v != 10000 {
		t.Errorf("metrics request quota %v", v)
	}
	if v := value(fams, "streamer_gateway_throttled_total", "kind", "request"); v != float64(st.ThrottledRequests) {
		t.Errorf("metrics throttled requests %v, stats %d", v, st.ThrottledRequests)
	}
	for _, name := range documentedLimitMetrics(t) {
		if fams[name] == nil {
			t.Errorf("%s (in docs/OPERATING.md) is not served", name)
		}
	}
	var out strings.Builder
	s.sec.printSecurity(&out, "http://"+s.addr, false)
	if !strings.Contains(out.String(), "Quotas:") || !strings.Contains(out.String(), "Faults:              5xx 0.15") {
		t.Errorf("start-up lines:\n%s", out.String())
	}
}

// limitMetric reports whether a metric exists only with --quotas or
// --faults.
func limitMetric(name string) bool {
	return strings.HasPrefix(name, "streamer_gateway_throttled_") || strings.HasPrefix(name, "streamer_gateway_faults_") || name == "streamer_gateway_quota"
}

// documentedLimitMetrics are the quota and fault metrics docs/OPERATING.md
// names.
func documentedLimitMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/OPERATING.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("`(streamer_[a-z0-9_]+)").FindAllStringSubmatch(string(doc), -1) {
		if limitMetric(m[1]) {
			out = append(out, m[1])
		}
	}
	if len(out) != 3 {
		t.Errorf("docs/OPERATING.md names %v", out)
	}
	return out
}
