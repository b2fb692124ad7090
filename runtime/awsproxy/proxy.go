package awsproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/streamer-go/streamer/runtime/tlsmux"
)

// ErrClosed is returned by Listen once the proxy is closed.
var ErrClosed = errors.New("awsproxy: closed")

// Config configures a Proxy. CA is required.
type Config struct {
	// Region is the Region the local services answer for. Empty means
	// "us-east-1".
	Region string
	// APIID is the id of the local WebSocket API: its management API is
	// {APIID}.execute-api.{Region}.amazonaws.com. Empty means "local".
	APIID string
	// ExecuteAPI serves the management API of the local WebSocket API
	// (the local gateway). Nil leaves execute-api not emulated.
	ExecuteAPI http.Handler
	// DynamoDB serves dynamodb.{Region}.amazonaws.com. Nil leaves DynamoDB
	// not emulated.
	DynamoDB http.Handler
	// Lambda serves lambda.{Region}.amazonaws.com. Nil leaves Lambda not
	// emulated.
	Lambda http.Handler
	// CA signs the certificates of the hostnames served; the functions
	// trust it.
	CA *tlsmux.CA
	// Logger receives the "not emulated:" lines and the proxy's logs. Nil
	// discards them.
	Logger *slog.Logger
}

// Proxy serves AWS hostnames to local functions. Create it with New; open
// a door per function with Listen; Close stops it.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	tlsCfg *tls.Config
	srv    *http.Server
	feed   *feedListener

	certMu sync.Mutex
	certs  map[string]*tls.Certificate

	mu      sync.Mutex
	doors   map[string]string // door address → caller
	lns     []*tlsmux.Listener
	tunnels map[net.Conn]struct{}
	closed  bool
	warned  map[string]bool // service + " " + caller already logged

	wg sync.WaitGroup
}

type callerKey struct{}

// New checks cfg and returns a proxy with no door open yet.
func New(cfg Config) (*Proxy, error) {
	if cfg.CA == nil {
		return nil, errors.New("awsproxy: Config.CA is required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.APIID == "" {
		cfg.APIID = "local"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		cfg:     cfg,
		log:     logger,
		feed:    newFeedListener(),
		certs:   map[string]*tls.Certificate{},
		doors:   map[string]string{},
		tunnels: map[net.Conn]struct{}{},
		warned:  map[string]bool{},
	}
	// HTTP/2 as well: SDK clients of streaming services (Bedrock runtime,
	// Transcribe, Kinesis) offer only h2 and drop a server without it.
	p.tlsCfg = &tls.Config{GetCertificate: p.certificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p.mu.Lock()
			defer p.mu.Unlock()
			return context.WithValue(ctx, callerKey{}, p.doors[c.LocalAddr().String()])
		},
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(p.feed)
	}()
	return p, nil
}

// Listen opens a door for caller (the function's name, for the "not
// emulated:" lines) on a free loopback port and returns its address.
func (p *Proxy) Listen(caller string) (string, error) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("awsproxy: listen: %w", err)
	}
	ln := tlsmux.Listen(inner, p.tlsCfg)
	addr := inner.Addr().String()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		ln.Wait()
		return "", ErrClosed
	}
	p.doors[addr] = caller
	p.lns = append(p.lns, ln)
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	return addr, nil
}

// Close stops every door, drops open connections and tunnels, and waits
// for the proxy's goroutines. A second call does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	lns := p.lns
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	p.feed.Close()
	for _, ln := range lns {
		ln.Close()
	}
	err := p.srv.Close()
	for _, ln := range lns {
		ln.Wait()
	}
	p.wg.Wait()
	return err
}

// certificate issues (once per name) a certificate for the name a client
// asks for.
func (p *Proxy) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(hello.ServerName)
	if name == "" {
		name = "localhost"
	}
	p.certMu.Lock()
	defer p.certMu.Unlock()
	if c := p.certs[name]; c != nil {
		return c, nil
	}
	c, err := p.cfg.CA.Issue(name)
	if err != nil {
		return nil, err
	}
	p.certs[name] = &c
	return &c, nil
}

// ServeHTTP answers a door's requests: CONNECT opens a tunnel (into the
// door's own TLS server for AWS hostnames), and a request over TLS, or
// over plain HTTP with an AWS hostname as its Host (what the Node.js hook
// sends), goes to the local server of its hostname's service.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, _ := r.Context().Value(callerKey{}).(string)
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if r.TLS == nil && (r.URL.IsAbs() || !isAWSHost(host)) {
		http.Error(w, "awsproxy: this port is an HTTPS proxy for AWS endpoints (HTTP CONNECT), a TLS server for them, and serves them over plain HTTP by their Host", http.StatusBadRequest)
		return
	}
	if host == "" {
		host = r.TLS.ServerName
	}
	t := p.resolve(host)
	if t.handler == nil {
		p.notEmulated(w, r, t, caller)
		return
	}
	t.handler.ServeHTTP(w, r)
}

// connect answers CONNECT: an AWS hostname is served here over TLS, any
// other host is tunnelled to.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "443"
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "awsproxy: cannot tunnel on this connection", http.StatusInternalServerError)
		return
	}
	if !isAWSHost(host) {
		p.tunnel(w, hj, net.JoinHostPort(host, port))
		return
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	if rw.Reader.Buffered() > 0 {
		// The client spoke before the tunnel opened; nothing to serve.
		c.Close()
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		c.Close()
		return
	}
	// The door's server serves the tunnel as one of its own TLS
	// connections: the caller is found by the door's address.
	if !p.feed.push(tls.Server(c, p.tlsCfg)) {
		c.Close()
	}
}

// tunnel relays a CONNECT to a host that is not AWS's, as any HTTPS proxy
// does.
func (p *Proxy) tunnel(w http.ResponseWriter, hj http.Hijacker, addr string) {
	up, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		http.Error(w, "awsproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.tunnels[c] = struct{}{}
	p.tunnels[up] = struct{}{}
	p.wg.Add(2)
	p.mu.Unlock()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		c.Close()
	}
	done := func() {
		c.Close()
		up.Close()
		p.mu.Lock()
		delete(p.tunnels, c)
		delete(p.tunnels, up)
		p.mu.Unlock()
	}
	var once sync.Once
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(up, rw)
		once.Do(done)
	}()
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(c, up)
		once.Do(done)
	}()
}

// feedListener hands the door's server the TLS connections of CONNECT
// tunnels.
type feedListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newFeedListener() *feedListener {
	return &feedListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *feedListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *feedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *feedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *feedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
