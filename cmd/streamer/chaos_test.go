package main

// The chaos test of issue 13: three `streamer dev` processes on one
// dynalite (started here), 50 async reports from 10 real WebSocket
// clients, each a user of its own. Mid-way one runtime is killed with
// SIGKILL, dynalite is paused (SIGSTOP) for 5 s, then killed and restarted
// empty. Clients behave as the TypeScript client does: they reconnect when
// their socket dies or the server no longer knows it, resume what they
// were waiting for, and resubmit (same id) what was refused before it was
// queued. Every phase waits for what it needs to have happened (an
// observation, never a fixed sleep), and everything is bounded.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// chaosLease is the processes' lease: short, so that take-overs happen
// within the test, and long enough for a loaded machine to renew in time.
const chaosLease = 3 * time.Second

// dynalite is a dynalite server process the test controls.
type dynalite struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	log  *strings.Builder
}

func dynalitePaths(t *testing.T) (node, cli, keepalive string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cli = filepath.Join(root, ".tools", "node_modules", "dynalite", "cli.js")
	keepalive = filepath.Join(root, "scripts", "dynalite-keepalive.js")
	node, err = exec.LookPath("node")
	_, statErr := os.Stat(cli)
	if err != nil || statErr != nil {
		if os.Getenv(dynamotest.RequireEnv) == "1" {
			t.Fatalf("the chaos test needs node and %s (make tools): %v %v", cli, err, statErr)
		}
		t.Skip("node or dynalite missing; run make tools")
	}
	return node, cli, keepalive
}

func startDynalite(t *testing.T, port int) *dynalite {
	t.Helper()
	node, cli, keepalive := dynalitePaths(t)
	d := &dynalite{t: t, port: port, log: new(strings.Builder)}
	d.cmd = exec.Command(node, "--require", keepalive, cli, "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.addr(), time.Second)
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("dynalite did not listen within 20 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *dynalite) addr() string     { return fmt.Sprintf("127.0.0.1:%d", d.port) }
func (d *dynalite) endpoint() string { return "http://" + d.addr() }

func (d *dynalite) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("dynalite %v: %v", sig, err)
	}
}

// kill stops the server (resuming it first, or SIGKILL would wait for a
// stopped process to run) and waits for it.
func (d *dynalite) kill() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGCONT)
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// chaosRequest is one async request as its client sees it.
type chaosRequest struct {
	clientID string
	seconds  float64
	serverID string
	// finals are the complete and error messages about the request, in
	// order of arrival (a resume answered after the end restates it).
	finals   []serverMessage
	attempts map[int]bool
	lastSent time.Time
}

func (r *chaosRequest) done() bool { return len(r.finals) > 0 }

