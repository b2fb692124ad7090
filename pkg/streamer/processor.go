package streamer

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamer-go/streamer/internal/backoff"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
)

// Processor defaults.
const (
	// DefaultLease is how long a claim lasts without renewal. A worker that
	// dies holding a request loses it this long after its last renewal.
	DefaultLease = 30 * time.Second
	// DefaultMaxAttempts bounds how often a request fails retryably before
	// it is failed for good.
	DefaultMaxAttempts = 3
	// DefaultAsyncTimeout bounds one run of an async handler (Lambda's own
	// maximum is 15 minutes).
	DefaultAsyncTimeout = 15 * time.Minute
	// DefaultWorkers is the size of the in-process pool.
	DefaultWorkers = 16
	// DefaultSweepInterval is how often the in-process pool looks for
	// stalled requests (see [Processor.Sweep]).
	DefaultSweepInterval = time.Minute
	// DefaultPendingGrace is how long a request may stay PENDING before a
	// sweep takes it for lost. It is well above the time a healthy
	// dispatch takes (the pool's queue, a DynamoDB stream's delivery and
	// the processor's own retry backoff), so that sweeps do not compete
	// with normal dispatch.
	DefaultPendingGrace = time.Minute
	// finalWriteTimeout bounds the store write and send that end a request
	// when the processor's context is already done (shutdown, Lambda
	// deadline): they run detached so the outcome is not lost.
	finalWriteTimeout = 5 * time.Second
)

// Processor runs queued async requests: it claims a request in the store
// under a lease, runs its action's handler with a progress reporter,
// persists the result or error and sends complete or error to the user.
//
// Process runs one request; the Lambda stream adapter calls it for each
// stream record. Start adds an in-process worker pool, which works from a
// [Queue] that a Router in the same process fills as it stores requests
// (WithProcessorQueue), for a single process such as `streamer dev`;
// Shutdown stops it. Sweep finds and runs the requests that no delivery
// will bring (a lost dispatch, a worker that died holding a lease); the
// pool sweeps periodically, and on Lambda a scheduled function does.
type Processor struct {
	// Its dependencies: the store it claims from and writes outcomes to,
	// the Sender of its messages, the user's connections (results follow
	// the user; nil: only the request's connection), the registry of the
	// actions it runs, and the queue its pool works from.
	requests store.RequestStore
	sender   Sender
	conns    store.ConnectionStore
	actions  *Actions
	queue    *Queue
	failures *sendFailures

	log         *slog.Logger
	owner       string
	lease       time.Duration
	renewEvery  time.Duration
	maxAttempts int
	retry       backoff.Policy
	timeout     time.Duration
	progress    []progress.Option
	workers     int
	userListTTL time.Duration
	sweepEvery  time.Duration
	grace       time.Duration

	stop chan struct{} // closed by Shutdown

	// rec is what the pool remembers to recover lost work (recovery.go);
	// watching is set while its loop runs.
	rec      recovery
	watching atomic.Bool
	runs     atomic.Int64 // numbers each run's lease owner

	mu        sync.Mutex
	started   bool
	closeOnce sync.Once
	force     context.CancelFunc // cancels running handlers at Shutdown's deadline
	endSweeps context.CancelFunc // stops the periodic sweep at Shutdown
	wg        sync.WaitGroup

	stats processorStats // see processor_stats.go

	now   func() time.Time    // what time it is for the store's records (leases run on real time)
	randN func(n int64) int64 // draws retry delays: [0, n)
}

// ProcessorOption configures a Processor.
type ProcessorOption func(*Processor)

// WithLease sets the claim lease (default [DefaultLease]); the processor
// renews it every third of its length while the handler runs, and each
// renewal also checks whether the request was cancelled. A run whose lease
// cannot be renewed before it ends (the store is unreachable) is stopped,
// since another worker may take the request over from then on; it is put
// back in the queue when the store answers again. A shorter lease means a
// faster take-over after a crash, and more renewal writes.
func WithLease(d time.Duration) ProcessorOption {
	return func(p *Processor) {
		if d > 0 {
			p.lease = d
		}
	}
}

// WithMaxAttempts sets how many retryable failures a request may have
// (default [DefaultMaxAttempts]).
func WithMaxAttempts(n int) ProcessorOption {
	return func(p *Processor) {
		if n > 0 {
			p.maxAttempts = n
		}
	}
}

