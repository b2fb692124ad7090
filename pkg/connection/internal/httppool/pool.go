package httppool

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Pool is the FastClient's keep-alive pool for one host: HTTP/1.1
// connections carrying one request at a time, each request written with
// net/http's Request.Write and its answer read with http.ReadResponse, on
// the caller's goroutine.
//
// Why not http.Transport: a Transport
// hands every request to two goroutines of its connection (writeLoop,
// readLoop) through channels, and finds the connection through a
// wantConn, a dial context and a result channel, even when an idle
// connection is at hand. For one small POST that is about 30 objects and
// two goroutine wake-ups; in BenchmarkSenders net/http + the SDK signer
// cost 97–101 allocations and ~50 µs of CPU per message, where the same
// requests written and read in place cost ~68 and ~29 µs and go twice as
// fast (docs/PERFORMANCE.md). What the pool leaves out is what
// the management API does not need: HTTP/2, proxies (a client whose
// endpoint goes through HTTP(S)_PROXY uses a Transport), 1xx answers,
// compression. What it keeps: TLS with session resumption, a context
// that cancels a request in flight (within cancelPoll), Connection: close, idle connections
// dropped after idleConnTimeout, and one resend on a fresh connection
// when a reused one turns out to be closed before any answer arrived.
type Pool struct {
	addr    string      // host:port
	tls     *tls.Config // nil for http
	dialer  net.Dialer
	maxIdle int

	mu   sync.Mutex
	idle []*conn // the most recently used last
}

// idleConnTimeout is how long an idle connection is kept. API Gateway
// closes idle keep-alive connections on its side; one kept longer would
// fail its next request (and be resent once, see RoundTrip).
const idleConnTimeout = 30 * time.Second

// MaxBody Bounds how much of an answer is read; a longer one is cut
// there and its connection closed.
const MaxBody = 64 << 10

type conn struct {
	c         net.Conn
	ctx       context.Context // of the request in flight
	b         Bounds          // of the request in flight
	read      int64           // bytes read from c so far
	br        *bufio.Reader   // reads pc
	bw        *bufio.Writer   // writes c
	idleSince time.Time
	reused    bool
}

// cancelPoll is how often a request waiting for its answer looks at its
// context. The wait is cancelled by the connection's read deadline, which
// Read below moves on by cancelPoll while the context lives, rather than
// by a context.AfterFunc per request (its registration with the context
// cost six allocations and ~4 % of a call's CPU). An answer taking longer
// than cancelPoll wakes the caller once per cancelPoll; a cancelled one
// returns within it.
const cancelPoll = 50 * time.Millisecond

// writeTimeout Bounds writing a request (or the context's deadline, if
// sooner). Writes are not polled like reads: after a timed-out write a TLS
// connection is unusable. A request of at most 128 KB fits the socket's
// send buffer, so a write blocks only on a peer that stopped reading.
const writeTimeout = 10 * time.Second

// Bounds are what ends a call besides its context, for a caller that
// does not derive a context per call: the Manager's Send, whose attempts
// run under the caller's own context. Deadline is the attempt's timeout,
// enforced as the connection's deadlines; Stop is the manager's
// stop flag, looked at before the request is written and then every
// cancelPoll. A context per Send, to be cancelled by Shutdown and by the
// attempt timeout, would cost two allocations, its cancellation and about
// 1.5 % of a Send's CPU (docs/PERFORMANCE.md). The zero value bounds nothing.
type Bounds struct {
	Deadline time.Time    // zero: none
	Stop     *atomic.Bool // nil: none
}

// Stopped reports whether the stop flag is up.
func (b *Bounds) Stopped() bool {
	return b.Stop != nil && b.Stop.Load()
}

// Err is why the call must end by now (ErrStopped, ErrDeadline), or nil.
func (b *Bounds) Err(now time.Time) error {
	switch {
	case b.Stopped():
		return ErrStopped
	case !b.Deadline.IsZero() && !now.Before(b.Deadline):
		return ErrDeadline
	}
	return nil
}

