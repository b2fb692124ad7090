package memory

import (
	"context"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// DefaultPageSize is the page size of the request lists when the caller
// passes limit <= 0.
const DefaultPageSize = 100

var (
	_ store.ConnectionStore = (*Store)(nil)
	_ store.RouteGetter     = (*Store)(nil)
	_ store.RoutesGetter    = (*Store)(nil)
	_ store.RequestStore    = (*Store)(nil)
)

// Store holds connections and async requests in memory. The zero value is
// not usable; call New. A Store is safe for concurrent use.
type Store struct {
	now      func() time.Time
	pageSize int

	mu    sync.Mutex
	conns map[string]*store.Connection
	reqs  map[string]*store.AsyncRequest
	// writes counts inserts since the last sweep of expired records.
	writes int
}

// sweepEvery is how many inserts pass between two sweeps of expired
// records. Reads already hide them; the sweep bounds the memory a
// long-running `streamer dev` holds, at O(1) amortized cost per insert and
// without a background goroutine.
const sweepEvery = 1024

// noteInsert counts an insert and sweeps expired records every sweepEvery
// inserts. s.mu must be held.
func (s *Store) noteInsert(now time.Time) {
	s.writes++
	if s.writes < sweepEvery {
		return
	}
	s.writes = 0
	for id, c := range s.conns {
		if c.Expired(now) {
			delete(s.conns, id)
		}
	}
	for id, r := range s.reqs {
		if r.Expired(now) {
			delete(s.reqs, id)
		}
	}
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for TTL expiry, leases and timestamps.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithPageSize sets the default page size of ListRequestsByConnection and
// ListRequestsByUser (used when limit <= 0). Values <= 0 keep
// DefaultPageSize.
func WithPageSize(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.pageSize = n
		}
	}
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		now:      time.Now,
		pageSize: DefaultPageSize,
		conns:    make(map[string]*store.Connection),
		reqs:     make(map[string]*store.AsyncRequest),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// clock returns the current time in UTC without a monotonic reading, the
// form DynamoDB gives back, so both stores return comparable values.
func (s *Store) clock() time.Time { return s.now().UTC().Round(0) }

func normal(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

func checkCtx(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return opError(op, "", err)
	}
	return nil
}