// WithRetryBackoff sets the exponential backoff (full jitter) between
// retries: base is the first delay's ceiling, max caps them all (defaults
// 200 ms and 10 s).
func WithRetryBackoff(base, max time.Duration) ProcessorOption {
	return func(p *Processor) {
		if base > 0 && max >= base {
			p.retry = backoff.Policy{Base: base, Max: max}
		}
	}
}

// WithAsyncTimeout sets the default timeout of one handler run (default
// [DefaultAsyncTimeout]); the Timeout action option overrides it.
func WithAsyncTimeout(d time.Duration) ProcessorOption {
	return func(p *Processor) {
		if d > 0 {
			p.timeout = d
		}
	}
}

// WithProgressOptions passes options (rate, persist interval) to each
// request's progress.Publisher. The processor installs its own error
// handler, which is how it learns of a cancellation.
func WithProgressOptions(opts ...progress.Option) ProcessorOption {
	return func(p *Processor) { p.progress = append(p.progress, opts...) }
}

// WithWorkers sets the size of the in-process pool (default
// [DefaultWorkers]), and how many requests one Sweep runs at once.
func WithWorkers(n int) ProcessorOption {
	return func(p *Processor) {
		if n > 0 {
			p.workers = n
		}
	}
}

// WithProcessorQueue makes the pool started by Start work from q, the
// Queue a Router in the same process fills ([WithQueue]); its sweeps queue
// stalled requests there too. Default: a Queue of its own, of
// [DefaultQueueSize], that only its sweeps fill. Nil is ignored.
func WithProcessorQueue(q *Queue) ProcessorOption {
	return func(p *Processor) {
		if q != nil {
			p.queue = q
		}
	}
}

// WithSweepInterval sets how often the in-process pool started by Start
// sweeps for stalled requests (default [DefaultSweepInterval]); d <= 0
// turns the periodic sweep off, and with it the pool's recovery loop. It
// does not affect Sweep itself. Besides sweeping periodically, the pool
// looks again at a request when the lease it runs under ends if a client
// is waiting for it (a resume or a resubmission found it running), so a
// request whose worker died is taken over about a lease after the crash,
// not a lease plus an interval.
func WithSweepInterval(d time.Duration) ProcessorOption {
	return func(p *Processor) { p.sweepEvery = max(d, 0) }
}

// WithPendingGrace sets how long a request may stay PENDING before a sweep
// takes its dispatch for lost and runs it (default [DefaultPendingGrace]).
// Keep it above the time a healthy dispatch takes, or sweeps compete with
// it (harmlessly: the claim decides, but the work is wasted). Negative
// values are ignored.
func WithPendingGrace(d time.Duration) ProcessorOption {
	return func(p *Processor) {
		if d >= 0 {
			p.grace = d
		}
	}
}

// WithOwner sets the lease owner name (default: random per Processor).
// Owners must be unique among processors sharing a store.
func WithOwner(owner string) ProcessorOption {
	return func(p *Processor) {
		if owner != "" {
			p.owner = owner
		}
	}
}

// WithProcessorClock replaces the clock the processor compares stored
// times with (a lease's end, a pending request's age; default: time.Now),
// for tests: give it the clock of the store and the Router. Its own lease
// renewals and timers run on real time.
func WithProcessorClock(now func() time.Time) ProcessorOption {
	return func(p *Processor) {
		if now != nil {
			p.now = now
		}
	}
}

// WithProcessorRand replaces the source of the retry delays' jitter:
// randN(n) returns a number in [0, n) (default math/rand/v2.Int64N). For
// tests that need a given delay.
func WithProcessorRand(randN func(n int64) int64) ProcessorOption {
	return func(p *Processor) {
		if randN != nil {
			p.randN = randN
		}
	}
}

// WithProcessorConnections sets where the processor lists a user's
// connections, so that a request's messages reach the user's other
// connections when its own has gone (default: none; messages go to the
// request's connection only). Give it the store the $connect handler
// saves connections in, as the Router's WithConnectionStore.
func WithProcessorConnections(cs store.ConnectionStore) ProcessorOption {
	return func(p *Processor) { p.conns = cs }
}

// WithProcessorLogger sets the processor's logger (default: discard).
func WithProcessorLogger(l *slog.Logger) ProcessorOption {
	return func(p *Processor) {
		if l != nil {
			p.log = l
		}
	}
}

