package local

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// API Gateway hands a function the header names as the client spelled
// them (`token`, `headerName`, `cache-control`), while net/http keys
// http.Request.Header by canonical names (`Token`). The spelling is
// recovered from the wire: the gateway's listener wraps every connection
// in a spellingConn, which follows the HTTP/1.1 requests it reads and
// keeps, for each request's header block, the names as they came. The
// upgrade handler takes its request's block back through the request's
// context (http.Server.ConnContext). After an upgrade request the
// connection pauses until the server answers: a 101 ends the following
// (what follows is WebSocket frames), any other answer resumes it, since
// a client may send its next request on the same connection.
//
// Limits: a request whose body is chunked, or whose header block is
// larger than maxSpelledHeaderBytes, ends the following on that
// connection; its later requests, and requests that reach ServeHTTP from
// another server, fall back to the canonical names with the WebSocket
// headers spelled as AWS spells them (awsHeaderSpelling). A TLS
// connection reaches http.Server wrapped, so http.Request.TLS is nil.

// maxSpelledHeaderBytes bounds the bytes kept for one header block.
const maxSpelledHeaderBytes = 64 << 10

// maxSpelledBlocks bounds the header blocks a connection keeps that no
// handler took (pipelined or plain requests).
const maxSpelledBlocks = 4

// spellingListener wraps each accepted connection in a spellingConn.
type spellingListener struct{ net.Listener }

func (l spellingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &spellingConn{Conn: c}, nil
}

// spellingConnKey is the context key of the request's spellingConn.
type spellingConnKey struct{}

// withSpellingConn is http.Server.ConnContext: it puts c in the context
// of c's requests when c is a spellingConn.
func withSpellingConn(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*spellingConn); ok {
		return context.WithValue(ctx, spellingConnKey{}, sc)
	}
	return ctx
}

// headerBlock is one request's request line and header names as sent.
type headerBlock struct {
	requestLine string
	names       []string
}

// spellingConn follows the HTTP/1.1 requests read from it. It reads for
// net/http's connection goroutine only, so the parse state needs no lock;
// blocks are shared with the handler under mu.
type spellingConn struct {
	net.Conn

	// state is following, paused (an upgrade request awaits its answer)
	// or off (upgraded, chunked body, overflow); Write may change it
	// from another goroutine than Read's.
	state atomic.Int32

	// parse state, touched by Read only
	pending []byte // the current header block so far
	skip    int64  // body bytes left to pass over
	lineLen int    // bytes of the current line, without '\r'
	started bool   // the current block's request line has begun

	mu     sync.Mutex
	blocks []headerBlock
}

// The states of a spellingConn.
const (
	following int32 = iota
	paused
	off
)

func (c *spellingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.Load() == following {
		c.feed(p[:n])
	}
	return n, err
}

// Write resumes or ends the following with the answer to an upgrade
// request: its status line is the first thing written after it.
func (c *spellingConn) Write(p []byte) (int, error) {
	if c.state.Load() == paused {
		if bytes.HasPrefix(p, []byte("HTTP/1.1 101")) || bytes.HasPrefix(p, []byte("HTTP/1.0 101")) {
			c.stop()
		} else {
			c.state.CompareAndSwap(paused, following)
		}
	}
	return c.Conn.Write(p)
}

// feed advances the parse over b.
func (c *spellingConn) feed(b []byte) {
	for len(b) > 0 && c.state.Load() == following {
		if c.skip > 0 {
			k := min(int64(len(b)), c.skip)
			c.skip -= k
			b = b[k:]
			continue
		}
		// Header mode: copy up to the empty line that ends the block.
		end := -1
		for i, ch := range b {
			switch {
			case !c.started && (ch == '\r' || ch == '\n'):
				// Blank lines before a request are allowed (RFC 9112 §2.2).
				b = b[i+1:]
				end = -2
			case ch == '\n':
				if c.lineLen == 0 {
					end = i + 1
				}
				c.lineLen = 0
			case ch != '\r':
				c.lineLen++
				c.started = true
			}
			if end != -1 {
				break
			}
		}
		switch {
		case end == -2:
			continue // restart after the skipped blank line
		case end < 0:
			c.pending = append(c.pending, b...)
			if len(c.pending) > maxSpelledHeaderBytes {
				c.stop()
				c.pending = nil
			}
			return
		}
		c.pending = append(c.pending, b[:end]...)
		b = b[end:]
		c.finishBlock()
	}
}

// finishBlock records the complete header block in pending and sets up
// the body skip.
func (c *spellingConn) finishBlock() {
	text := string(c.pending)
	c.pending = c.pending[:0]
	c.started = false
	lines := strings.Split(strings.TrimRight(text, "\r\n"), "\n")
	blk := headerBlock{requestLine: strings.TrimRight(lines[0], "\r")}
	upgrade := false
	var length int64
	for _, ln := range lines[1:] {
		ln = strings.TrimRight(ln, "\r")
		if ln == "" || ln[0] == ' ' || ln[0] == '\t' {
			continue // obsolete line folding continues the last value
		}
		name, value, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		blk.names = append(blk.names, name)
		value = strings.TrimSpace(value)
		switch textproto.CanonicalMIMEHeaderKey(name) {
		case "Upgrade":
			upgrade = true
		case "Transfer-Encoding":
			if !strings.EqualFold(value, "identity") {
				c.stop() // chunked: the body's end is not counted here
			}
		case "Content-Length":
			length, _ = strconv.ParseInt(value, 10, 64)
		}
	}
	c.mu.Lock()
	if len(c.blocks) == maxSpelledBlocks {
		c.blocks = append(c.blocks[:0], c.blocks[1:]...)
	}
	c.blocks = append(c.blocks, blk)
	c.mu.Unlock()
	if length > 0 {
		c.skip = length
	}
	if upgrade {
		c.state.CompareAndSwap(following, paused)
	}
}

// stop ends the following for good.
func (c *spellingConn) stop() {
	c.state.Store(off)
}

// take returns and forgets the oldest block whose request line is
// method SP target, and the blocks before it.
func (c *spellingConn) take(method, target string) (headerBlock, bool) {
	prefix := method + " " + target + " "
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, b := range c.blocks {
		if strings.HasPrefix(b.requestLine, prefix) {
			c.blocks = c.blocks[i+1:]
			if len(c.blocks) == 0 {
				c.blocks = nil
			}
			return b, true
		}
	}
	return headerBlock{}, false
}

// clientSpelling maps each canonical header name of r to the spelling its
// client sent (the first one, when a name came twice in different cases).
// It is nil when the spelling is unknown.
func clientSpelling(r *http.Request) map[string]string {
	sc, ok := r.Context().Value(spellingConnKey{}).(*spellingConn)
	if !ok {
		return nil
	}
	blk, ok := sc.take(r.Method, r.RequestURI)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(blk.names))
	for _, n := range blk.names {
		k := textproto.CanonicalMIMEHeaderKey(n)
		if _, seen := out[k]; !seen {
			out[k] = n
		}
	}
	return out
}
