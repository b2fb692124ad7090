package tlsmux

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// handshakeByte opens every TLS connection (a handshake record).
const handshakeByte = 0x16

// sniffTimeout bounds how long a connection may stay silent before its
// first byte; a client that sends nothing is dropped.
const sniffTimeout = 10 * time.Second

// Listener serves TLS and plain connections on one listener.
type Listener struct {
	inner net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // connections whose first byte has not come
}

// Listen wraps ln: Accept returns a *tls.Conn (not yet handshaken) for
// connections that start with a TLS handshake, and the others unchanged.
// Close closes ln and waits for the goroutines it started.
func Listen(ln net.Listener, cfg *tls.Config) *Listener {
	l := &Listener{inner: ln, cfg: cfg, conns: make(chan net.Conn), done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.Close()
			return
		}
		// Sniffing waits for the client's first byte: off the accept
		// loop, so one silent client does not hold the others.
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			c.Close()
			return
		default:
		}
		l.pending[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.sniff(c)
		}()
	}
}

func (l *Listener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c, 1)
	first, err := br.Peek(1)
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == handshakeByte {
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and waits for the listener's goroutines.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		// A silent client must not hold Wait for the sniff timeout.
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		err = l.inner.Close()
	})
	return err
}

// Wait waits for the goroutines of a closed listener.
func (l *Listener) Wait() { l.wg.Wait() }

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// peekedConn reads first what was peeked.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
