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

// frame is one message a request's client received, with when, on which
// of its sockets (counted from 1), and after how many resumes sent on that
// socket.
type frame struct {
	at      time.Time
	msg     chaosMessage
	conn    int
	resumed int
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
	asked    []time.Time // when each resume was sent, on any socket
	final    time.Time   // when the first final message arrived
	moved    int         // connections made after the first
	conn     int         // sockets opened
	resumed  int         // resumes sent on the current socket
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
	c.clientID, c.serverID, c.frames, c.resumes, c.asked, c.final = clientID, "", nil, nil, nil, time.Time{}
	c.conn, c.resumed = 0, 0
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
				c.mu.Lock()
				c.resumed++
				c.asked = append(c.asked, now)
				c.mu.Unlock()
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
			c.mu.Lock()
			if proc >= 0 {
				c.moved++
			}
			c.conn, c.resumed = c.conn+1, 0
			c.mu.Unlock()
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
	c.frames = append(c.frames, frame{at: now, msg: *m, conn: c.conn, resumed: c.resumed})
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
		c.mu.Lock()
		asked := append([]time.Time(nil), c.asked...)
		c.mu.Unlock()
		for _, f := range secondFinals(frames, asked) {
			t.Errorf("%s: a second final %s after the first, answering no resume: %+v", c.name, f.at.Sub(c.final).Round(time.Millisecond), f.msg.serverMessage)
		}
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
		if why := progressWentBack(frames); why != "" {
			t.Errorf("%s: %s", c.name, why)
			logFrames(t, c)
		}
	}
	t.Logf("all phases done in %s", time.Since(start).Round(time.Millisecond))
	for i, p := range procs {
		if i != 1 {
			p.stop(t)
		}
	}
}

// secondFinals returns the outcome frames after the first that answer no
// resume: none was sent in the 1.5 s before them (a resume is answered
// within a second). The client sends nothing once it has its outcome, so
// such a frame is a final message sent a second time (by a run that lost
// its lease, say).
func secondFinals(frames []frame, asked []time.Time) (extra []frame) {
	seen := false
	for _, f := range frames {
		if !isOutcome(&f.msg) {
			continue
		}
		if !seen {
			seen = true
			continue
		}
		answers := false
		for _, a := range asked {
			if a.Before(f.at) && f.at.Sub(a) <= 1500*time.Millisecond {
				answers = true
				break
			}
		}
		if !answers {
			extra = append(extra, f)
		}
	}
	return extra
}

// progressWentBack reports, for a client's frames in order of arrival,
// where a percentage the client was told is undercut later by the same
// attempt's live progress; "" if nowhere. A resume is answered from the
// stored progress, which may lag the live stream (by the persist interval,
// and by however long the store and the processes take on a loaded
// machine), so an answer may be below what the client saw: such a dip is
// one answer, and each resume gets one. A socket that shows an attempt
// below its best more often than the client resumed on it got live
// progress that went back: the stream restarted under the same attempt
// number, or a resume reported more than the attempt had done.
func progressWentBack(frames []frame) string {
	best := map[int]float64{}
	dips := map[int]int{}
	for _, f := range frames {
		m := f.msg
		if m.Type != protocol.TypeProgress {
			continue
		}
		if top, ok := best[m.Attempt]; ok && m.Percentage < top {
			dips[f.conn]++
			if dips[f.conn] > f.resumed {
				return fmt.Sprintf("attempt %d was at %g %%, then at %g %% on socket %d: %d such frames there, %d resumes sent on it",
					m.Attempt, top, m.Percentage, f.conn, dips[f.conn], f.resumed)
			}
		}
		best[m.Attempt] = max(best[m.Attempt], m.Percentage)
	}
	return ""
}

