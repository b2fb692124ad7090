package main

// The chaos test of issue 13: three `streamer dev` processes on one
// dynalite (started here), 50 async reports from 10 real WebSocket
// clients, each a user of its own. Mid-way one runtime is killed with
// SIGKILL, dynalite is paused (SIGSTOP) for 5 s, then killed and restarted
// empty. Clients behave as the TypeScript client does: they reconnect when
// their socket dies or the server no longer knows it, resume what they
// were waiting for, and resubmit (same id) what was refused before it was
// queued. Every phase waits for what it needs to have happened (an
// observation; the 5 s pause is the only fixed wait), and everything is
// bounded. The dynalite control is in chaos_dynalite_test.go, the clients
// in chaos_client_test.go.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// chaosLease is the processes' lease: short, so that take-overs happen
// within the test, and long enough for a loaded machine to renew in time.
const chaosLease = 3 * time.Second

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
		"--request-id-key-file", secretFile, "--lease", chaosLease.String(), "--sweep-interval", "1s", "--pending-grace", "2s", "--shutdown-timeout", "5s"}
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
			case first.Type == protocol.TypeComplete:
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
			if strings.HasPrefix(r.clientID, "c-") && first.Type != protocol.TypeComplete {
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
func lostCode(code protocol.ErrorCode) bool {
	return code == protocol.CodeRequestLost || code == protocol.CodeNotFound
}

// sameOutcome reports whether two final messages state the same end: the
// same result, or errors of the same code (REQUEST_LOST and NOT_FOUND both
// say the record is gone).
func sameOutcome(a, b serverMessage) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == protocol.TypeComplete {
		return string(a.Result) == string(b.Result)
	}
	return a.Code == b.Code || (lostCode(a.Code) && lostCode(b.Code))
}