// NewProcessor returns a Processor with its own dependencies: it claims
// requests from requests, runs the async actions of actions (the registry
// the Router that queues them uses: Router.Actions, or one made with
// NewActions and given to both) and sends through sender. Give it the
// connection store with WithProcessorConnections so that results follow
// the user, and, in a process that also runs the Router, the Router's
// Queue with WithProcessorQueue so that its pool runs each request as the
// Router stores it. On Lambda it needs neither queue nor Start: Process
// runs what a DynamoDB stream delivers, Sweep what no delivery brings.
// Nil dependencies panic, as a programming error.
func NewProcessor(requests store.RequestStore, sender Sender, actions *Actions, opts ...ProcessorOption) *Processor {
	if requests == nil || sender == nil || actions == nil {
		panic("streamer: NewProcessor needs a request store, a sender and actions")
	}
	p := &Processor{
		requests:    requests,
		sender:      sender,
		actions:     actions,
		log:         slog.New(slog.DiscardHandler),
		owner:       randomOwner(),
		lease:       DefaultLease,
		maxAttempts: DefaultMaxAttempts,
		retry:       backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second},
		timeout:     DefaultAsyncTimeout,
		workers:     DefaultWorkers,
		userListTTL: time.Second,
		sweepEvery:  DefaultSweepInterval,
		grace:       DefaultPendingGrace,
		stop:        make(chan struct{}),
		rec:         newRecovery(),
		now:         time.Now,
		randN:       rand.Int64N,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(p)
		}
	}
	p.renewEvery = p.lease / 3
	if p.queue == nil {
		p.queue = NewQueue(DefaultQueueSize)
	}
	p.failures = newSendFailures(p.log, p.now)
	return p
}

func randomOwner() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "worker-" + hex.EncodeToString(b[:])
}

// Owner returns the lease owner name of this processor. Each run claims
// its request as Owner()+"/"+n, n counting the processor's runs, so that
// a run the processor itself gave up (its lease expired, and a sweep of
// the same processor took the request over) cannot write over the run
// that replaced it.
func (p *Processor) Owner() string { return p.owner }

// runOwner is the lease owner of one run.
func (p *Processor) runOwner() string {
	return p.owner + "/" + strconv.FormatInt(p.runs.Add(1), 10)
}

// outcome of one attempt.
type outcome int

const (
	finished outcome = iota // ran, and reached an end or gave it up to its new owner
	requeued                // back to PENDING, retry after backoff
	skipped                 // not claimed: not ours to run
)

// Process runs the request if it can claim it. A request that is not
// PENDING (or PROCESSING with an expired lease) is left alone, so duplicate
// deliveries run the handler once. Retryable failures are retried here
// with backoff while ctx allows (for Lambda, the invocation's deadline);
// when there is no time left the request stays PENDING for the next
// delivery. The error is non-nil only when the store could not be reached,
// so the caller may deliver the request again.
func (p *Processor) Process(ctx context.Context, requestID string) error {
	_, err := p.process(ctx, requestID)
	return err
}

// process is Process, also reporting whether it ran the request at least
// once (rather than finding it claimed by someone else, or ended).
func (p *Processor) process(ctx context.Context, requestID string) (ran bool, err error) {
	for retry := 0; ; retry++ {
		o, err := p.counted(p.attempt(ctx, requestID))
		ran = ran || o != skipped
		if err != nil || o != requeued {
			return ran, err
		}
		delay := p.retry.Delay(retry, p.randN)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay+finalWriteTimeout {
			p.log.InfoContext(ctx, "no time left to retry; request stays queued", slog.String("request_id", requestID))
			return ran, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ran, nil
		case <-p.stop:
			t.Stop()
			return ran, nil
		}
	}
}

