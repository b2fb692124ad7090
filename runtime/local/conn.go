package local

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close codes and reasons the gateway uses when it ends a connection.
// API Gateway does not document its reasons; these are the RFC 6455 names.
const (
	closeGoingAway  = websocket.StatusGoingAway
	reasonGoingAway = "Going away"
	// A DELETE @connections closes normally: the backend asked for it.
	deleteCode   = websocket.StatusNormalClosure
	deleteReason = "Connection deleted"
	tooBigReason = "Message too big"
)

var (
	// errGone: the connection is closed or closing; the API answers 410.
	errGone = errors.New("local: connection gone")
	// errQueueFull: the client is not reading fast enough; the API answers 429.
	errQueueFull = errors.New("local: outbound queue full")
)

// outbound is one message waiting for the connection's writer.
type outbound struct {
	typ  websocket.MessageType
	data []byte
}

// conn is one WebSocket connection. Its reader goroutine starts once the
// upgrade is done and runs $disconnect at the end; its writer runs only
// while messages are queued, which keeps an idle connection at one
// goroutine.
type conn struct {
	g           *Gateway
	id          string
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	// lastActive is the Unix time in nanoseconds of the last message in
	// either direction, for GET @connections.
	lastActive atomic.Int64
	// The timers are created before the socket is attached and reset by
	// whatever reads it (the reader, or a close handshake started during
	// the upgrade); they fire on their own goroutines through closeWith.
	idleTimer *time.Timer
	lifeTimer *time.Timer
	idle      time.Duration

	mu          sync.Mutex
	ws          *websocket.Conn
	netConn     net.Conn           // ws's socket, to drop it when a close handshake stalls
	cancel      context.CancelFunc // ends the connection's context
	stopRead    context.CancelFunc // ends the reader's Read only, which drops the socket
	queue       []outbound
	writing     bool
	broken      bool // a write failed; the reader will see it
	closing     bool // the gateway started the close handshake
	closeCode   websocket.StatusCode
	closeReason string
	ended       bool // the reader exited; nothing new may start
	writers     sync.WaitGroup
}

func (c *conn) setCancel(cancel context.CancelFunc) {
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()
}

// attach gives a tracked connection its socket once the upgrade is done:
// a close requested meanwhile starts now, and so does the writer for
// messages posted meanwhile.
func (c *conn) attach(ctx context.Context, ws *websocket.Conn, netConn net.Conn) {
	c.mu.Lock()
	c.ws = ws
	c.netConn = netConn
	closing, code, reason := c.closing, c.closeCode, c.closeReason
	if closing {
		c.g.wg.Add(1) // the connection's own count is held: see closeWith
	}
	start := c.startWriterLocked()
	c.mu.Unlock()
	if closing {
		go c.closeSocket(ws, code, reason)
	}
	if start {
		go c.writeLoop(context.WithoutCancel(ctx))
	}
}

// abandon ends a tracked connection whose upgrade failed.
func (c *conn) abandon() {
	c.mu.Lock()
	c.ended = true
	c.queue = nil
	c.mu.Unlock()
	c.g.untrack(c)
}

// readLoop reads messages until the connection ends, then runs
// $disconnect exactly once.
//
// Each message is dispatched on a goroutine of its own, as API Gateway
// invokes the integration for each message independently: a slow handler
// does not hold back the connection's next messages, and they may finish
// in any order. At most Config.MaxMessagesInFlight run at once; at the
// bound the reader stops reading until one finishes, so the client is
// slowed through TCP and nothing is dropped. $disconnect does not wait for
// the messages still running (API Gateway does not either); readLoop
// returns, which ends the connection's context, only once they are done,
// so their contexts stay valid and Shutdown waits for them.
func (g *Gateway) readLoop(ctx context.Context, c *conn) {
	// Reads get their own context so that a close handshake the client
	// never answers can drop the socket (closeSocket) while the handlers,
	// $disconnect among them, keep the connection's context.
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	c.mu.Lock()
	c.stopRead = stopRead
	c.mu.Unlock()
	var (
		err      error
		inflight sync.WaitGroup
		// slots holds one token per message in flight; it is made at the
		// first message, so an idle connection holds none.
		slots chan struct{}
	)
	for {
		var typ websocket.MessageType
		var data []byte
		typ, data, err = c.ws.Read(readCtx)
		if err != nil {
			break
		}
		c.touchInbound()
		if slots == nil {
			slots = make(chan struct{}, g.cfg.MaxMessagesInFlight)
		}
		slots <- struct{}{} // backpressure: wait for a free slot
		inflight.Go(func() {
			defer func() { <-slots }()
			g.dispatch(ctx, c, typ, data)
		})
	}
	code, reason := c.end(err)
	g.log.Debug("local: disconnected", "connectionId", c.id, "code", int(code), "reason", reason)
	g.disconnect(ctx, c, code, reason)
	if g.obs != nil {
		g.obs.ConnectionClosed(c.info(), int(code), reason)
	}
	inflight.Wait()
}

// end stops the connection after its reader exited and reports the close
// code and reason for $disconnect: the gateway's own when it closed the
// socket, else what the client sent or what went wrong.
func (c *conn) end(readErr error) (websocket.StatusCode, string) {
	c.mu.Lock()
	c.ended = true
	c.queue = nil
	code, reason, closing := c.closeCode, c.closeReason, c.closing
	c.mu.Unlock()

	if c.idleTimer != nil {
		c.idleTimer.Stop()
		c.lifeTimer.Stop()
	}
	c.g.untrack(c)
	if closing {
		// closeSocket is closing the socket, in bounded time, which also
		// ends a write blocked on a slow client.
		c.writers.Wait()
		return code, reason
	}
	// Not closing: the client closed or the read failed. coder/websocket
	// closes the socket after a close frame but not after a read error
	// (EOF from a half-closed client, a protocol error), and a writer
	// blocked on a client that no longer reads only returns once the
	// socket is closed: close it before waiting.
	_ = c.ws.CloseNow()
	c.writers.Wait()
	var ce websocket.CloseError
	switch {
	case errors.As(readErr, &ce):
		return ce.Code, ce.Reason
	case errors.Is(readErr, websocket.ErrMessageTooBig):
		return websocket.StatusMessageTooBig, tooBigReason
	default:
		return websocket.StatusAbnormalClosure, ""
	}
}

