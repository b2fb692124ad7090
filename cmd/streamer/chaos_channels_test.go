package main

// The channel chaos test: publications reach every subscriber exactly
// once, in order, while subscribers reconnect at random (to any runtime)
// and, with DynamoDB, while one of three runtimes sharing it is killed.
// Subscribers behave as the TypeScript client does: they drop duplicates
// by offset, and on a gap or a reconnect they subscribe again with since.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

const (
	chaosPublications = 1000
	chaosSubscribers  = 8
	chaosChannel      = "chat:chaos"
	// chaosPublishEvery paces the publications: 1,000 take 10 s or more.
	chaosPublishEvery = 10 * time.Millisecond
)

// chaosRuntimes is where the clients connect: the runtimes' WebSocket
// URLs and which of them are still up.
type chaosRuntimes struct {
	mu    sync.Mutex
	urls  []string
	alive []bool
}

func (r *chaosRuntimes) pick(rng *rand.Rand, only []int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var up []string
	for i, u := range r.urls {
		if r.alive[i] && (only == nil || containsInt(only, i)) {
			up = append(up, u)
		}
	}
	return up[rng.IntN(len(up))]
}

func (r *chaosRuntimes) kill(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alive[i] = false
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// chaosSub is one subscriber.
type chaosSub struct {
	n        int
	rng      *rand.Rand
	runtimes *chaosRuntimes

	mu        sync.Mutex
	epoch     string
	last      uint64
	data      map[uint64]string // offset → data received
	twice     int               // publications accepted twice (must stay 0)
	resubs    int               // subscribes with since
	lost      int               // recovered:false answers (must stay 0)
	reconnect int
	// connID is the ID of final, the connection kept open once the
	// subscriber has every offset.
	connID string
	final  *websocket.Conn
}

func (s *chaosSub) position() (uint64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.epoch
}

// run connects, subscribes and reads until the subscriber has every
// offset up to target (set once publishing is done) or ctx ends,
// reconnecting at random moments and whenever the socket dies.
func (s *chaosSub) run(ctx context.Context, target *atomic.Uint64) {
	for ctx.Err() == nil {
		s.mu.Lock()
		done := s.final != nil
		s.mu.Unlock()
		if done {
			return
		}
		s.session(ctx, target)
	}
}

// session is one connection: it ends at a random moment (a reconnect),
// when the socket dies, or when the subscriber is done.
func (s *chaosSub) session(ctx context.Context, target *atomic.Uint64) {
	c, _, err := websocket.Dial(ctx, s.runtimes.pick(s.rng, nil), nil)
	if err != nil {
		time.Sleep(20 * time.Millisecond)
		return
	}
	c.SetReadLimit(1 << 20)
	keep := false
	defer func() {
		if !keep {
			c.CloseNow()
		}
	}()
	s.mu.Lock()
	s.reconnect++
	s.mu.Unlock()
	connID := ""
	life, cancel := context.WithTimeout(ctx, time.Duration(200+s.rng.IntN(1500))*time.Millisecond)
	defer cancel()
	var (
		ids      int
		pending  string // id of the subscribe awaiting its answer
		buffered []protocol.Publication
	)
	subscribe := func() bool {
		ids++
		pending = fmt.Sprint("s", ids)
		last, epoch := s.position()
		msg := fmt.Sprintf(`{"type":"subscribe","id":%q,"channel":%q}`, pending, chaosChannel)
		if epoch != "" {
			msg = fmt.Sprintf(`{"type":"subscribe","id":%q,"channel":%q,"since":{"offset":%d,"epoch":%q}}`, pending, chaosChannel, last, epoch)
			s.mu.Lock()
			s.resubs++
			s.mu.Unlock()
		}
		return c.Write(life, websocket.MessageText, []byte(msg)) == nil
	}
	if c.Write(life, websocket.MessageText, []byte(`{"type":"request","id":"who","action":"whoami"}`)) != nil || !subscribe() {
		return
	}
	for {
		if t := target.Load(); t > 0 && connID != "" {
			if last, _ := s.position(); last >= t {
				// Done: this connection stays open for the final checks.
				s.mu.Lock()
				s.connID, s.final, keep = connID, c, true
				s.mu.Unlock()
				return
			}
		}
		_, b, err := c.Read(life)
		if err != nil {
			return
		}
		var m chanMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		msgs, err := unbatch(m)
		if err != nil {
			return
		}
		for _, m := range msgs {
			switch {
			case m.Type == protocol.TypeResponse && m.RequestID == "who":
				var who struct {
					ConnectionID string `json:"connectionId"`
				}
				_ = json.Unmarshal(m.Data, &who)
				connID = who.ConnectionID
			case m.Type == protocol.TypeSubscribed && m.RequestID == pending:
				pending = ""
				if !s.subscribed(m) {
					return
				}
				pubs := buffered
				buffered = nil
				if gap := s.apply(pubs); gap && !subscribe() {
					return
				}
			case m.Type == protocol.TypePublication:
				p := protocol.Publication{Offset: m.Offset, Epoch: m.Epoch, Data: m.Data}
				if pending != "" {
					buffered = append(buffered, p)
					continue
				}
				if gap := s.apply([]protocol.Publication{p}); gap && !subscribe() {
					return
				}
			}
		}
	}
}

// subscribed applies a subscribe's answer: the first one sets the
// position; one with since must have recovered.
func (s *chaosSub) subscribed(m chanMessage) bool {
	s.mu.Lock()
	if s.epoch == "" {
		s.epoch, s.last = m.Epoch, m.Offset
		s.mu.Unlock()
		return true
	}
	if !m.Recovered || m.Epoch != s.epoch {
		s.lost++
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	pubs := make([]protocol.Publication, len(m.Publications))
	for i, p := range m.Publications {
		pubs[i] = protocol.Publication{Offset: p.Offset, Epoch: p.Epoch, Data: p.Data}
	}
	if gap := s.apply(pubs); gap {
		s.mu.Lock()
		s.lost++ // a recovered answer must hold every missed offset
		s.mu.Unlock()
		return false
	}
	return true
}

// apply delivers publications in order by the client's rule: drop what
// is at or below the position, accept the next offset, and report a gap
// (the caller subscribes again with since) for anything beyond it.
func (s *chaosSub) apply(pubs []protocol.Publication) (gap bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slicesSortByOffset(pubs)
	for _, p := range pubs {
		switch {
		case p.Epoch != s.epoch || p.Offset <= s.last:
		case p.Offset == s.last+1:
			if _, dup := s.data[p.Offset]; dup {
				s.twice++
			}
			s.data[p.Offset] = string(p.Data)
			s.last = p.Offset
		default:
			gap = true
		}
	}
	return gap
}

func slicesSortByOffset(pubs []protocol.Publication) {
	for i := 1; i < len(pubs); i++ {
		for j := i; j > 0 && pubs[j].Offset < pubs[j-1].Offset; j-- {
			pubs[j], pubs[j-1] = pubs[j-1], pubs[j]
		}
	}
}

// chaosPublish publishes chaosPublications, one per chaosPublishEvery at
// most, through the runtimes in only,
// from several connections at once, retrying OVERLOADED refusals and
// dead sockets (a publication is sent again only when no answer came, on
// runtimes that are never killed, so none is published twice). It
// returns each offset's data.
func chaosPublish(ctx context.Context, t *testing.T, runtimes *chaosRuntimes, only []int) map[uint64]string {
	var (
		mu   sync.Mutex
		data = map[uint64]string{}
		next atomic.Int64
		wg   sync.WaitGroup
		// At most one publication per chaosPublishEvery: a subscriber
		// away for a reconnect then misses far fewer than the history
		// holds, so every recovery is within history.
		tick = time.NewTicker(chaosPublishEvery)
	)
	defer tick.Stop()
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			var c *websocket.Conn
			defer func() {
				if c != nil {
					c.CloseNow()
				}
			}()
			for n := next.Add(1); n <= chaosPublications && ctx.Err() == nil; {
				if c == nil {
					var err error
					if c, _, err = websocket.Dial(ctx, runtimes.pick(rng, only), nil); err != nil {
						t.Errorf("publisher dial: %v", err)
						return
					}
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
				payload := fmt.Sprintf(`{"n":%d}`, n)
				if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"publish","id":"p%d","channel":%q,"data":%s}`, n, chaosChannel, payload)); err != nil {
					t.Errorf("publisher write: %v", err)
					return
				}
				var m chanMessage
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						t.Errorf("publisher read: %v", err)
						return
					}
					if json.Unmarshal(b, &m) == nil && m.RequestID == fmt.Sprint("p", n) {
						break
					}
				}
				switch {
				case m.Type == protocol.TypeResponse:
					var pos protocol.Published
					if err := json.Unmarshal(m.Data, &pos); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					data[pos.Offset] = payload
					mu.Unlock()
					n = next.Add(1)
				case m.Code == protocol.CodeOverloaded:
					time.Sleep(100 * time.Millisecond)
				default:
					t.Errorf("publish %d refused: %+v", n, m)
					return
				}
			}
		})
	}
	wg.Wait()
	return data
}

// chaosRun starts the subscribers, publishes, calls midway once half the
// publications are acknowledged, and checks what every subscriber ended
// with. It returns the subscribers for checks of the caller's own.
func chaosRun(t *testing.T, runtimes *chaosRuntimes, publishOn []int, midway func()) []*chaosSub {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var (
		target atomic.Uint64
		wg     sync.WaitGroup
	)
	subs := make([]*chaosSub, chaosSubscribers)
	t.Cleanup(func() {
		for _, s := range subs {
			if s != nil && s.final != nil {
				s.final.CloseNow()
			}
		}
	})
	for i := range subs {
		subs[i] = &chaosSub{n: i, rng: rand.New(rand.NewPCG(uint64(i), 7)), runtimes: runtimes, data: map[uint64]string{}}
		wg.Go(func() { subs[i].run(ctx, &target) })
	}
	// Every subscriber has its first position before anything is
	// published, so each is to receive every offset.
	for _, s := range subs {
		for ctx.Err() == nil {
			if _, epoch := s.position(); epoch != "" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var midwayOnce sync.Once
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		for ctx.Err() == nil {
			if last, _ := subs[0].position(); last >= chaosPublications/2 {
				midwayOnce.Do(midway)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	published := chaosPublish(ctx, t, runtimes, publishOn)
	<-watch
	midwayOnce.Do(midway)
	if len(published) != chaosPublications {
		t.Fatalf("%d publications acknowledged, want %d", len(published), chaosPublications)
	}
	target.Store(chaosPublications)
	wg.Wait()
	for _, s := range subs {
		s.mu.Lock()
		missing := 0
		for off, want := range published {
			if got, ok := s.data[off]; !ok || got != want {
				missing++
			}
		}
		if missing > 0 || s.twice > 0 || s.lost > 0 || len(s.data) != chaosPublications {
			t.Errorf("subscriber %d: %d offsets missing or wrong, %d twice, %d recovered:false, %d received (position %d)",
				s.n, missing, s.twice, s.lost, len(s.data), s.last)
		}
		t.Logf("subscriber %d: %d connections, %d subscribes with since", s.n, s.reconnect, s.resubs)
		s.mu.Unlock()
	}
	return subs
}

// TestChaosChannelsMemory: one `streamer dev` with the memory store.
func TestChaosChannelsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0", "--log-level", "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startDev(t.Context(), o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	runtimes := &chaosRuntimes{urls: []string{s.wsURL}, alive: []bool{true}}
	subs := chaosRun(t, runtimes, nil, func() {})
	for _, sub := range subs {
		if sub.connID == "" || !s.mgr.IsActive(t.Context(), sub.connID) {
			t.Errorf("subscriber %d's live connection %q is not active", sub.n, sub.connID)
		}
	}
}

// TestChaosChannelsAcrossRuntimes: three `streamer dev` processes on one
// DynamoDB-API server; subscribers reconnect at random to any of them;
// two of them take the publications (from four connections at once, so
// two processes publish concurrently); the third is killed (SIGKILL)
// half-way, and its subscribers reconnect elsewhere. Every subscriber
// ends with every offset exactly once, recovery always answering
// recovered:true, and no live connection's record is deleted.
func TestChaosChannelsAcrossRuntimes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes and dynalite")
	}
	endpoint := dynamotest.Endpoint(t)
	bin := buildBinary(t)
	prefix := dynamotest.Prefix("chanchaos")
	runtimes := &chaosRuntimes{}
	procs := make([]*devProcess, 3)
	for i := range procs {
		procs[i] = startDevProcess(t, bin, "--dynamodb-endpoint", endpoint, "--table-prefix", prefix)
		runtimes.urls = append(runtimes.urls, procs[i].wsURL)
		runtimes.alive = append(runtimes.alive, true)
	}
	subs := chaosRun(t, runtimes, []int{0, 1}, func() {
		runtimes.kill(2)
		if err := procs[2].cmd.Process.Kill(); err != nil {
			t.Error(err)
		}
	})
	st := dynamo.New(dynamotest.Client(t), dynamo.WithPrefix(prefix))
	for _, sub := range subs {
		if _, err := st.Get(t.Context(), sub.connID); sub.connID == "" || err != nil {
			t.Errorf("subscriber %d's live connection %q: %v", sub.n, sub.connID, err)
		}
	}
	for _, p := range procs[:2] {
		p.stop(t)
	}
}