// attempt claims and runs the request once.
func (p *Processor) attempt(ctx context.Context, requestID string) (outcome, error) {
	// The manager's log lines about this request's sends carry its id.
	ctx = connection.WithCorrelationID(ctx, requestID)
	log := p.log.With(slog.String("request_id", requestID), slog.String("worker", p.owner))
	claimedAt := time.Now() // real time, as the lease renewal timers run
	owner := p.runOwner()
	ar, err := p.requests.Claim(ctx, requestID, owner, p.lease)
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		log.DebugContext(ctx, "not claimed", slog.Any("error", err))
		return skipped, nil
	case err != nil:
		return skipped, fmt.Errorf("streamer: claiming %s: %w", requestID, err)
	}
	// Every write of this run is made as this run's owner (see Owner).
	ar.LeaseOwner = owner
	log = log.With(slog.String("action", ar.Action), slog.String("user_id", ar.UserID), slog.Int("attempt", attemptOf(ar)))
	to := newTarget(p, ar)
	a, mw := p.actions.lookup(ar.Action)
	if a == nil || a.async == nil {
		log.ErrorContext(ctx, "no async handler for queued action")
		return p.fail(ctx, log, to, ar, failure{Code: protocol.CodeUnknownAction, Message: "unknown action " + truncate(ar.Action, 64)})
	}

	p.stats.running.Add(1)
	res, herr, stopped := p.run(ctx, log, a, mw, ar, to, claimedAt)
	p.stats.running.Add(-1)
	log.DebugContext(ctx, "handler returned", slog.Bool("ok", herr == nil && stopped == nil), slog.Any("stopped", stopped))
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	switch {
	case errors.Is(stopped, errClaimLost):
		p.stats.lost.Add(1)
		log.InfoContext(ctx, "request cancelled or taken over by another worker; leaving its outcome to its owner")
		return finished, nil
	case errors.Is(stopped, errRequestGone):
		p.stats.lost.Add(1)
		p.lost(wctx, log, to, ar)
		return finished, nil
	case errors.Is(stopped, errLeaseExpired):
		return p.requeue(ctx, wctx, log, to, ar, store.RequestError{Code: string(protocol.CodeInternal), Message: "the worker lost its lease"}, true)
	}
	if herr == nil {
		data, merr := json.Marshal(res)
		if merr != nil {
			log.ErrorContext(ctx, "marshalling result", slog.Any("error", merr))
			return p.fail(wctx, log, to, ar, failure{Code: protocol.CodeInternal, Message: msgInternal})
		}
		done, err := p.requests.Complete(wctx, ar.RequestID, ar.LeaseOwner, data)
		switch {
		case errors.Is(err, store.ErrConflict):
			log.InfoContext(ctx, "request cancelled or taken over before its result was stored")
			return finished, nil
		case errors.Is(err, store.ErrNotFound):
			p.lost(wctx, log, to, ar)
			return finished, nil
		case errors.Is(err, store.ErrTooLarge):
			log.ErrorContext(ctx, "result too large to store", slog.Int("bytes", len(data)))
			return p.fail(wctx, log, to, ar, failure{Code: protocol.CodeInternal, Message: "result too large"})
		case err != nil:
			p.orphan(ar)
			return finished, fmt.Errorf("streamer: completing %s: %w", ar.RequestID, err)
		}
		log.InfoContext(ctx, "request completed")
		p.stats.completed.Add(1)
		to.follow(done)
		deliver(wctx, log, to, protocol.NewComplete(done.RequestID, done.Result))
		return finished, nil
	}

	code, text := classify(herr)
	attrs := []any{slog.String("code", string(code)), slog.Any("error", herr)}
	var pe *panicError
	if errors.As(herr, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.stack)))
	}
	// A handler cut short by the processor's own end (shutdown, Lambda
	// deadline) did not fail: it is retried like a transient error.
	if ctx.Err() != nil {
		return p.requeue(ctx, wctx, log, to, ar, store.RequestError{Code: string(code), Message: text}, p.closing())
	}
	if IsRetryable(herr) {
		log.WarnContext(ctx, "request failed, retryable", attrs...)
		return p.requeue(ctx, wctx, log, to, ar, store.RequestError{Code: string(code), Message: text}, false)
	}
	if code == protocol.CodeInternal {
		log.ErrorContext(ctx, "request failed", attrs...)
	} else {
		log.InfoContext(ctx, "request failed", attrs...)
	}
	return p.fail(wctx, log, to, ar, failure{Code: code, Message: text})
}