// closeWith starts the close handshake with code and reason, once. The
// management API answers 410 for the connection from now on.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closing || c.ended {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode, c.closeReason = code, reason
	ws := c.ws // nil until the upgrade is done: attach closes it then
	if ws != nil {
		// The connection's goroutine holds its own count on g.wg until
		// it has ended, so adding here never races with Shutdown's Wait.
		c.g.wg.Add(1)
	}
	c.mu.Unlock()

	c.g.untrack(c)
	if ws != nil {
		go c.closeSocket(ws, code, reason)
	}
}

// closeSocket runs the close handshake; it waits for the client's close
// frame (Config.CloseTimeout at most, then the socket is dropped) and the
// reader then sees the connection end and runs $disconnect.
func (c *conn) closeSocket(ws *websocket.Conn, code websocket.StatusCode, reason string) {
	defer c.g.wg.Done()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ws.Close(code, reason)
	}()
	t := time.NewTimer(c.g.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// coder/websocket's handshake waits 5 s for the client's close
		// frame: in the reader's Read, which holds the read lock while
		// blocked on a silent client (ending that Read closes the
		// socket), or in its own read when the reader has not started
		// its first Read yet (a close right after the upgrade, a loaded
		// machine), which only closing the socket itself ends. Either
		// way Close then returns.
		c.mu.Lock()
		stop, netConn := c.stopRead, c.netConn
		c.mu.Unlock()
		if stop != nil {
			stop()
		}
		if netConn != nil {
			_ = netConn.Close()
		}
		<-done
	}
}

// abort closes the socket without a handshake, which also fails a write
// in progress, and cancels the connection's handlers.
func (c *conn) abort() {
	c.mu.Lock()
	ws, cancel := c.ws, c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ws != nil {
		_ = ws.CloseNow()
	}
}

func (c *conn) startTimers(idle, lifetime time.Duration) {
	c.idle = idle
	c.idleTimer = time.AfterFunc(idle, func() { c.closeWith(closeGoingAway, reasonGoingAway) })
	c.lifeTimer = time.AfterFunc(lifetime, func() { c.closeWith(closeGoingAway, reasonGoingAway) })
}

// touchInbound records client activity: a message or a ping resets the
// idle timeout. It runs on the reader goroutine.
func (c *conn) touchInbound() {
	c.lastActive.Store(time.Now().UnixNano())
	if c.idleTimer != nil {
		c.idleTimer.Reset(c.idle)
	}
}

// enqueue queues one message for the client. It never blocks: a full queue
// is errQueueFull (429), a closed connection errGone (410). ctx is the
// caller's; the writer it may start keeps its values but not its deadline.
func (c *conn) enqueue(ctx context.Context, typ websocket.MessageType, data []byte) error {
	c.mu.Lock()
	if c.closing || c.ended || c.broken {
		c.mu.Unlock()
		return errGone
	}
	if len(c.queue) >= c.g.cfg.OutboundQueue {
		c.mu.Unlock()
		return errQueueFull
	}
	c.queue = append(c.queue, outbound{typ: typ, data: data})
	c.lastActive.Store(time.Now().UnixNano())
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop(context.WithoutCancel(ctx))
	}
	return nil
}

// startWriterLocked claims the writer role if messages wait, the socket
// is there and no writer runs; the caller then starts writeLoop.
func (c *conn) startWriterLocked() bool {
	if c.writing || c.ws == nil || len(c.queue) == 0 || c.closing || c.ended || c.broken {
		return false
	}
	c.writing = true
	c.writers.Add(1)
	return true
}

// writeLoop is the connection's one writer: it drains the queue in order
// and exits when it is empty. ctx carries no cancellation (so
// coder/websocket skips its per-write timer): closing the socket is what
// stops a write blocked on a slow client.
func (c *conn) writeLoop(ctx context.Context) {
	defer c.writers.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closing || c.ended || c.broken {
			c.writing = false
			c.queue = nil // an idle connection holds no queue memory
			c.mu.Unlock()
			return
		}
		m := c.queue[0]
		c.queue[0] = outbound{}
		c.queue = c.queue[1:]
		c.mu.Unlock()

		if err := c.write(ctx, m); err != nil {
			c.g.log.Debug("local: write failed", "connectionId", c.id, "err", err)
			c.mu.Lock()
			c.broken = true
			c.mu.Unlock()
		}
	}
}

// write sends one message. API Gateway's frames are at most 32 KiB, so a
// longer message goes out as several frames of one message (each
// Writer.Write is one frame), which every client reassembles.
func (c *conn) write(ctx context.Context, m outbound) error {
	if len(m.data) <= c.g.cfg.FrameLimit {
		return c.ws.Write(ctx, m.typ, m.data)
	}
	w, err := c.ws.Writer(ctx, m.typ)
	if err != nil {
		return err
	}
	for off := 0; off < len(m.data); off += c.g.cfg.FrameLimit {
		end := min(off+c.g.cfg.FrameLimit, len(m.data))
		if _, err := w.Write(m.data[off:end]); err != nil {
			return err
		}
	}
	return w.Close()
}