// deadline is the soonest of d, the context's deadline and the Bounds'.
func (pc *conn) deadline(d time.Time) time.Time {
	if dl, ok := pc.ctx.Deadline(); ok && dl.Before(d) {
		d = dl
	}
	if dl := pc.b.Deadline; !dl.IsZero() && dl.Before(d) {
		d = dl
	}
	return d
}

// timedOut reports whether err is the connection's deadline passing while
// the request's context and Bounds are still live, and then moves the
// deadline on.
func (pc *conn) timedOut(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || pc.ctx == nil || pc.ctx.Err() != nil {
		return false
	}
	now := time.Now()
	if dl, ok := pc.ctx.Deadline(); ok && !now.Before(dl) {
		return false
	}
	if pc.b.Err(now) != nil {
		return false
	}
	return pc.c.SetReadDeadline(pc.deadline(now.Add(cancelPoll))) == nil
}

func newPool(u *url.URL, tlsConfig *tls.Config, maxIdle int) *Pool {
	host, port := u.Hostname(), u.Port()
	p := &Pool{
		dialer:  net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: maxIdle,
	}
	if u.Scheme == "https" {
		if port == "" {
			port = "443"
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsConfig != nil {
			cfg = tlsConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		// Only HTTP/1.1 is spoken here; a server must not pick h2.
		cfg.NextProtos = []string{"http/1.1"}
		if cfg.ClientSessionCache == nil {
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(maxIdle)
		}
		p.tls = cfg
	} else if port == "" {
		port = "80"
	}
	p.addr = net.JoinHostPort(host, port)
	return p
}

// RoundTrip sends req, whose Body reads body, and returns the answer with
// its body already read into memory, so the connection is back in the
// pool when it returns. It ends when ctx does or b says so.
func (p *Pool) RoundTrip(ctx context.Context, b Bounds, req *http.Request, body []byte) (*http.Response, error) {
	// A reused connection is written to without looking at ctx: a call
	// whose context has already ended must not send (as a Transport
	// would not).
	if ctx.Err() != nil {
		return nil, ctxError(ctx)
	}
	if b.Stopped() {
		return nil, ErrStopped
	}
	for sent := 0; ; sent++ {
		pc, err := p.get(ctx, &b)
		if err != nil {
			return nil, err
		}
		before := pc.read
		resp, keep, err := pc.exchange(ctx, b, req)
		if err == nil {
			if keep {
				p.put(pc)
			} else {
				pc.c.Close()
			}
			return resp, nil
		}
		pc.c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", context.Cause(ctx), err)
		}
		if berr := b.Err(time.Now()); berr != nil {
			return nil, fmt.Errorf("%w: %w", berr, err)
		}
		// A reused connection the server had already closed fails before
		// any byte of an answer: the request most likely never got
		// there. net/http resends such requests when they are
		// idempotent; a message sent twice is within the Manager's
		// at-least-once contract, and one lost is not.
		if !pc.reused || sent > 0 || pc.read != before || !closedBeforeAnswer(err) {
			return nil, err
		}
		if len(body) > 0 {
			req.Body = newBodyReader(body)
		}
	}
}

// closedBeforeAnswer reports whether err, with no byte of an answer read,
// is a connection found closed: EOF (which ReadResponse reports as
// ErrUnexpectedEOF), a reset or a broken pipe.
func closedBeforeAnswer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Read reads from the connection, waiting as long as the request's
// context lives, and counts what it read, so RoundTrip can tell a
// connection closed before the answer from one closed in it.
func (pc *conn) Read(p []byte) (int, error) {
	for {
		n, err := pc.c.Read(p)
		pc.read += int64(n)
		if n > 0 || err == nil || !pc.timedOut(err) {
			return n, err
		}
	}
}

// exchange writes req and reads its answer. keep says whether the
// connection can carry another request.
func (pc *conn) exchange(ctx context.Context, b Bounds, req *http.Request) (resp *http.Response, keep bool, err error) {
	pc.ctx, pc.b = ctx, b
	defer func() { pc.ctx, pc.b = nil, Bounds{} }()
	now := time.Now()
	if err := pc.c.SetWriteDeadline(pc.deadline(now.Add(writeTimeout))); err != nil {
		return nil, false, err
	}
	if err := pc.c.SetReadDeadline(pc.deadline(now.Add(cancelPoll))); err != nil {
		return nil, false, err
	}
	if err := req.Write(pc.bw); err != nil {
		return nil, false, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, false, err
	}
	resp, err = http.ReadResponse(pc.br, req)
	if err != nil {
		return nil, false, err
	}
	keep = !resp.Close
	if resp.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		if err != nil {
			return nil, false, err
		}
		if len(body) == MaxBody {
			keep = false // there may be more: the connection is not at a message boundary
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, keep, nil
}

// get returns the most recently used idle connection that is not too
// old, or dials a new one, by b's deadline.
func (p *Pool) get(ctx context.Context, b *Bounds) (*conn, error) {
	now := time.Now()
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		if now.Sub(pc.idleSince) < idleConnTimeout {
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			pc.reused = true
			return pc, nil
		}
		// The most recent one is too old, and so are all the others.
		stale := p.idle
		p.idle = nil
		p.mu.Unlock()
		for _, pc := range stale {
			pc.c.Close()
		}
	} else {
		p.mu.Unlock()
	}
	if !b.Deadline.IsZero() {
		// Dialling is rare: a context for its deadline costs little.
		dctx, cancel := context.WithDeadline(ctx, b.Deadline)
		defer cancel()
		ctx = dctx
	}
	return p.dial(ctx)
}

func (p *Pool) dial(ctx context.Context) (*conn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(c, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	pc := &conn{c: c}
	pc.br, pc.bw = bufio.NewReader(pc), bufio.NewWriter(c)
	return pc, nil
}

// put keeps pc for the next request, unless the pool is full.
func (p *Pool) put(pc *conn) {
	pc.idleSince = time.Now()
	p.mu.Lock()
	if len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		pc.c.Close()
		return
	}
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
}

// CloseIdle closes every idle connection.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// Pools are a client's pools, one per host, shared by the clients
// derived from it for other endpoints.
type Pools struct {
	tls     *tls.Config
	maxIdle int

	mu    sync.Mutex
	hosts map[string]*Pool // by scheme://host; nil: a Transport is used
}

// NewPools returns empty pools whose connections use tlsConfig (nil: the
// defaults) and keep at most maxIdle idle connections per host.
func NewPools(tlsConfig *tls.Config, maxIdle int) *Pools {
	return &Pools{tls: tlsConfig, maxIdle: maxIdle, hosts: map[string]*Pool{}}
}

// ForOrigin returns the pool for scheme://host, or nil when requests to
// it must go through a Transport (an HTTP(S)_PROXY applies to it).
func (ps *Pools) ForOrigin(scheme, host string) *Pool {
	key := scheme + "://" + host
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.hosts[key]; ok {
		return p
	}
	u := &url.URL{Scheme: scheme, Host: host}
	var p *Pool
	if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && proxy == nil {
		p = newPool(u, ps.tls, ps.maxIdle)
	}
	ps.hosts[key] = p
	return p
}

// CloseIdle closes the idle connections of every pool.
func (ps *Pools) CloseIdle() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.hosts {
		if p != nil {
			p.CloseIdle()
		}
	}
}

// Errors of a call that its Bounds ended.
var (
	// ErrStopped: the stop flag was up. It matches context.Canceled.
	ErrStopped = fmt.Errorf("%w: httppool: stopped", context.Canceled)
	// ErrDeadline: the attempt's deadline passed.
	ErrDeadline = errors.New("httppool: attempt deadline passed")
)

// ctxError is the error of a call whose ctx ended: its error and, when
// it differs, its cause.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// newBodyReader is a request body over a shared message (see the
// FastClient's: it must be io.NopCloser over a *bytes.Reader).
func newBodyReader(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
