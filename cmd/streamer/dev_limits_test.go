package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
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
	mu sync.Mutex
	// dropped says the socket ended before the test closed it.
	dropped bool
	// id is the client's connection ID.
	id        string
	outcomes  map[string]int // client request ID -> terminal messages
	chats     map[string]int // chat payload -> copies received
	serverIDs map[string]string
}

// runDemoClient dials, waits for start, sends echo, report and a chat
// broadcast, and reads until done closes or the socket ends, counting
// terminal outcomes in run.
func runDemoClient(ctx context.Context, t *testing.T, url string, i int, run *demoRun, dialled *sync.WaitGroup, start, done <-chan struct{}) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {fmt.Sprintf("client-%d", i)}}})
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
			select {
			case <-done:
			default:
				run.mu.Lock()
				run.dropped = true
				run.mu.Unlock()
			}
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

// complete reports whether the client has its three outcomes and every
// chat, or lost its socket. Finals relayed from the user's other
// connections ("complete:" keys) are not its own outcomes: counting one
// ends the run before the client's own report has come.
func (r *demoRun) complete(clients int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	own := 0
	for id := range r.outcomes {
		if !strings.HasPrefix(id, "complete:") {
			own++
		}
	}
	return r.dropped || own == 3 && len(r.chats) == clients
}

