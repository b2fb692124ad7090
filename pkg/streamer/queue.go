package streamer

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// DefaultQueueSize is the size of a Processor's own Queue (one not given
// with WithProcessorQueue).
const DefaultQueueSize = 1024

// Queue hands the requests a Router stores to the worker pool of a
// Processor in the same process, such as `streamer dev`. Make one with
// NewQueue and give it to both: the Router with [WithQueue], the Processor
// with [WithProcessorQueue]. Neither knows the other; the Queue is all
// they share.
//
// While a started Processor works from the Queue, the Router hands it each
// request it stores, and answers RATE_LIMITED, storing nothing, when the
// Queue is full; a resume or resubmission of a request running under a
// lease asks the pool to look at it again when the lease ends. While no
// started Processor works from it (before Start, after Shutdown) the
// Router only stores requests, and a sweep runs them later, as on Lambda,
// where a Router has no Queue and a DynamoDB stream delivers the stored
// requests. A Queue is safe for concurrent use.
type Queue struct {
	// slots counts queued plus reserved items so that push never blocks:
	// the router reserves before it writes to the store.
	items chan string
	slots chan struct{}

	workers  atomic.Int32 // started processors working from the queue
	watchers atomic.Int32 // of them, those whose recovery loop runs

	mu        sync.Mutex
	leaseEnds map[string]time.Time // request id → when its lease ends
	wake      chan struct{}        // capacity 1: a lease end to look at
}

// NewQueue returns a Queue holding up to size requests waiting for a
// worker (size <= 0: DefaultQueueSize).
func NewQueue(size int) *Queue {
	if size <= 0 {
		size = DefaultQueueSize
	}
	return &Queue{
		items:     make(chan string, size),
		slots:     make(chan struct{}, size),
		leaseEnds: map[string]time.Time{},
		wake:      make(chan struct{}, 1),
	}
}

// Len returns how many requests wait for a worker (queued, or reserved
// by the router and about to be).
func (q *Queue) Len() int { return len(q.slots) }

// Cap returns the Queue's size.
func (q *Queue) Cap() int { return cap(q.slots) }

// reserve takes a slot before the router writes a request, so that a full
// queue refuses the request instead of stranding it in the store. held is
// false, with no error, when no started processor works from the queue
// (or q is nil): the request is only stored.
func (q *Queue) reserve() (held bool, err error) {
	if q == nil || q.workers.Load() == 0 {
		return false, nil
	}
	select {
	case q.slots <- struct{}{}:
		return true, nil
	default:
		return false, ErrQueueFull
	}
}

// push queues a request id under a slot reserve took; it never blocks.
func (q *Queue) push(requestID string) { q.items <- requestID }

// release returns a slot reserve took and push did not use.
func (q *Queue) release() { <-q.slots }

// expectLeaseEnd asks the pool to look at ar again when its lease ends. It
// does nothing without a running recovery loop (no pool, or its periodic
// sweep turned off), or unless ar is PROCESSING under a lease. Nil-safe.
func (q *Queue) expectLeaseEnd(ar *store.AsyncRequest) {
	if q == nil || ar == nil || ar.Status != store.StatusProcessing || ar.LeaseUntil.IsZero() || q.watchers.Load() == 0 {
		return
	}
	q.mu.Lock()
	_, known := q.leaseEnds[ar.RequestID]
	if known || len(q.leaseEnds) < maxRecoveryEntries {
		q.leaseEnds[ar.RequestID] = ar.LeaseUntil
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dueLeaseEnds removes and returns the watched requests whose lease ended
// (plus the margin) by now, and the earliest end still ahead.
func (q *Queue) dueLeaseEnds(now time.Time) (due []string, next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, end := range q.leaseEnds {
		at := end.Add(leaseEndMargin)
		if !now.Before(at) {
			due = append(due, id)
			delete(q.leaseEnds, id)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	slices.Sort(due)
	return due, next
}
