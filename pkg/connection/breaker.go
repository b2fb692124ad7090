package connection

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// The per-connection circuit breaker is hand-written, in the manner of
// sony/gobreaker: its state is computed lazily on each call from the time
// it opened and a generation counter, so a breaker needs no timer and no
// goroutine, and thousands of them cost a map entry each. Hand-written
// rather than one gobreaker per connection because the manager needs
// running per-state counts (GetMetrics must not scan), bounded memory
// (idle breakers are forgotten), "neutral" outcomes (410, 403, 413,
// cancellation) that neither trip nor reset it, and no callback under a
// lock.

// breakerState is a breaker's state.
type breakerState uint8

const (
	stateClosed breakerState = iota
	stateOpen
	stateHalfOpen
	numStates
)

var stateNames = [numStates]string{"closed", "open", "half_open"}

// connState is what the manager remembers about one connection: its
// breaker and when it last started a LastPing write.
type connState struct {
	state    breakerState
	failures int    // consecutive failures while closed
	gen      uint64 // bumped on every transition; stale results are ignored
	openedAt time.Time
	probing  bool // half-open: the one probe is in flight
	lastUsed time.Time
	lastPing time.Time
}

// ticket is what allow hands a call, to be given back to record.
type ticket struct {
	gen uint64
	// clean: the breaker was closed with no failure counted when the call
	// was allowed. Such a call's success (or neutral outcome) changes
	// nothing, and record skips it without the lock: a failure counted
	// meanwhile by a concurrent call stays counted, as if this success
	// had come first, which it may well have. That is the common case,
	// and it spares each Send a second locked map lookup after its call,
	// on cache lines the call had evicted.
	clean bool
}

const numShards = 64

// sweepEvery is how many new entries a shard takes between sweeps for
// idle entries, so forgetting them costs O(1) amortised per entry.
const sweepEvery = 256

type shard struct {
	mu      sync.Mutex
	m       map[string]*connState
	created int
}

// connStates is the sharded table of connState, so senders to different
// connections rarely share a lock.
type connStates struct {
	settings BreakerSettings
	disabled bool
	clock    Clock
	seed     maphash.Seed
	shards   [numShards]shard
	// counts are the running number of breakers per state, kept on every
	// transition so reading them never scans the table.
	counts [numStates]atomic.Int64
}

func newConnStates(s BreakerSettings, clock Clock) *connStates {
	cs := &connStates{settings: s, disabled: s.Threshold < 0, clock: clock, seed: maphash.MakeSeed()}
	for i := range cs.shards {
		cs.shards[i].m = map[string]*connState{}
	}
	return cs
}

func (cs *connStates) shard(id string) *shard {
	return &cs.shards[maphash.String(cs.seed, id)%numShards]
}

// setState moves e to st, keeping the counts and generation.
func (cs *connStates) setState(e *connState, st breakerState) {
	if e.state == st {
		return
	}
	cs.counts[e.state].Add(-1)
	cs.counts[st].Add(1)
	e.state = st
	e.gen++
}

// create adds a closed entry for id; the caller holds sh.mu.
func (cs *connStates) create(sh *shard, id string, now time.Time) *connState {
	sh.created++
	if sh.created >= sweepEvery {
		sh.created = 0
		cs.sweep(sh, now)
	}
	e := &connState{state: stateClosed, lastUsed: now}
	sh.m[id] = e
	cs.counts[stateClosed].Add(1)
	return e
}

// sweep forgets entries unused for IdleTTL (open ones only once their
// cooldown has passed too, and never a half-open one whose probe is in
// flight); the caller holds sh.mu.
func (cs *connStates) sweep(sh *shard, now time.Time) {
	for id, e := range sh.m {
		if now.Sub(e.lastUsed) < cs.settings.IdleTTL || e.probing {
			continue
		}
		if e.state == stateOpen && now.Sub(e.openedAt) < cs.settings.Cooldown {
			continue
		}
		delete(sh.m, id)
		cs.counts[e.state].Add(-1)
	}
}

// allow asks the breaker of id whether a call may go ahead. at is the
// caller's reading of the clock, or zero to read it when needed.
func (cs *connStates) allow(id string, at time.Time) (ticket, bool) {
	if cs.disabled {
		return ticket{}, true
	}
	sh := cs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if e == nil {
		// Never failed recently: closed, and nothing to remember yet.
		return ticket{clean: true}, true
	}
	now := cs.timeOr(at)
	e.lastUsed = now
	switch e.state {
	case stateOpen:
		if now.Sub(e.openedAt) < cs.settings.Cooldown {
			return ticket{}, false
		}
		cs.setState(e, stateHalfOpen)
		e.probing = true
		return ticket{gen: e.gen}, true
	case stateHalfOpen:
		if e.probing {
			return ticket{}, false
		}
		e.probing = true
		return ticket{gen: e.gen}, true
	}
	return ticket{gen: e.gen, clean: e.failures == 0}, true
}

// record reports how a call allowed with t ended; at is as for allow.
func (cs *connStates) record(id string, t ticket, k kind, at time.Time) {
	if cs.disabled {
		return
	}
	failure := k.tripsBreaker()
	if t.clean && !failure {
		return
	}
	sh := cs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if e == nil && !failure {
		return
	}
	now := cs.timeOr(at)
	if e == nil {
		e = cs.create(sh, id, now)
	} else if e.gen != t.gen {
		return // the breaker moved on since this call was allowed
	}
	e.lastUsed = now
	switch {
	case k == kindOK:
		e.failures = 0
		e.probing = false
		cs.setState(e, stateClosed)
	case failure:
		e.probing = false
		if e.state == stateHalfOpen {
			e.openedAt = now
			cs.setState(e, stateOpen)
			return
		}
		e.failures++
		if e.failures >= cs.settings.Threshold {
			e.failures = 0
			e.openedAt = now
			cs.setState(e, stateOpen)
		}
	default:
		// Neutral: a half-open breaker lets the next call probe.
		e.probing = false
	}
}

// timeOr is at, or the clock's time if at is zero. A Send reads the
// clock once before its call and once after, and shares each reading
// between the breaker, the Limiter, LastPing and the metrics: on virtual
// machines a reading can cost 50-90 ns, several times a Send's own work
// per field it touches.
func (cs *connStates) timeOr(at time.Time) time.Time {
	if at.IsZero() {
		return cs.clock.Now()
	}
	return at
}

// forget drops what is known about id, e.g. once it is gone.
func (cs *connStates) forget(id string) {
	sh := cs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[id]; ok {
		delete(sh.m, id)
		cs.counts[e.state].Add(-1)
	}
}

// claimLastPing reports whether a successful send to id at now should
// write LastPing: only if neither the stored value (stored) nor a write
// this manager started is more recent than gap. A true answer records the
// write as started.
func (cs *connStates) claimLastPing(id string, stored, now time.Time, gap time.Duration) bool {
	if now.Sub(stored) < gap {
		return false
	}
	sh := cs.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if e == nil {
		e = cs.create(sh, id, now)
	} else if now.Sub(e.lastPing) < gap {
		return false
	}
	e.lastPing = now
	e.lastUsed = now
	return true
}

// stateCounts returns the running per-state counts.
func (cs *connStates) stateCounts() (closed, open, halfOpen int64) {
	return cs.counts[stateClosed].Load(), cs.counts[stateOpen].Load(), cs.counts[stateHalfOpen].Load()
}

// tracked returns the number of remembered connections (tests use it to
// check memory stays bounded).
func (cs *connStates) tracked() int {
	n := 0
	for i := range cs.shards {
		sh := &cs.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
