package main

// The request chaos test: three `streamer dev` processes on one dynalite,
// one user per client, each client with one report at a time. Three
// faults, one after the other:
//
//   - the store is wiped (dynalite killed and restarted empty) under
//     running reports: every resume is answered, and every client gets an
//     outcome within the lease plus 10 s;
//   - a runtime is frozen (SIGSTOP) past its lease and then continued: its
//     clients move to another runtime and resume there; every client gets
//     one outcome, and no progress of attempt 1 arrives after attempt 2's
//     first message or after the outcome;
//   - a runtime is stopped (SIGTERM) mid-run, its requests are put back in
//     the queue: no percentage a client was told (by a resume or live) is
//     undercut later by the same attempt.
//
// The clients behave as the TypeScript client does: they resume every
// second until the outcome, and connect elsewhere when a socket dies or
// stays silent. Each phase waits for what it needs (observations); the
// fixed waits are the freeze and the report lengths.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// frame is one message a request's client received, with when.
type frame struct {
	at  time.Time
	msg chaosMessage
}

// reqClient is one user with one report and one connection at a time.
type reqClient struct {
	t      *testing.T
	name   string
	token  string
	procs  *procSet
	prefer int // the process it connects to first

	mu       sync.Mutex
	clientID string
	serverID string
	frames   []frame     // about its request, in order of arrival
	resumes  []time.Time // when each resume was sent on a live process's socket
	final    time.Time   // when the first final message arrived
	moved    int         // connections made after the first
}

// procSet is which processes clients may connect to.
type procSet struct {
	mu    sync.Mutex
	urls  []string
	alive []bool
}

func (s *procSet) setAlive(i int, alive bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[i] = alive
}

// pick returns the first live process from i on.
func (s *procSet) pick(i int) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range len(s.urls) {
		j := (i + k) % len(s.urls)
		if s.alive[j] {
			return j, s.urls[j]
		}
	}
	return -1, ""
}

func (s *procSet) isAlive(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return i >= 0 && s.alive[i]
}

// run submits a report of the given length and follows it until ctx ends.
func (c *reqClient) run(ctx context.Context, clientID string, seconds float64) {
	c.mu.Lock()
	c.clientID, c.serverID, c.frames, c.resumes, c.final = clientID, "", nil, nil, time.Time{}
	c.mu.Unlock()
	type event struct {
		msg *chaosMessage
		err error
	}
	var (
		conn     *websocket.Conn
		proc     = -1
		events   chan event
		lastRead time.Time
		asked    time.Time // last resume on this socket not followed by any message
	)
	closeConn := func() {
		if conn != nil {
			conn.CloseNow()
			conn = nil
		}
	}
	defer closeConn()
	send := func(body string) bool {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return conn != nil && conn.Write(wctx, websocket.MessageText, []byte(body)) == nil
	}
	ask := func() {
		c.mu.Lock()
		sid, done := c.serverID, !c.final.IsZero()
		c.mu.Unlock()
		switch {
		case done:
		case sid == "":
			send(fmt.Sprintf(`{"type":"request","id":%q,"action":"report","payload":{"seconds":%g}}`, clientID, seconds))
		default:
			if send(fmt.Sprintf(`{"type":"resume","request_id":%q}`, sid)) {
				now := time.Now()
				if asked.IsZero() {
					asked = now
				}
				if c.procs.isAlive(proc) {
					c.mu.Lock()
					c.resumes = append(c.resumes, now)
					c.mu.Unlock()
				}
			}
		}
	}
	connect := func(from int) {
		closeConn()
		for ctx.Err() == nil {
			k, url := c.procs.pick(from)
			from++
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			cn, _, err := websocket.Dial(dctx, url+"?token="+c.token, nil)
			cancel()
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			cn.SetReadLimit(128 << 10)
			if proc >= 0 {
				c.mu.Lock()
				c.moved++
				c.mu.Unlock()
			}
			conn, proc, lastRead, asked = cn, k, time.Now(), time.Time{}
			ch := make(chan event, 64)
			events = ch
			go func() {
				for {
					_, b, err := cn.Read(context.Background())
					var ev event
					if err != nil {
						ev.err = err
					} else if ev.msg = new(chaosMessage); json.Unmarshal(b, ev.msg) != nil {
						continue
					}
					select {
					case ch <- ev:
					case <-ctx.Done():
						return
					}
					if err != nil {
						return
					}
				}
			}()
			ask()
			return
		}
	}
	connect(c.prefer)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if ev.err != nil {
				connect(proc + 1)
				continue
			}
			lastRead, asked = time.Now(), time.Time{}
			c.record(ev.msg)
		case <-tick.C:
			// A socket that answers nothing to a resume for 2.5 s is
			// behind a process that no longer runs: connect elsewhere,
			// as the TypeScript client does when a pong does not come.
			if !asked.IsZero() && time.Since(asked) > 2500*time.Millisecond && time.Since(lastRead) > 2500*time.Millisecond {
				connect(proc + 1)
				continue
			}
			ask()
		}
	}
}