// closing reports whether Shutdown has started.
func (p *Processor) closing() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// requeue puts a run that ended without an outcome back in the queue. A run
// the processor itself stopped (shutdown, a lost lease) is not the
// request's failure: free is true, and it does not use up the request's
// attempts (they still count, so the next run's attempt number is higher).
// ctx is the run's context, wctx the detached one for the write. Exactly one
// line is logged for a run cut short by shutdown or by the deadline.
func (p *Processor) requeue(ctx, wctx context.Context, log *slog.Logger, to *target, ar *store.AsyncRequest, reqErr store.RequestError, free bool) (outcome, error) {
	limit := p.maxAttempts
	if free {
		limit = max(limit, ar.Attempts+2)
	}
	cut := ctx.Err() != nil
	upd, err := p.requests.Requeue(wctx, ar.RequestID, ar.LeaseOwner, reqErr, limit)
	switch {
	case errors.Is(err, store.ErrConflict):
		log.InfoContext(ctx, "request cancelled or taken over by another worker before it was put back")
		return finished, nil
	case errors.Is(err, store.ErrNotFound):
		p.lost(wctx, log, to, ar)
		return finished, nil
	case err != nil:
		p.orphan(ar)
		if cut {
			log.WarnContext(ctx, "run cut short and NOT put back in the queue (store write failed); another worker takes it over when its lease ends", slog.Any("error", err))
		}
		return finished, fmt.Errorf("streamer: requeueing %s: %w", ar.RequestID, err)
	case upd.Status == store.StatusPending:
		if cut {
			why := "deadline"
			if p.closing() {
				why = "shutdown"
			}
			log.WarnContext(ctx, "run cut short and put back in the queue", slog.String("reason", why), slog.Int("next_attempt", attemptOf(upd)))
			return finished, nil
		}
		return requeued, nil
	}
	p.stats.failed.Add(1) // retries exhausted
	to.follow(upd)
	deliver(wctx, log, to, stateMessage(upd))
	return finished, nil
}

// failure is the code and client-safe message an async request failed
// with.
type failure struct {
	Code    protocol.ErrorCode
	Message string
}

func (p *Processor) fail(ctx context.Context, log *slog.Logger, to *target, ar *store.AsyncRequest, f failure) (outcome, error) {
	failed, err := p.requests.Fail(ctx, ar.RequestID, ar.LeaseOwner, store.RequestError{Code: string(f.Code), Message: f.Message})
	switch {
	case errors.Is(err, store.ErrConflict):
		return finished, nil
	case errors.Is(err, store.ErrNotFound):
		p.lost(ctx, log, to, ar)
		return finished, nil
	case err != nil:
		p.orphan(ar)
		return finished, fmt.Errorf("streamer: failing %s: %w", ar.RequestID, err)
	}
	p.stats.failed.Add(1)
	to.follow(failed)
	deliver(ctx, log, to, protocol.NewError(ar.RequestID, f.Code, f.Message))
	return finished, nil
}

// deliver sends a request's final message under a budget of its own
// (finalWriteTimeout), not what the store write before it left over: on a
// loaded machine that write can take most of it. Failing to deliver loses
// nothing: the outcome is stored, and a resume returns it. A failure that
// says nothing about the user's connections (a send or a store read timed
// out, the endpoint did not answer) is not left to a resume that a client
// whose socket is fine never sends: the pool delivers the message again
// (see redeliverLater). One that found no live connection leaves the
// outcome waiting for the client's resume.
func deliver(ctx context.Context, log *slog.Logger, to *target, message any) {
	if err := sendFinal(ctx, log, to, message); retriable(err) {
		to.p.redeliverLater(ctx, log, to.current(), message, 0, err)
	}
}

// sendFinal makes one attempt at delivering a final message and logs its
// failure.
func sendFinal(ctx context.Context, log *slog.Logger, to *target, message any) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	err := to.send(dctx, message)
	to.p.failures.report(dctx, err)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoLiveConnection):
		log.InfoContext(ctx, "user not connected; the outcome waits for a resume")
	default:
		log.WarnContext(ctx, "final message not delivered", slog.Any("error", err))
	}
	return err
}

// retriable reports whether a final message that failed to go out may
// reach its client when sent again: anything but no live connection (the
// client resumes when it is back) and a message too large to send ever.
func retriable(err error) bool {
	return err != nil && !errors.Is(err, ErrNoLiveConnection) && !errors.Is(err, connection.ErrMessageTooLarge)
}

