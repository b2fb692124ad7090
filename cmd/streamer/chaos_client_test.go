package main

// The chaos test's clients: each a user with one WebSocket connection at a
// time, behaving as the TypeScript client does.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/protocol"
)

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
	case protocol.TypeAck:
		if r := c.byClient[m.ID]; r != nil && r.serverID == "" {
			r.serverID = m.RequestID
			c.byServer[m.RequestID] = r
			r.finals = append(r.finals, c.early[m.RequestID]...)
			delete(c.early, m.RequestID)
		}
	case protocol.TypeProgress:
		if r := c.byServer[m.RequestID]; r != nil {
			r.attempts[m.Attempt] = true
			c.world.obs.progressByProc[proc].Add(1)
			if m.Attempt >= 2 {
				c.world.obs.retried.Add(1)
			}
		}
	case protocol.TypeComplete, protocol.TypeError:
		switch m.Code {
		case protocol.CodeUnauthorized, protocol.CodeInternal, protocol.CodeRateLimited:
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