// logFrames logs every message a client received about its request and
// every resume it sent, in time order, to tell a stale resume answer from
// a run whose progress went back.
func logFrames(t *testing.T, c *reqClient) {
	t.Helper()
	frames, resumes, _ := c.snapshot()
	if len(frames) == 0 {
		return
	}
	start := frames[0].at
	for _, f := range frames {
		for len(resumes) > 0 && !resumes[0].After(f.at) {
			t.Logf("%s: %8s resume sent", c.name, resumes[0].Sub(start).Round(time.Millisecond))
			resumes = resumes[1:]
		}
		t.Logf("%s: %8s socket %d: %s attempt %d %g %% (%d resumes sent on it)", c.name, f.at.Sub(start).Round(time.Millisecond), f.conn, f.msg.Type, f.msg.Attempt, f.msg.Percentage, f.resumed)
	}
}

// TestProgressWentBack: the SIGTERM phase's check tells stale resume
// answers, however late, from live progress that goes back within an
// attempt.
func TestProgressWentBack(t *testing.T) {
	progressAt := func(conn, resumed, attempt int, pct float64) frame {
		m := chaosMessage{Attempt: attempt}
		m.Type, m.Percentage = protocol.TypeProgress, pct
		return frame{conn: conn, resumed: resumed, msg: m}
	}
	for _, tc := range []struct {
		name   string
		frames []frame
		bad    bool
	}{
		{"live only", []frame{progressAt(1, 0, 1, 10), progressAt(1, 0, 1, 20), progressAt(1, 0, 1, 30)}, false},
		{"stale resume answers", []frame{
			progressAt(1, 0, 1, 40), progressAt(1, 1, 1, 30), progressAt(1, 1, 1, 45),
			progressAt(2, 1, 1, 35), progressAt(2, 1, 1, 50), progressAt(2, 2, 1, 41),
		}, false},
		{"a new attempt starts from nothing", []frame{progressAt(1, 0, 1, 43), progressAt(2, 1, 2, 0), progressAt(2, 1, 2, 1)}, false},
		{"resume ahead of the live attempt", []frame{
			progressAt(1, 1, 2, 43), progressAt(1, 1, 2, 0.3), progressAt(1, 1, 2, 1.5), progressAt(1, 2, 2, 2.8),
		}, true},
		{"live progress goes back", []frame{progressAt(1, 0, 1, 50), progressAt(1, 0, 1, 20)}, true},
		{"more dips than resumes on a socket", []frame{
			progressAt(1, 0, 1, 50), progressAt(2, 1, 1, 40), progressAt(2, 1, 1, 41),
		}, true},
	} {
		why := progressWentBack(tc.frames)
		if (why != "") != tc.bad {
			t.Errorf("%s: progressWentBack = %q, want a finding: %t", tc.name, why, tc.bad)
		}
	}
}

// TestSecondFinals: the freeze phase's check tells a resume's answer from
// a final message sent twice.
func TestSecondFinals(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	complete := func(ms int) frame {
		var m chaosMessage
		m.Type = protocol.TypeComplete
		return frame{at: at(ms), msg: m}
	}
	progress := func(ms int) frame {
		var m chaosMessage
		m.Type = protocol.TypeProgress
		return frame{at: at(ms), msg: m}
	}
	for _, tc := range []struct {
		name   string
		frames []frame
		asked  []int // ms
		extra  int
	}{
		{"one final", []frame{progress(0), complete(100)}, []int{50}, 0},
		{"a resume sent just before the final is answered after it", []frame{complete(100), complete(400)}, []int{50}, 0},
		{"the final sent again later", []frame{complete(100), complete(3000)}, []int{50}, 1},
		{"progress is no final", []frame{complete(100), progress(3000)}, nil, 0},
	} {
		asked := make([]time.Time, len(tc.asked))
		for i, ms := range tc.asked {
			asked[i] = at(ms)
		}
		if got := secondFinals(tc.frames, asked); len(got) != tc.extra {
			t.Errorf("%s: %d second finals, want %d", tc.name, len(got), tc.extra)
		}
	}
}