// chaosMessage is what the clients read: serverMessage plus the fields
// the test needs.
type chaosMessage struct {
	serverMessage
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

// observations are what the phases wait for, shared by the clients.
type observations struct {
	progressByProc [3]atomic.Int32 // progress received on a socket of process i
	retried        atomic.Int32    // progress of attempt 2 or later
	reconnects     atomic.Int32
	connRefusals   atomic.Int32 // errors that mean "this socket is broken", answered by reconnecting
}

// chaosWorld is what the clients share: where they may connect.
type chaosWorld struct {
	mu    sync.Mutex
	urls  []string
	alive []bool
	obs   observations
}

func (w *chaosWorld) pick(n int) (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range len(w.urls) {
		k := (n + i) % len(w.urls)
		if w.alive[k] {
			return k, w.urls[k]
		}
	}
	return -1, ""
}

// chaosClient is one user with one connection at a time.
type chaosClient struct {
	t     *testing.T
	n     int
	token string
	world *chaosWorld

	submit chan []*chaosRequest // from the test

	mu       sync.Mutex // guards reqs' fields for the test's reads
	reqs     []*chaosRequest
	byClient map[string]*chaosRequest
	byServer map[string]*chaosRequest
	// early holds final messages about a server id not acked yet (its ack
	// was lost with a dead process; the resubmission's ack tells it).
	early map[string][]serverMessage
}

type connEvent struct {
	msg *chaosMessage
	err error
}

// run is the client's life until ctx ends. One goroutine owns the
// connection; a reader goroutine per connection feeds events.
func (c *chaosClient) run(ctx context.Context) {
	var (
		conn     *websocket.Conn
		proc     int
		events   chan connEvent
		readDone chan struct{}
		quit     chan struct{}
		lastMsg  = time.Now()
		probed   bool // asked after a silence, and not answered yet
		tick     = time.NewTicker(500 * time.Millisecond)
		attempt  = c.n
	)
	defer tick.Stop()
	closeConn := func() {
		if conn != nil {
			close(quit)
			conn.CloseNow()
			<-readDone
			conn = nil
		}
	}
	defer closeConn()
	send := func(body string) bool {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return conn != nil && conn.Write(wctx, websocket.MessageText, []byte(body)) == nil
	}
	request := func(r *chaosRequest) bool {
		r.lastSent = time.Now()
		return send(fmt.Sprintf(`{"type":"request","id":%q,"action":"report","payload":{"seconds":%g}}`, r.clientID, r.seconds))
	}
	resume := func(r *chaosRequest) bool {
		r.lastSent = time.Now()
		return send(fmt.Sprintf(`{"type":"resume","request_id":%q}`, r.serverID))
	}
	// catchUp asks about every request without an end: resume the
	// queued ones, resubmit (same id, so never twice) the unanswered.
	catchUp := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range c.reqs {
			switch {
			case r.done():
			case r.serverID != "":
				if !resume(r) {
					return false
				}
			default:
				if !request(r) {
					return false
				}
			}
		}
		return true
	}
	connect := func() {
		closeConn()
		for ctx.Err() == nil {
			k, url := c.world.pick(attempt)
			attempt++
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cn, _, err := websocket.Dial(dctx, url+"?token="+c.token, nil)
			cancel()
			if err != nil {
				// The store may be paused or empty: $connect fails.
				time.Sleep(300 * time.Millisecond)
				continue
			}
			cn.SetReadLimit(128 << 10)
			conn, proc = cn, k
			events, readDone, quit = make(chan connEvent, 256), make(chan struct{}), make(chan struct{})
			go func(cn *websocket.Conn, events chan<- connEvent, done chan<- struct{}, quit <-chan struct{}) {
				defer close(done)
				for {
					var ev connEvent
					_, b, err := cn.Read(context.Background())
					if err != nil {
						ev.err = err
					} else {
						ev.msg = new(chaosMessage)
						if json.Unmarshal(b, ev.msg) != nil {
							continue
						}
					}
					select {
					case events <- ev:
					case <-quit:
						return
					}
					if err != nil {
						return
					}
				}
			}(cn, events, readDone, quit)
			lastMsg = time.Now()
			if catchUp() {
				return
			}
		}
	}
	reconnect := func() {
		c.world.obs.reconnects.Add(1)
		connect()
	}
	connect()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case batch := <-c.submit:
			c.mu.Lock()
			for _, r := range batch {
				r.attempts = map[int]bool{}
				c.reqs = append(c.reqs, r)
				c.byClient[r.clientID] = r
			}
			c.mu.Unlock()
			for _, r := range batch {
				c.mu.Lock()
				ok := request(r)
				c.mu.Unlock()
				if !ok {
					reconnect()
					break
				}
			}
		case ev := <-events:
			if ev.err != nil {
				reconnect()
				continue
			}
			lastMsg, probed = time.Now(), false
			if c.handle(ev.msg, proc) {
				c.world.obs.connRefusals.Add(1)
				time.Sleep(200 * time.Millisecond)
				reconnect()
			}
		case <-tick.C:
			// No news for a while about requests that have not ended: the
			// server may have lost this socket (a wiped store). Ask; if
			// even that gets no answer (the server cannot reply to a
			// socket it has no record of), connect again, as a client's
			// heartbeat does.
			if time.Since(lastMsg) > 2*time.Second && c.open() > 0 {
				lastMsg = time.Now()
				if probed {
					probed = false
					reconnect()
					continue
				}
				probed = true
				if !catchUp() || !send(`{"type":"ping"}`) {
					reconnect()
				}
			}
		}
	}
}

// handle records one message and reports whether it says that this
// connection is broken (the server does not know it, or could not reach
// its store to queue a request): then the client reconnects.
func (c *chaosClient) handle(m *chaosMessage, proc int) (broken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Type {
	case streamer.TypeAck:
		if r := c.byClient[m.ID]; r != nil && r.serverID == "" {
			r.serverID = m.RequestID
			c.byServer[m.RequestID] = r
			r.finals = append(r.finals, c.early[m.RequestID]...)
			delete(c.early, m.RequestID)
		}
	case streamer.TypeProgress:
		if r := c.byServer[m.RequestID]; r != nil {
			r.attempts[m.Attempt] = true
			c.world.obs.progressByProc[proc].Add(1)
			if m.Attempt >= 2 {
				c.world.obs.retried.Add(1)
			}
		}
	case streamer.TypeComplete, streamer.TypeError:
		switch m.Code {
		case streamer.CodeUnauthorized, streamer.CodeInternal, streamer.CodeRateLimited:
			// Not an outcome: nothing was decided about the request.
			return true
		}
		r := c.byServer[m.RequestID]
		if r == nil {
			r = c.byClient[m.RequestID] // refused before it was queued
		}
		if r != nil {
			r.finals = append(r.finals, m.serverMessage)
		} else {
			c.early[m.RequestID] = append(c.early[m.RequestID], m.serverMessage)
		}
	}
	return false
}

