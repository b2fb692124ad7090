package local

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// API Gateway's account-level rate quotas per Region (see
// https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
const (
	// AWSNewConnectionsPerSecond is the rate of new WebSocket connections.
	AWSNewConnectionsPerSecond = 500
	// AWSRequestsPerSecond is the steady rate of requests, which every
	// @connections call counts against.
	AWSRequestsPerSecond = 10000
	// AWSRequestsBurst is the bucket size of that rate.
	AWSRequestsBurst = 5000
)

// Quotas are API Gateway's account-level rate limits, enforced with
// token buckets as API Gateway does: upgrades over the connection rate
// are refused with 429 before $connect runs, and @connections calls over
// the request rate are answered 429 LimitExceededException. Set
// Config.Quotas to enforce them; the zero value has AWS's numbers.
type Quotas struct {
	// NewConnectionsPerSecond is the rate of upgrades admitted. Zero
	// means 500.
	NewConnectionsPerSecond float64
	// NewConnectionsBurst is how many upgrades may come at once. Zero
	// means one second's worth of NewConnectionsPerSecond.
	NewConnectionsBurst int
	// RequestsPerSecond is the rate of @connections calls admitted (POST,
	// GET and DELETE alike). Zero means 10,000.
	RequestsPerSecond float64
	// RequestsBurst is how many calls may come at once. Zero means 5,000.
	RequestsBurst int
	// Now is the buckets' clock. Nil means time.Now; tests inject their
	// own to count admissions per window.
	Now func() time.Time `json:"-"`
}

// WithDefaults returns q with its zero fields filled with AWS's numbers.
func (q Quotas) WithDefaults() Quotas {
	if q.NewConnectionsPerSecond <= 0 {
		q.NewConnectionsPerSecond = AWSNewConnectionsPerSecond
	}
	if q.NewConnectionsBurst <= 0 {
		q.NewConnectionsBurst = max(1, int(q.NewConnectionsPerSecond))
	}
	if q.RequestsPerSecond <= 0 {
		q.RequestsPerSecond = AWSRequestsPerSecond
	}
	if q.RequestsBurst <= 0 {
		q.RequestsBurst = AWSRequestsBurst
	}
	if q.Now == nil {
		q.Now = time.Now
	}
	return q
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take spends one token if there is one at now.
func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter is a gateway's quotas at work.
type limiter struct {
	q           Quotas
	connections *bucket
	requests    *bucket

	refusedConnections atomic.Uint64
	refusedRequests    atomic.Uint64
}

func newLimiter(q *Quotas) *limiter {
	if q == nil {
		return nil
	}
	d := q.WithDefaults()
	now := d.Now()
	return &limiter{
		q:           d,
		connections: newBucket(d.NewConnectionsPerSecond, d.NewConnectionsBurst, now),
		requests:    newBucket(d.RequestsPerSecond, d.RequestsBurst, now),
	}
}

// admitUpgrade answers 429 to an upgrade over the connection rate and
// reports whether it may go on.
func (g *Gateway) admitUpgrade(w http.ResponseWriter) bool {
	l := g.limits
	if l == nil || l.connections.take(l.q.Now()) {
		return true
	}
	l.refusedConnections.Add(1)
	writeAPIError(w, http.StatusTooManyRequests, "LimitExceededException", "Too Many Requests")
	return false
}

// admitRequest answers 429 LimitExceededException to a management call
// over the request rate and reports whether it may go on.
func (g *Gateway) admitRequest(w http.ResponseWriter) bool {
	l := g.limits
	if l == nil || l.requests.take(l.q.Now()) {
		return true
	}
	l.refusedRequests.Add(1)
	writeAPIError(w, http.StatusTooManyRequests, "LimitExceededException", "Too Many Requests")
	return false
}

// LimitStats counts what the gateway's quotas and faults did since it
// started; dev consoles and /metrics show it.
type LimitStats struct {
	// Quotas and Faults are the configuration in force, with defaults
	// filled in; nil when not set.
	Quotas *Quotas
	Faults *Faults

	// ThrottledConnections are upgrades refused over the connection rate.
	ThrottledConnections uint64
	// ThrottledRequests are @connections calls answered 429 over the
	// request rate.
	ThrottledRequests uint64
	// Injected counts the faults injected, by kind.
	Injected FaultCounts
}

// LimitStats reports what the quotas and faults did.
func (g *Gateway) LimitStats() LimitStats {
	var s LimitStats
	if l := g.limits; l != nil {
		q := l.q
		q.Now = nil
		s.Quotas = &q
		s.ThrottledConnections = l.refusedConnections.Load()
		s.ThrottledRequests = l.refusedRequests.Load()
	}
	if f := g.faults; f != nil {
		cfg := f.cfg
		cfg.Rand = nil
		s.Faults = &cfg
		s.Injected = f.counts()
	}
	return s
}
