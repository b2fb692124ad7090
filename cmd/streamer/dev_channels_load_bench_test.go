package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/protocol"
)

// sustainedFor is how long BenchmarkDevChannelSustained publishes.
const sustainedFor = 10 * time.Second

// BenchmarkDevChannelSustained: 100 subscribers on one chat channel of
// `streamer dev` (memory store, default @connections budget) and one
// client publishing through the WebSocket as fast as the server accepts
// (32 publishes in flight) for 10 s. It reports the acknowledged
// publications, the deliveries per second (from the first publish to the
// last delivery) and the acknowledged publications some subscriber never
// received ("lost", which must be 0). Run it with -benchtime 1x.
func BenchmarkDevChannelSustained(b *testing.B) {
	for b.Loop() {
		benchSustained(b, 100, sustainedFor)
	}
}

// loadDev starts an in-process `streamer dev` for a load benchmark.
func loadDev(b *testing.B, ctx context.Context, args ...string) *devStack {
	o, err := parseDevFlags(append([]string{"--addr", "127.0.0.1:0", "--log-level", "error"}, args...), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.shutdown(sctx); err != nil {
			b.Error(err)
		}
	})
	return s
}

// loadSubscriber is one subscriber of a load benchmark: it records every
// publication offset it receives (batches unpacked) and when the last
// one came.
type loadSubscriber struct {
	c *websocket.Conn
	// marker is what a message that carries publications contains.
	marker []byte

	mu   sync.Mutex
	seen []bool // by offset
	dups int
	last time.Time
	n    int
	// joins counts join events; subscribed is set by the subscribe's
	// answer.
	joins      int
	subscribed bool
}

// dialSubscriber connects and subscribes to channel, and starts reading.
func dialSubscriber(b *testing.B, ctx context.Context, url, channel string, readers *sync.WaitGroup) *loadSubscriber {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"subscribe","id":"s","channel":%q}`, channel)); err != nil {
		b.Fatal(err)
	}
	s := &loadSubscriber{c: c, marker: pubMarker}
	readers.Go(func() { s.read(context.WithoutCancel(ctx)) })
	return s
}

var (
	offsetKey  = []byte(`"offset":`)
	joinMarker = []byte(`"type":"join"`)
	subMarker  = []byte(`"type":"subscribed"`)
	pubMarker  = []byte(`"type":"publication"`)
)

func (s *loadSubscriber) read(ctx context.Context) {
	for {
		_, msg, err := s.c.Read(ctx)
		if err != nil {
			return
		}
		at := time.Now()
		s.mu.Lock()
		// Publications (alone or in a batch) carry "offset":N; the
		// subscribed reply is not a publication and is skipped.
		if bytes.Contains(msg, s.marker) {
			for rest := msg; ; {
				i := bytes.Index(rest, offsetKey)
				if i < 0 {
					break
				}
				rest = rest[i+len(offsetKey):]
				end := bytes.IndexAny(rest, ",}")
				off, err := strconv.Atoi(string(rest[:end]))
				if err != nil {
					break
				}
				for len(s.seen) <= off {
					s.seen = append(s.seen, false)
				}
				if s.seen[off] {
					s.dups++
				}
				s.seen[off] = true
				s.n++
				s.last = at
			}
		}
		s.joins += bytes.Count(msg, joinMarker)
		if bytes.Contains(msg, subMarker) {
			s.subscribed = true
		}
		s.mu.Unlock()
	}
}

// has reports whether the subscriber received offset.
func (s *loadSubscriber) has(off int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return off < len(s.seen) && s.seen[off]
}

// publisher publishes on channel through its own connection, keeping
// inFlight publishes outstanding, until stop is closed; it returns the
// offsets acknowledged and the publishes refused OVERLOADED.
type publisher struct {
	c        *websocket.Conn
	acked    []int
	refused  atomic.Int64
	first    time.Time
	inFlight chan struct{}
	mu       sync.Mutex
	done     chan struct{}
}

func startPublisher(b *testing.B, ctx context.Context, url, channel string, inFlight int, stop <-chan struct{}) *publisher {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	p := &publisher{c: c, inFlight: make(chan struct{}, inFlight), done: make(chan struct{})}
	var outstanding sync.WaitGroup
	go func() { // acks
		for {
			_, msg, err := c.Read(context.WithoutCancel(ctx))
			if err != nil {
				return
			}
			var m struct {
				Type protocol.MessageType `json:"type"`
				Code protocol.ErrorCode   `json:"code"`
				Data struct {
					Offset int `json:"offset"`
				} `json:"data"`
			}
			if json.Unmarshal(msg, &m) != nil {
				continue
			}
			switch m.Type {
			case protocol.TypeResponse:
				p.mu.Lock()
				p.acked = append(p.acked, m.Data.Offset)
				p.mu.Unlock()
			case protocol.TypeError:
				if m.Code != protocol.CodeOverloaded {
					b.Errorf("publish refused: %s", msg)
				}
				p.refused.Add(1)
			default:
				continue
			}
			<-p.inFlight
			outstanding.Done()
		}
	}()
	go func() {
		defer close(p.done)
		p.first = time.Now()
		for n := 0; ; n++ {
			select {
			case <-stop:
				outstanding.Wait()
				return
			case p.inFlight <- struct{}{}:
			}
			outstanding.Add(1)
			if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"publish","id":"p%d","channel":%q,"data":{"n":%d}}`, n, channel, n)); err != nil {
				b.Error(err)
				outstanding.Done()
				return
			}
		}
	}()
	return p
}