func (c *chaosClient) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reqs {
		if !r.done() {
			n++
		}
	}
	return n
}

// snapshot copies the client's requests for the test to read.
func (c *chaosClient) snapshot() []chaosRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]chaosRequest, len(c.reqs))
	for i, r := range c.reqs {
		out[i] = *r
		out[i].finals = append([]serverMessage(nil), r.finals...)
		out[i].attempts = maps.Clone(r.attempts)
	}
	return out
}

// handlerDone matches the processor's debug line for a handler that ran to
// completion (not stopped, no error).
var handlerDone = regexp.MustCompile(`msg="handler returned".* request_id=(\S+).* ok=true`)

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes and dynalite")
	}
	bin := buildBinary(t)
	db := startDynalite(t, freePort(t))
	prefix := dynamotest.Prefix("chaos")

	secret := []byte("chaos-secret-chaos-secret-chaos-secret!")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--dynamodb-endpoint", db.endpoint(), "--table-prefix", prefix,
		"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", secretFile,
		"--lease", chaosLease.String(), "--sweep-interval", "1s", "--pending-grace", "2s", "--shutdown-timeout", "5s"}
	procs := make([]*devProcess, 3)
	world := &chaosWorld{}
	for i := range procs {
		procs[i] = startDevProcess(t, bin, args...)
		world.urls = append(world.urls, procs[i].wsURL)
		world.alive = append(world.alive, true)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	clients := make([]*chaosClient, 10)
	var wg sync.WaitGroup
	for i := range clients {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": fmt.Sprintf("user-%d", i), "tenant_id": "chaos", "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = &chaosClient{t: t, n: i, token: tok, world: world, submit: make(chan []*chaosRequest, 4),
			byClient: map[string]*chaosRequest{}, byServer: map[string]*chaosRequest{}, early: map[string][]serverMessage{}}
		wg.Go(func() { clients[i].run(ctx) })
	}
	stopClients := sync.OnceFunc(func() { cancel(); wg.Wait() })
	defer stopClients()
	if dir := os.Getenv("CHAOS_LOG_DIR"); dir != "" {
		// For diagnosis: each process's log, once the test ends.
		t.Cleanup(func() {
			for i, p := range procs {
				if p.cmd.ProcessState == nil {
					p.cmd.Process.Kill()
					<-p.exited
				}
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("proc%d.log", i)), []byte(p.stderr.String()), 0o644)
			}
		})
	}

	submit := func(batch string, perClient int, seconds float64) {
		for _, c := range clients {
			var rs []*chaosRequest
			for k := range perClient {
				rs = append(rs, &chaosRequest{clientID: fmt.Sprintf("%s-%d-%d", batch, c.n, k), seconds: seconds})
			}
			c.submit <- rs
		}
	}
	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				for _, c := range clients {
					for _, r := range c.snapshot() {
						if !r.done() {
							t.Logf("open: %s %s attempts %v", r.clientID, r.serverID, r.attempts)
						}
					}
				}
				t.Fatalf("chaos: %s did not happen within %s", what, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// allDone: the client holds want requests of the batch (submission
	// is asynchronous), and every one has ended.
	allDone := func(prefix string, want int) func() bool {
		return func() bool {
			n := 0
			for _, c := range clients {
				for _, r := range c.snapshot() {
					if strings.HasPrefix(r.clientID, prefix) {
						if !r.done() {
							return false
						}
						n++
					}
				}
			}
			return n == want
		}
	}

	// Phase 1: 30 reports of 3 s. Once process 0 is running some of its
	// own, it is killed: its clients reconnect to the others and resume,
	// which take the requests over when the dead process's lease ends.
	start := time.Now()
	submit("a", 3, 3)
	waitFor("progress from process 0", 30*time.Second, func() bool { return world.obs.progressByProc[0].Load() > 0 })
	world.mu.Lock()
	world.alive[0] = false
	world.mu.Unlock()
	if err := procs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for range procs[0].lines {
	}
	<-procs[0].exited
	killedAt := time.Now()
	t.Logf("chaos: killed process 0 at %s", killedAt.Sub(start).Round(time.Millisecond))

	// Phase 2: once a take-over runs (progress of attempt 2), dynalite is
	// paused for 5 s: every lease runs out; handlers are stopped and their
	// requests run again once the store answers.
	waitFor("a take-over (progress of attempt 2)", 30*time.Second, func() bool { return world.obs.retried.Load() > 0 })
	t.Logf("chaos: first take-over seen %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	db.signal(syscall.SIGSTOP)
	time.Sleep(5 * time.Second)
	db.signal(syscall.SIGCONT)
	t.Logf("chaos: dynalite paused 5 s, resumed at %s", time.Since(start).Round(time.Millisecond))
	waitFor("an end for every phase-1 request", 45*time.Second, allDone("a-", 30))

	// Phase 3: 10 long reports; while they run, dynalite dies and comes
	// back empty (the tables are made again, as an operator would). Their
	// records are gone: each must end with an error, not silence.
	submit("b", 1, 30)
	waitFor("progress of the long reports", 30*time.Second, func() bool {
		for _, c := range clients {
			for _, r := range c.snapshot() {
				if strings.HasPrefix(r.clientID, "b-") && len(r.attempts) > 0 {
					return true
				}
			}
		}
		return false
	})
	db.kill()
	db = startDynalite(t, db.port)
	if out, err := exec.Command(bin, "tables", "create", "--endpoint", db.endpoint(), "--prefix", prefix).CombinedOutput(); err != nil {
		t.Fatalf("tables create: %v\n%s", err, out)
	}
	t.Logf("chaos: dynalite restarted empty at %s", time.Since(start).Round(time.Millisecond))
	waitFor("an end for every long report", 45*time.Second, allDone("b-", 10))

	// Phase 4: the system works again: 10 short reports complete.
	submit("c", 1, 1)
	waitFor("an end for every request", 45*time.Second, allDone("", 50))
	t.Logf("chaos: all 50 requests ended at %s; %d reconnects, %d broken-socket answers",
		time.Since(start).Round(time.Millisecond), world.obs.reconnects.Load(), world.obs.connRefusals.Load())
	stopClients()

	for _, p := range procs[1:] {
		p.stop(t)
	}
	completions := map[string]int{}
	for i, p := range procs {
		logs := p.stderr.String()
		if strings.Contains(logs, "panic") {
			t.Errorf("process %d logged a panic:\n%s", i, logs)
		}
		for _, m := range handlerDone.FindAllStringSubmatch(logs, -1) {
			completions[m[1]]++
		}
	}

	// Per request: at least one final message; all of them state one
	// outcome; a completed request's handler ran to completion at most
	// once more than needed.
	var completed, lost, total, restated, reruns int
	for _, c := range clients {
		for _, r := range c.snapshot() {
			total++
			if !r.done() {
				t.Errorf("%s: no final message", r.clientID)
				continue
			}
			first := r.finals[0]
			restated += len(r.finals) - 1
			for _, f := range r.finals[1:] {
				if !sameOutcome(first, f) {
					t.Errorf("%s: two outcomes: %+v then %+v", r.clientID, first, f)
				}
			}
			switch {
			case first.Type == streamer.TypeComplete:
				completed++
				n := completions[r.serverID]
				if n == 2 {
					reruns++
				}
				if n < 1 || n > 2 {
					t.Errorf("%s (%s): handler ran to completion %d times, want 1 or 2", r.clientID, r.serverID, n)
				}
			case lostCode(first.Code):
				lost++
			}
			if strings.HasPrefix(r.clientID, "c-") && first.Type != streamer.TypeComplete {
				t.Errorf("%s: after recovery, ended with %+v, want complete", r.clientID, first)
			}
		}
	}
	for _, c := range clients {
		c.mu.Lock()
		for id, ms := range c.early {
			t.Errorf("client %d: final messages about a request it never had: %s %+v", c.n, id, ms)
		}
		c.mu.Unlock()
	}
	t.Logf("chaos: %d requests: %d completed (%d whose handler completed twice), %d lost with the wiped store, %d other errors; %d final messages restated by a resume",
		total, completed, reruns, lost, total-completed-lost, restated)
	if total != 50 {
		t.Errorf("%d requests, want 50", total)
	}
	if lost == 0 {
		t.Errorf("no request ended lost although the store was wiped while 10 ran")
	}
}

// lostCode reports whether code says the request's record is gone: pushed
// by the processor (REQUEST_LOST), or answered to a resume (NOT_FOUND).
func lostCode(code streamer.ErrorCode) bool {
	return code == streamer.CodeRequestLost || code == streamer.CodeNotFound
}

// sameOutcome reports whether two final messages state the same end: the
// same result, or errors of the same code (REQUEST_LOST and NOT_FOUND both
// say the record is gone).
func sameOutcome(a, b serverMessage) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == streamer.TypeComplete {
		return string(a.Result) == string(b.Result)
	}
	return a.Code == b.Code || (lostCode(a.Code) && lostCode(b.Code))
}
