package streamer

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRateLimitConnections bounds how many connections' limiters a
// router keeps.
const DefaultRateLimitConnections = 10000

// WithRateLimit limits each connection to perSecond messages with bursts
// of burst; messages beyond it are answered RATE_LIMITED and not run. Off
// by default (API Gateway throttles per stage and route). The limiters live
// in the router's process: on Lambda each container limits the messages it
// sees, a per-container bound rather than a global one. Values <= 0 turn
// the limit off.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(r *Router) {
		if perSecond <= 0 || burst <= 0 {
			r.limits = nil
			return
		}
		r.limits = &connectionLimits{every: rate.Limit(perSecond), burst: burst, size: DefaultRateLimitConnections, m: map[string]*limitEntry{}}
	}
}

// connectionLimits holds one token bucket per connection, bounded like the
// identity cache: when full, buckets idle long enough to be full again are
// dropped first (forgetting them changes nothing), then arbitrary ones.
type connectionLimits struct {
	every rate.Limit
	burst int
	size  int

	mu sync.Mutex
	m  map[string]*limitEntry
}

type limitEntry struct {
	lim  *rate.Limiter
	last time.Time
}

// allow reports whether the connection may send one more message now.
func (l *connectionLimits) allow(connectionID string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[connectionID]
	if !ok {
		if len(l.m) >= l.size {
			l.evict(now)
		}
		e = &limitEntry{lim: rate.NewLimiter(l.every, l.burst)}
		l.m[connectionID] = e
	}
	e.last = now
	return e.lim.AllowN(now, 1)
}

// evict makes room. Caller holds mu.
func (l *connectionLimits) evict(now time.Time) {
	refill := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
	for k, e := range l.m {
		if now.Sub(e.last) >= refill {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < l.size {
			return
		}
		delete(l.m, k)
	}
}