// run executes the handler with its reporter and lease renewal, and waits
// for both to finish before returning (Lambda freezes the process once the
// invocation returns). stopped is non-nil when the processor stopped the
// handler: errClaimLost, errRequestGone or errLeaseExpired.
func (p *Processor) run(ctx context.Context, log *slog.Logger, a *action, mw []Middleware, ar *store.AsyncRequest, to *target, claimedAt time.Time) (res any, err error, stopped error) {
	timeout := p.timeout
	if a.timeout > 0 {
		timeout = a.timeout
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hctx, cancelTimeout := context.WithTimeout(cctx, timeout)
	defer cancelTimeout()
	stoppedBy := func() error {
		if c := context.Cause(cctx); errors.Is(c, errClaimLost) || errors.Is(c, errRequestGone) || errors.Is(c, errLeaseExpired) {
			return c
		}
		return nil
	}

	onError := func(err error) {
		switch {
		case errors.Is(err, store.ErrConflict):
			cancel(errClaimLost)
		case errors.Is(err, store.ErrNotFound):
			var de *progress.DeliveryError
			if errors.As(err, &de) && de.Step == progress.StepPersist {
				cancel(errRequestGone)
				return
			}
			log.DebugContext(ctx, "progress delivery failed", slog.Any("error", err))
		default:
			log.DebugContext(ctx, "progress delivery failed", slog.Any("error", err))
		}
	}
	attempt := attemptOf(ar)
	// The lease's known end: past it another worker may run the request,
	// and this run's progress would reach the client after (or between)
	// the new attempt's messages. A process that was frozen (SIGSTOP, a
	// suspended VM) finds it past on waking, before its renewal fails.
	var validUntil atomic.Int64
	validUntil.Store(claimedAt.Add(p.lease).UnixNano())
	send := func(ctx context.Context, u progress.Update) error {
		if stoppedBy() != nil {
			return nil // the client gets its final message, or another run's progress
		}
		if !time.Now().Before(time.Unix(0, validUntil.Load())) {
			cancel(errLeaseExpired)
			return nil
		}
		m := protocol.NewProgress(ar.RequestID, u.Percentage, u.Message, u.Details)
		m.Attempt = attempt
		return to.send(ctx, m)
	}
	persistFailures := 0 // the publisher persists on one goroutine
	persist := func(ctx context.Context, u progress.Update) error {
		err := p.requests.UpdateProgress(ctx, ar.RequestID, ar.LeaseOwner, u.Percentage, u.Message)
		if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) && stoppedBy() == nil {
			persistFailures++
			log.WarnContext(ctx, "persisting progress failed", slog.Int("failed_writes", persistFailures), slog.Any("error", err))
		}
		return err
	}
	opts := append(append([]progress.Option(nil), p.progress...), progress.WithErrorHandler(onError))
	// The publisher outlives ctx: a handler that succeeds just as ctx ends
	// (a Lambda deadline, a shutdown) still gets its last progress (100 %)
	// out before complete. Close below bounds that drain.
	pub := progress.NewPublisher(context.WithoutCancel(ctx), send, persist, opts...)

	renewDone := make(chan struct{})
	stopRenew := make(chan struct{})
	go func() {
		defer close(renewDone)
		p.keepLease(cctx, log, ar.RequestID, ar.LeaseOwner, claimedAt, stopRenew, cancel, &validUntil)
	}()

	req := &Request{
		ID:           ar.ClientRequestID,
		RequestID:    ar.RequestID,
		Action:       ar.Action,
		Payload:      ar.Payload,
		ConnectionID: ar.ConnectionID,
		Identity:     Identity{UserID: ar.UserID, TenantID: ar.TenantID, Permissions: slices.Clone(ar.Permissions)},
		Async:        true,
		Progress:     pub,
	}
	res, err = invoke(hctx, chain(asyncAsHandler{a.async}, mw), req)
	if err != nil && ctx.Err() == nil && hctx.Err() != nil && errors.Is(hctx.Err(), context.DeadlineExceeded) && context.Cause(cctx) == nil {
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	// Drain the reporter first: the last progress (100 %) goes out before
	// complete, and is persisted. A run the processor's own end cut short
	// (shutdown, a Lambda deadline) drains nothing: it ends without an
	// outcome, its next attempt starts over, and what time is left belongs
	// to putting it back in the queue.
	drain, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	if err != nil && ctx.Err() != nil {
		cancelDrain()
	}
	if cerr := pub.Close(drain); cerr != nil && !errors.Is(cerr, store.ErrConflict) {
		log.DebugContext(ctx, "final progress not delivered", slog.Any("error", cerr))
	}
	cancelDrain()
	close(stopRenew)
	<-renewDone
	return res, err, stoppedBy()
}