// runDemo starts the demo in-process with args and runs clients through
// it until each has its outcomes (or lost its socket) or patience passes.
func runDemo(t *testing.T, clients int, patience time.Duration, args ...string) (*devStack, []*demoRun) {
	t.Helper()
	o, err := parseDevFlags(append([]string{"--addr", "127.0.0.1:0"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := s.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
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
	for _, c := range s.gw.Connections() {
		var i int
		if _, err := fmt.Sscanf(c.UserAgent, "client-%d", &i); err == nil && i < clients {
			runs[i].id = c.ConnectionID
		}
	}
	close(start)
	wait, stop := context.WithTimeout(ctx, patience)
	defer stop()
	for wait.Err() == nil {
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
	return s, runs
}

// TestDevDemoUnderQuotasAndFaults runs the demo's requests (echo, a report
// with progress, a chat broadcast to every client) from 8 clients with
// --quotas aws and --faults injecting 5xx, added latency and lost
// $disconnects: the manager's retries absorb them, and every request ends
// with exactly one outcome, every chat copy arrives once, and the
// processor accounts for every report once. The console and /metrics show
// what was injected.
func TestDevDemoUnderQuotasAndFaults(t *testing.T) {
	const clients = 8
	s, runs := runDemo(t, clients, 20*time.Second, "--quotas", "aws", "--faults", "5xx=0.03,latency=30ms@0.2,lost-disconnect=0.5,seed=3")
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
	if !strings.Contains(out.String(), "Quotas:") || !strings.Contains(out.String(), "Faults:              5xx 0.03") {
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
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("`(streamer_[a-z0-9_]+)").FindAllStringSubmatch(string(doc), -1) {
		if limitMetric(m[1]) && !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	if len(out) != 3 {
		t.Errorf("docs/OPERATING.md names %v", out)
	}
	return out
}

// TestDevDemoUnderGoneAndDrops runs the demo with faults no retry can
// hide: 410 GoneException for live connections and connections dropped
// without a close frame. No connection gets two outcomes for a request;
// every report the server acknowledged reaches its user (on its own
// connection, or on the user's others when its own is gone); every client
// no fault touched has all of its outcomes; the processor loses no
// report; the console counts what was injected.
func TestDevDemoUnderGoneAndDrops(t *testing.T) {
	const clients = 5
	// Clients a fault touched never complete; the others finish within a
	// second (a 0.3 s report), well inside the 8 s allowed.
	s, runs := runDemo(t, clients, 8*time.Second, "--faults", "410=0.04,drop=0.03,seed=11")
	// The connections told 410 (the console keeps the last 200 calls:
	// 5 clients make fewer).
	state := consoleState(t, "http://"+s.addr)
	told410 := map[string]bool{}
	for _, c := range state.Management {
		if c.Status == http.StatusGone {
			told410[c.ConnectionID] = true
		}
	}
	if len(state.Management) >= 200 {
		t.Fatalf("%d calls: the console's history may have lost some", len(state.Management))
	}
	hit := 0
	finals := map[string]int{}
	for i, r := range runs {
		for id, n := range r.outcomes {
			if n > 1 {
				t.Errorf("client %d: %s ended with %d outcomes", i, id, n)
			}
		}
		for j := range clients {
			if n := r.chats[fmt.Sprintf("hello from %d", j)]; n > 1 {
				t.Errorf("client %d got chat %d %d times", i, j, n)
			}
		}
		// A final follows its user to their other connections when its own
		// is gone: finals counts those.
		own := 0
		for id, n := range r.outcomes {
			if strings.HasPrefix(id, "complete:") {
				finals[id] += n
			} else {
				own++
			}
		}
		if r.dropped || r.id == "" || told410[r.id] {
			hit++
			continue
		}
		// A client no fault touched has every outcome of its own.
		if own != 3 {
			t.Errorf("client %d, untouched by faults, has outcomes %v", i, r.outcomes)
		}
	}
	// Every report the server acknowledged reached its user: on its own
	// connection, or on another of the same user's when its own was gone.
	for _, r := range runs {
		for serverID, clientID := range r.serverIDs {
			if r.outcomes[clientID] == 0 && finals["complete:"+serverID] == 0 {
				t.Errorf("report %s (%s) reached no connection of its user", serverID, clientID)
			}
		}
	}
	st := s.gw.LimitStats()
	if st.Injected.Gone+st.Injected.Dropped == 0 {
		t.Errorf("no fault injected: %+v", st.Injected)
	}
	if p := s.proc.Stats(); p.Lost != 0 || p.Running != 0 {
		t.Errorf("processor %+v", p)
	}
	// The console counts the faults.
	if state.Limits == nil || state.Limits.Injected != st.Injected {
		t.Errorf("console limits %+v, stats %+v", state.Limits, st.Injected)
	}
	t.Logf("injected %+v; %d of %d clients touched by a fault", st.Injected, hit, clients)
}

// TestTemplateChatUnderQuotasAndFaults runs the Node.js chat sample (AWS
// SDK v3, its own retries) under --quotas aws and --faults with 5xx and
// added latency: every message reaches every client exactly once, and the
// start-up lines say what is in force.
func TestTemplateChatUnderQuotasAndFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	endpoint := dynamotest.Endpoint(t)
	if _, err := os.Stat("testdata/chat/node_modules/@aws-sdk/client-apigatewaymanagementapi"); err != nil {
		t.Skip("testdata/chat/node_modules is missing: run `make test-deps`")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	table := dynamotest.Prefix("faultchat") + "connections"
	p := startDevProcess(t, buildBinary(t), "--template", "testdata/chat/template.yaml", "--dynamodb-endpoint", endpoint, "--no-watch",
		"--parameter-overrides", "TableName="+table, "--quotas", "aws", "--faults", "5xx=0.03,latency=20ms@0.2,seed=5")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(func() {
		dynamotest.Client(t).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	cls := []*client{dialDev(ctx, t, p.wsURL, nil), dialDev(ctx, t, p.wsURL, nil), dialDev(ctx, t, p.wsURL, nil)}
	for i, from := range cls {
		for j := range 3 {
			msg := fmt.Sprintf("m%d-%d", i, j)
			from.send(ctx, fmt.Sprintf(`{"action":"sendmessage","data":%q}`, msg))
			for k, to := range cls {
				if _, b, err := to.c.Read(ctx); err != nil || string(b) != msg {
					t.Fatalf("client %d read %q, %v; want %q", k, b, err, msg)
				}
			}
		}
	}
	p.stop(t)
	out := strings.Join(p.stdout, "\n")
	if !strings.Contains(out, "Quotas:              AWS's: 500 new connections/s") || !strings.Contains(out, "Faults:              5xx 0.03") {
		t.Errorf("start-up lines:\n%s", out)
	}
}