func benchSustained(b *testing.B, subscribers int, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	s := loadDev(b, ctx)
	const channel = "chat:sustained"
	var readers sync.WaitGroup
	subs := make([]*loadSubscriber, subscribers)
	for i := range subs {
		subs[i] = dialSubscriber(b, ctx, s.wsURL, channel, &readers)
	}
	defer func() {
		for _, sub := range subs {
			sub.c.CloseNow()
		}
		readers.Wait()
	}()
	// Every subscription is in place once each has its answer.
	for _, sub := range subs {
		for {
			sub.mu.Lock()
			ok := sub.subscribed
			sub.mu.Unlock()
			if ok {
				break
			}
			if ctx.Err() != nil {
				b.Fatal("subscribers not subscribed")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	stop := make(chan struct{})
	pub := startPublisher(b, ctx, s.wsURL, channel, 32, stop)
	time.Sleep(d)
	close(stop)
	<-pub.done
	defer pub.c.CloseNow()
	if err := s.channels.svc.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	// The last posts may still be on their way through the gateway.
	time.Sleep(500 * time.Millisecond)

	var lost, deliveries, dups int
	var last time.Time
	for _, sub := range subs {
		sub.mu.Lock()
		deliveries += sub.n
		dups += sub.dups
		if sub.last.After(last) {
			last = sub.last
		}
		sub.mu.Unlock()
	}
	for _, off := range pub.acked {
		for _, sub := range subs {
			if !sub.has(off) {
				lost++
			}
		}
	}
	secs := last.Sub(pub.first).Seconds()
	st := s.mgr.Stats()
	b.ReportMetric(float64(len(pub.acked)), "acked")
	b.ReportMetric(float64(pub.refused.Load()), "refused")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(dups), "duplicates")
	b.ReportMetric(float64(deliveries)/secs, "deliveries/s")
	b.ReportMetric(float64(st.SendsTotal)/secs, "posts/s")
	b.ReportMetric(float64(deliveries)/float64(max(1, st.SendsTotal)), "deliveries/post")
	if lost > 0 {
		b.Errorf("%d acknowledged deliveries lost", lost)
	}
}

// BenchmarkDevChannelJoinStorm: 1,000 subscribers join a chat room
// (join/leave events on) as fast as they connect; then one publication.
// It reports how long the publication took to reach all of them, and the
// @connections posts the joins and the publication cost (one post per
// join per subscriber would be N²/2, 500,500). Run it with -benchtime 1x.
func BenchmarkDevChannelJoinStorm(b *testing.B) {
	for b.Loop() {
		benchJoinStorm(b, 1000)
	}
}

func benchJoinStorm(b *testing.B, subscribers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := loadDev(b, ctx)
	const channel = "chat:storm"
	var readers sync.WaitGroup
	subs := make([]*loadSubscriber, subscribers)
	var dial sync.WaitGroup
	start := time.Now()
	for w := range 16 {
		dial.Go(func() {
			for i := w; i < subscribers; i += 16 {
				subs[i] = dialSubscriber(b, ctx, s.wsURL, channel, &readers)
			}
		})
	}
	dial.Wait()
	defer func() {
		for _, sub := range subs {
			sub.c.CloseNow()
		}
		readers.Wait()
	}()
	joined := time.Since(start)
	published := time.Now()
	off, err := s.channels.svc.In(demo.DefaultTenant).Publish(ctx, channel, map[string]int{"n": 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, sub := range subs {
		for !sub.has(int(off)) {
			if ctx.Err() != nil {
				b.Fatal("the publication did not reach every subscriber")
			}
			time.Sleep(time.Millisecond)
		}
	}
	var last time.Time
	for _, sub := range subs {
		sub.mu.Lock()
		if sub.last.After(last) {
			last = sub.last
		}
		sub.mu.Unlock()
	}
	b.ReportMetric(joined.Seconds(), "subscribe-all-s")
	b.ReportMetric(last.Sub(published).Seconds(), "publication-reached-all-s")
	// Every post of the run: the joins' and the publication's (which may
	// share batches with the last joins).
	b.ReportMetric(float64(s.mgr.Stats().SendsTotal), "posts")
}
