package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// benchClients holds the WebSocket clients and what they received. All
// times are offsets from start, on the monotonic clock.
type benchClients struct {
	start   time.Time
	payload int
	conns   []*websocket.Conn
	ids     []string
	index   map[string]int
	readers sync.WaitGroup

	// The fan-out in progress: its tag, when each POST went out and when
	// each message arrived (0 = not yet).
	phase    atomic.Pointer[benchPhase]
	sent     []atomic.Int64
	received []atomic.Int64
	count    atomic.Int64
}

func (b *benchClients) now() int64 { return int64(time.Since(b.start)) }

// message is a payload-sized message starting with tag.
func (b *benchClients) message(tag string) []byte {
	m := bytes.Repeat([]byte("x"), b.payload)
	copy(m, tag+"|")
	return m
}

// connect dials n clients, learns each one's connection ID (the gateway's
// two-way $default route answers with it) and starts its reader.
func (b *benchClients) connect(ctx context.Context, wsURL string, n, concurrency int) error {
	b.conns = make([]*websocket.Conn, n)
	b.ids = make([]string, n)
	b.sent = make([]atomic.Int64, n)
	b.received = make([]atomic.Int64, n)
	var next atomic.Int64
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, _, err := websocket.Dial(ctx, wsURL, nil)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				b.conns[i] = c
				if err := c.Write(ctx, websocket.MessageText, []byte("id")); err != nil {
					errs <- err
					return
				}
				_, id, err := c.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				b.ids[i] = string(id)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	b.index = make(map[string]int, n)
	for i, id := range b.ids {
		b.index[id] = i
	}
	for i, c := range b.conns {
		b.readers.Go(func() { b.read(c, i) })
	}
	return nil
}

// benchPhase is the fan-out in progress: its message prefix and the
// channel closed when every client has its message.
type benchPhase struct {
	prefix []byte
	all    chan struct{}
}

func (b *benchClients) read(c *websocket.Conn, i int) {
	// One buffer per client, reused: the bench client's own cost per
	// message is part of what it measures, so it keeps that cost low.
	buf := make([]byte, 0, b.payload)
	// The reader ends when closeAll closes the connection.
	for {
		_, r, err := c.Reader(context.Background())
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		at := b.now()
		p := b.phase.Load()
		if p == nil || !bytes.HasPrefix(buf, p.prefix) {
			continue // a late message of an earlier fan-out
		}
		if b.received[i].CompareAndSwap(0, at) && b.count.Add(1) == int64(len(b.conns)) {
			close(p.all)
		}
	}
}