// record keeps a message about the client's request.
func (c *reqClient) record(m *chaosMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case m.Type == protocol.TypeAck && m.ID == c.clientID:
		c.serverID = m.RequestID
	case m.RequestID == "" || (m.RequestID != c.serverID && m.RequestID != c.clientID):
		return // another request's, or not about one
	}
	now := time.Now()
	c.frames = append(c.frames, frame{at: now, msg: *m})
	if isOutcome(m) && c.final.IsZero() {
		c.final = now
	}
}

// isOutcome reports whether m ends its request. UNAUTHORIZED, INTERNAL and
// RATE_LIMITED decide nothing about it: the store could not be read, the
// socket is unknown, or the server is busy.
func isOutcome(m *chaosMessage) bool {
	switch {
	case m.Type == protocol.TypeComplete:
		return true
	case m.Type != protocol.TypeError:
		return false
	}
	return m.Code != protocol.CodeUnauthorized && m.Code != protocol.CodeInternal && m.Code != protocol.CodeRateLimited
}

func (c *reqClient) snapshot() (frames []frame, resumes []time.Time, final time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...), append([]time.Time(nil), c.resumes...), c.final
}

func (c *reqClient) started() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if f.msg.Type == protocol.TypeProgress {
			return true
		}
	}
	return false
}

func (c *reqClient) done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.final.IsZero()
}

// outcomes checks the client got outcomes that agree, and returns the first.
func outcomes(t *testing.T, who string, frames []frame) (chaosMessage, bool) {
	t.Helper()
	var first *chaosMessage
	for i := range frames {
		m := &frames[i].msg
		if !isOutcome(m) {
			continue
		}
		if first == nil {
			first = m
			continue
		}
		if !sameOutcome(first.serverMessage, m.serverMessage) {
			t.Errorf("%s: two outcomes: %+v then %+v", who, first.serverMessage, m.serverMessage)
		}
	}
	if first == nil {
		return chaosMessage{}, false
	}
	return *first, true
}

func TestChaosRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes and dynalite")
	}
	bin := buildBinary(t)
	db := startDynalite(t, freePort(t))
	prefix := dynamotest.Prefix("chaosreq")
	secret := []byte("chaos-requests-secret-chaos-requests!!")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--dynamodb-endpoint", db.endpoint(), "--table-prefix", prefix,
		"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", secretFile, "--request-id-key-file", secretFile,
		"--lease", chaosLease.String(), "--sweep-interval", "1s", "--pending-grace", "2s", "--shutdown-timeout", "4s"}
	procs := make([]*devProcess, 3)
	set := &procSet{}
	for i := range procs {
		procs[i] = startDevProcess(t, bin, args...)
		set.urls = append(set.urls, procs[i].wsURL)
		set.alive = append(set.alive, true)
	}
	newClients := func(phase string, n int, prefer func(i int) int) []*reqClient {
		cs := make([]*reqClient, n)
		for i := range cs {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": fmt.Sprintf("%s-user-%d", phase, i), "tenant_id": "chaos", "exp": time.Now().Add(time.Hour).Unix(),
			}).SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			cs[i] = &reqClient{t: t, name: fmt.Sprintf("%s-%d", phase, i), token: tok, procs: set, prefer: prefer(i)}
		}
		return cs
	}
	runAll := func(cs []*reqClient, seconds float64) (stop func()) {
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() { c.run(ctx, c.name, seconds) })
		}
		return sync.OnceFunc(func() { cancel(); wg.Wait() })
	}
	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen within %s", what, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	all := func(cs []*reqClient, f func(*reqClient) bool) func() bool {
		return func() bool {
			for _, c := range cs {
				if !f(c) {
					return false
				}
			}
			return true
		}
	}
	start := time.Now()

	// Phase 1: the store is wiped under six running reports.
	wiped := newClients("wipe", 6, func(i int) int { return i % 3 })
	stop := runAll(wiped, 30)
	waitFor("progress of every report", 30*time.Second, all(wiped, (*reqClient).started))
	db.kill()
	db = startDynalite(t, db.port)
	if out, err := exec.Command(bin, "tables", "create", "--endpoint", db.endpoint(), "--prefix", prefix).CombinedOutput(); err != nil {
		t.Fatalf("tables create: %v\n%s", err, out)
	}
	restarted := time.Now()
	t.Logf("store wiped and restarted at %s", restarted.Sub(start).Round(time.Millisecond))
	waitFor("an outcome for every wiped report", chaosLease+10*time.Second, all(wiped, (*reqClient).done))
	time.Sleep(time.Second) // the last resumes' answers
	stop()
	var slowestAnswer, slowestOutcome time.Duration
	for _, c := range wiped {
		frames, resumes, final := c.snapshot()
		slowestOutcome = max(slowestOutcome, final.Sub(restarted))
		first, ok := outcomes(t, c.name, frames)
		if !ok || !lostCode(first.Code) {
			t.Errorf("%s: outcome %+v, want the request lost", c.name, first.serverMessage)
		}
		if final.Sub(restarted) > chaosLease+10*time.Second {
			t.Errorf("%s: outcome %s after the restart", c.name, final.Sub(restarted))
		}
		// Every resume sent to a running process is answered: a message
		// about the request follows it within 1.5 s.
		for _, r := range resumes {
			if r.After(final) {
				break
			}
			answered := false
			for _, f := range frames {
				if f.at.After(r) && f.at.Sub(r) <= 1500*time.Millisecond {
					answered = true
					slowestAnswer = max(slowestAnswer, f.at.Sub(r))
					break
				}
			}
			if !answered {
				t.Errorf("%s: the resume sent %s after the restart got no answer", c.name, r.Sub(restarted).Round(time.Millisecond))
			}
		}
	}

	t.Logf("wiped store: slowest resume answer %s, last outcome %s after the restart (bound: %s)",
		slowestAnswer.Round(time.Millisecond), slowestOutcome.Round(time.Millisecond), chaosLease+10*time.Second)

	// Phase 2: process 0 is frozen past its lease with four reports
	// running on it, then continued.
	frozen := newClients("freeze", 4, func(int) int { return 0 })
	stop = runAll(frozen, 8)
	waitFor("progress of every report on process 0", 30*time.Second, all(frozen, (*reqClient).started))
	time.Sleep(500 * time.Millisecond)
	set.setAlive(0, false)
	if err := procs[0].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenAt := time.Now()
	time.Sleep(2 * chaosLease)
	if err := procs[0].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	set.setAlive(0, true)
	t.Logf("process 0 frozen %s at %s", time.Since(frozenAt).Round(time.Millisecond), frozenAt.Sub(start).Round(time.Millisecond))
	waitFor("an outcome for every frozen report", 40*time.Second, all(frozen, (*reqClient).done))
	time.Sleep(2 * time.Second) // anything the old run still sends
	stop()
	for _, c := range frozen {
		frames, _, _ := c.snapshot()
		first, ok := outcomes(t, c.name, frames)
		if !ok || first.Type != protocol.TypeComplete {
			t.Errorf("%s: outcome %+v, want complete", c.name, first.serverMessage)
		}
		newest, ended := 0, false
		for _, f := range frames {
			m := f.msg
			switch {
			case isOutcome(&m):
				ended = true
			case m.Type == protocol.TypeProgress && ended:
				t.Errorf("%s: progress of attempt %d (%g %%) after the outcome", c.name, m.Attempt, m.Percentage)
			case m.Type == protocol.TypeProgress && m.Attempt < newest:
				t.Errorf("%s: progress of attempt %d (%g %%) after attempt %d's", c.name, m.Attempt, m.Percentage, newest)
			}
			newest = max(newest, m.Attempt)
		}
		if newest < 2 {
			t.Logf("%s: finished without a take-over (attempt %d)", c.name, newest)
		}
	}

	// Phase 3: process 1 is stopped (SIGTERM) with four reports running:
	// cut at its shutdown timeout, put back in the queue, run again.
	requeued := newClients("term", 4, func(int) int { return 1 })
	stop = runAll(requeued, 8)
	waitFor("progress of every report on process 1", 30*time.Second, all(requeued, (*reqClient).started))
	time.Sleep(time.Second)
	set.setAlive(1, false)
	procs[1].stop(t)
	waitFor("an outcome for every requeued report", 40*time.Second, all(requeued, (*reqClient).done))
	stop()
	for _, c := range requeued {
		frames, _, _ := c.snapshot()
		if first, ok := outcomes(t, c.name, frames); !ok || first.Type != protocol.TypeComplete {
			t.Errorf("%s: outcome %+v, want complete", c.name, first.serverMessage)
		}
		// No percentage the client was told is undercut later by the same
		// attempt (a resume's answer may lag the live stream by the
		// persist interval: 1.5 s of grace).
		for i, f := range frames {
			if f.msg.Type != protocol.TypeProgress {
				continue
			}
			for _, g := range frames[i+1:] {
				if g.msg.Type == protocol.TypeProgress && g.msg.Attempt == f.msg.Attempt && g.at.Sub(f.at) > 1500*time.Millisecond && g.msg.Percentage < f.msg.Percentage {
					t.Errorf("%s: attempt %d was at %g %%, then %s later at %g %%", c.name, f.msg.Attempt, f.msg.Percentage, g.at.Sub(f.at).Round(time.Millisecond), g.msg.Percentage)
					break
				}
			}
		}
	}
	t.Logf("all phases done in %s", time.Since(start).Round(time.Millisecond))
	for i, p := range procs {
		if i != 1 {
			p.stop(t)
		}
	}
}