// fanout sends one message to every client with drive, which returns the
// number of POSTs that failed, and waits until every client has it (or
// ctx ends).
func (b *benchClients) fanout(ctx context.Context, tag string, drive func(ctx context.Context, msg []byte) int) (fanout, error) {
	for i := range b.sent {
		b.sent[i].Store(0)
		b.received[i].Store(0)
	}
	b.count.Store(0)
	all := make(chan struct{})
	b.phase.Store(&benchPhase{prefix: []byte(tag + "|"), all: all})

	first := b.now()
	errs := drive(ctx, b.message(tag))
	var f fanout
	f.errors = errs
	wait := all
	if errs > 0 {
		wait = nil // some will never arrive; wait only for ctx or a short grace
	}
	select {
	case <-wait:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		if errs == 0 {
			return f, fmt.Errorf("%d of %d messages not received within 10 s after the last POST", len(b.conns)-int(b.count.Load()), len(b.conns))
		}
	}
	var last int64
	lat := make([]time.Duration, 0, len(b.conns))
	for i := range b.conns {
		r, s := b.received[i].Load(), b.sent[i].Load()
		if r == 0 || s == 0 {
			continue
		}
		f.delivered++
		last = max(last, r)
		lat = append(lat, time.Duration(r-s))
	}
	f.elapsed = time.Duration(last - first)
	slices.Sort(lat)
	if len(lat) > 0 {
		f.p50 = lat[len(lat)*50/100]
		f.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return f, ctx.Err()
}

// postRaw is the raw driver: workers POST msg to each connection's
// @connections URL over one pooled net/http client, unsigned.
func (b *benchClients) postRaw(ctx context.Context, hc *http.Client, endpoint string, workers int, msg []byte) int {
	urls := make([]string, len(b.ids))
	for i := range b.ids {
		urls[i] = b.rawURL(endpoint, i)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(urls) {
					return
				}
				b.sent[i].Store(b.now())
				if post(ctx, hc, urls[i], msg) != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}

// benchManager is a manager driver: the connections are listed from a
// store, as an application does, and sent with Manager.Broadcast through
// a real client, the lean one (NewFastClient) or the SDK's
// (NewAPIGatewayClient); timedTransport notes when each POST goes out.
type benchManager struct {
	b      *benchClients
	st     *memory.Store
	tr     *http.Transport
	client connection.APIGatewayClient
	mgr    *connection.Manager
}

func newBenchManager(ctx context.Context, b *benchClients, endpoint string, workers int, lean bool) (*benchManager, error) {
	st := memory.New()
	now := time.Now()
	for _, id := range b.ids {
		if err := st.Save(ctx, &store.Connection{ConnectionID: id, UserID: "bench", TenantID: "bench", ConnectedAt: now, LastPing: now}); err != nil {
			return nil, err
		}
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")}
	// Our own pool, closed at the end: open keep-alive connections would
	// hold up the gateway process's Shutdown.
	tr := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: &timedTransport{base: tr, b: b}}
	var client connection.APIGatewayClient
	if lean {
		client = connection.NewFastClient(cfg, endpoint, connection.WithFastHTTPClient(hc))
	} else {
		client = connection.NewAPIGatewayClient(cfg, endpoint, func(o *apigatewaymanagementapi.Options) { o.HTTPClient = hc })
	}
	// Pacing unlimited (adaptive only): the bench measures how fast the
	// manager can send, not the default budget.
	mgr := connection.NewManager(st, client, endpoint, connection.WithBroadcastWorkers(workers),
		connection.WithLimiter(connection.NewLimiter(connection.LimiterConfig{})))
	return &benchManager{b: b, st: st, tr: tr, client: client, mgr: mgr}, nil
}

// warm opens the pool's connections with a GET per worker, so that no
// round pays for TCP handshakes.
func (m *benchManager) warm(ctx context.Context, workers int) error {
	return concurrently(workers, func(i int) error {
		_, err := m.client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(m.b.ids[i%len(m.b.ids)])})
		return err
	})
}

// broadcast returns the number of connections not delivered to.
func (m *benchManager) broadcast(ctx context.Context, msg []byte) int {
	conns, err := m.st.ListByTenant(ctx, "bench")
	if err != nil {
		return len(m.b.ids)
	}
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ConnectionID
	}
	var berr *connection.BroadcastError
	switch err := m.mgr.Broadcast(ctx, ids, msg); {
	case errors.As(err, &berr):
		return len(berr.Failed)
	case err != nil:
		return len(ids)
	}
	return 0
}

func (m *benchManager) close(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = m.mgr.Shutdown(sctx)
	m.tr.CloseIdleConnections()
}

// concurrently runs fn(0..n-1) at once and returns the first error.
func concurrently(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// timedTransport notes when the first POST to each connection goes out,
// so that POST→receive latency is measured for Broadcast too, with either
// client alike.
type timedTransport struct {
	base http.RoundTripper
	b    *benchClients
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		if i, ok := t.b.index[path.Base(r.URL.Path)]; ok {
			t.b.sent[i].CompareAndSwap(0, t.b.now())
		}
	}
	return t.base.RoundTrip(r)
}

// rawURL is connection i's @connections URL.
func (b *benchClients) rawURL(endpoint string, i int) string {
	return endpoint + "/@connections/" + url.PathEscape(b.ids[i])
}

// closeAll closes every client without a handshake and waits for the
// readers.
func (b *benchClients) closeAll() {
	for _, c := range b.conns {
		if c != nil {
			_ = c.CloseNow()
		}
	}
	b.readers.Wait()
}
