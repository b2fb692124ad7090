package lambdart

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// Defaults of the Config fields.
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128
	// DefaultIdleTimeout is how long a process may wait for an
	// invocation before it is stopped, as Lambda reclaims execution
	// environments that go unused.
	DefaultIdleTimeout = time.Minute
	// MaxResponseBytes is Lambda's limit on a synchronous response (6 MB).
	MaxResponseBytes = 6 * 1024 * 1024
)

// DefaultConcurrency is the processes per function at most when
// Config.Concurrency is zero: what a quarter of this machine's memory
// holds at Lambda's default 128 MB a process, from 4 to 64 (16 where the
// memory is unknown). Processes start only as demand needs them (see
// Function.Invoke), so a larger pool costs nothing while it is idle.
var DefaultConcurrency = concurrencyFor(totalMemory())

func concurrencyFor(memBytes uint64) int {
	if memBytes == 0 {
		return 16
	}
	return int(min(64, max(4, memBytes/4/(DefaultMemoryMB<<20))))
}

// Config describes one function.
type Config struct {
	// Name is the function's name (AWS_LAMBDA_FUNCTION_NAME) and the
	// prefix of its log lines. Required.
	Name string
	// Command is the program and arguments each process runs, e.g.
	// {"/path/bootstrap"} or what Command returns. Required.
	Command []string
	// Dir is the process's working directory and LAMBDA_TASK_ROOT.
	Dir string
	// Handler is _HANDLER.
	Handler string
	// Runtime is the function's runtime identifier (AWS_EXECUTION_ENV).
	Runtime string
	// Env are extra KEY=VALUE variables: the function's environment from
	// the template, endpoints, credentials. The Lambda variables
	// (AWS_LAMBDA_RUNTIME_API and the others) are added after them.
	Env []string
	// Timeout is the function's timeout. Zero means 3 s.
	Timeout time.Duration
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE. Zero means 128; the
	// memory is not limited.
	MemoryMB int
	// Concurrency is how many processes may run invocations at once. Zero
	// means DefaultConcurrency.
	Concurrency int
	// IdleTimeout stops a process that has waited this long for an
	// invocation, as Lambda reclaims idle environments; the next
	// invocation that finds no process starts one (a cold start). Zero
	// means DefaultIdleTimeout; negative keeps idle processes.
	IdleTimeout time.Duration
	// Region is AWS_REGION. Empty means us-east-1.
	Region string
	// Output receives the processes' stdout and stderr, one prefixed line
	// at a time. Nil discards them.
	Output io.Writer
	// Watch lists files or folders whose changes make the next invocation
	// run in a fresh process. Empty watches nothing.
	Watch []string
	// WatchInterval is how often Watch is polled. Zero means 500 ms.
	WatchInterval time.Duration
	// Build, when set, runs before the first process starts and again
	// after a watched change (a go build of a CodeUri package). A build
	// error fails the invocations that wait for it.
	Build func(ctx context.Context) error
	// Logger receives the pool's own logs. Nil discards them.
	Logger *slog.Logger
	// ProactiveInit starts a second process with the function's first
	// one (a cold start with no other process running), so that a burst
	// of invocations finds two warm ones instead of paying a cold start
	// while it runs. Lambda does the same for on-demand functions ("Lambda
	// occasionally pre-initializes execution environments to reduce the
	// number of cold start invocations"); the spare is reclaimed like any
	// idle process. It applies on machines with more than one CPU, with a
	// Concurrency above one, and not after a failed init of the same code.
	ProactiveInit bool
}

// Function is a running pool of one function's processes. Create it with
// New; it is safe for concurrent use.
type Function struct {
	cfg Config
	log *slog.Logger
	out *lineOutput

	// work hands an invocation to a process waiting in /next.
	work chan *invocation
	// recheck holds one token: the waiting invocation that has it decides
	// again on a timer whether the pool needs a process (the decision is
	// the pool's, not the invocation's), the others only when the pool
	// changes. A thousand waiters with a timer each would wake tens of
	// thousands of times a second for the same answer.
	recheck chan struct{}

	mu      sync.Mutex
	procs   map[*process]bool
	gen     int           // bumped on every watched change
	stale   chan struct{} // closed (and replaced) when gen changes
	changed chan struct{} // closed (and replaced) when a process exits or the code changes
	waiting int           // invocations waiting for a process
	built   int           // the gen the last successful build was for; -1 never
	// avgRun and avgCold are moving averages of a warm invocation's run
	// time and of a process's start until its first answer; runs counts
	// the warm invocations measured. They size the pool
	// (needProcessLocked).
	avgRun, avgCold time.Duration
	runs            int
	// debt is the time invocations spent waiting for a process since
	// the last start (or since waiting paused for a while), debtAt its
	// last update: a debt larger than a cold start says one more process
	// would have paid for itself, even when each burst of waiting
	// invocations is small (connects in batches).
	debt   time.Duration
	debtAt time.Time
	// initFailed is the last gen a process failed its init in (-1 for
	// none): no proactive init for it.
	initFailed int
	closed     bool
	buildMu    sync.Mutex
	wg         sync.WaitGroup // processes and the watcher
	stop       chan struct{}
	stopOnce   sync.Once
}

// New checks cfg and returns the function with no process running yet:
// the first invocation starts one (a cold start).
func New(cfg Config) (*Function, error) {
	if cfg.Name == "" || len(cfg.Command) == 0 {
		return nil, fmt.Errorf("%w: Name and Command are required", ErrInvalidConfig)
	}
	if cfg.Timeout < 0 || cfg.Concurrency < 0 || cfg.MemoryMB < 0 || cfg.WatchInterval < 0 {
		return nil, fmt.Errorf("%w: negative timeout, concurrency, memory or interval", ErrInvalidConfig)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = DefaultMemoryMB
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.WatchInterval == 0 {
		cfg.WatchInterval = 500 * time.Millisecond
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	f := &Function{
		cfg:        cfg,
		log:        logger.With("function", cfg.Name),
		out:        &lineOutput{w: out},
		work:       make(chan *invocation),
		recheck:    make(chan struct{}, 1),
		procs:      map[*process]bool{},
		stale:      make(chan struct{}),
		changed:    make(chan struct{}),
		built:      -1,
		initFailed: -1,
		stop:       make(chan struct{}),
	}
	f.recheck <- struct{}{}
	if len(cfg.Watch) > 0 {
		w := newWatcher(cfg.Watch)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.watch(w)
		}()
	}
	return f, nil
}

// Name is the function's name.
func (f *Function) Name() string { return f.cfg.Name }

// invocation is one event on its way through a process.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	taken    chan *process // the process that took it, sent once
	done     chan result   // buffered: the answer, sent once
}

type result struct {
	body []byte
	err  error
}

// Invoke runs one invocation of the function with payload (the event's
// JSON) and returns the function's response. It waits for a free process,
// starting one while fewer than Concurrency run. A function error is a
// *FunctionError; a timeout ErrTimeout; a crash ErrExited; ctx ending
// first returns ctx.Err() and stops the process running it.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	inv := &invocation{id: newRequestID(), payload: payload, taken: make(chan *process, 1), done: make(chan result, 1)}
	p, err := f.dispatch(ctx, inv)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	select {
	case r := <-inv.done:
		return r.body, r.err
	case <-timer.C:
		f.log.Info("lambdart: invocation timed out; stopping its process", "requestId", inv.id, "timeout", f.cfg.Timeout)
		p.kill()
		return nil, fmt.Errorf("%w after %.2f seconds", ErrTimeout, f.cfg.Timeout.Seconds())
	case <-p.exitedCh:
		// The answer may have arrived just before the process exited.
		select {
		case r := <-inv.done:
			return r.body, r.err
		default:
		}
		return nil, fmt.Errorf("%w: %v", ErrExited, p.exitErr())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// dispatch hands inv to a process and returns it.
func (f *Function) dispatch(ctx context.Context, inv *invocation) (*process, error) {
	// A warm process waiting in /next takes it at once.
	select {
	case f.work <- inv:
		return <-inv.taken, nil
	default:
	}
	queued := time.Now()
	f.mu.Lock()
	f.waiting++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiting--
		f.addDebtLocked(time.Since(queued))
		f.mu.Unlock()
	}()
	var started *process
	// rechecker: this invocation holds the recheck token (see
	// Function.recheck), given back when it stops waiting.
	rechecker := false
	defer func() {
		if rechecker {
			f.recheck <- struct{}{}
		}
	}()
	for {
		if started != nil {
			select {
			case <-started.exitedCh:
				// The process started for this invocation died before
				// taking any: a failed cold start fails the invocation,
				// as on Lambda. One that served others first just exited.
				if err := started.initFailure(); err != nil {
					return nil, err
				}
				started = nil
			default:
			}
		}
		p, changed, recheck, err := f.maybeStart(ctx)
		if err != nil {
			return nil, err
		}
		var again <-chan time.Time
		var timer *time.Timer
		var token chan struct{}
		switch {
		case recheck > 0 && rechecker:
			// Unstopped on the return paths: since Go 1.23 an
			// unreferenced timer is collected.
			timer = time.NewTimer(recheck)
			again = timer.C
		case rechecker:
			// It started a process: the token goes back for any waiter
			// to take, this one included.
			f.recheck <- struct{}{}
			rechecker = false
			token = f.recheck
		default:
			token = f.recheck
		}
		if p != nil {
			started = p
		}
		var startedExit <-chan struct{}
		if started != nil {
			startedExit = started.exitedCh
		}
		select {
		case f.work <- inv:
			return <-inv.taken, nil
		case <-startedExit:
		case <-changed:
			// A process exited or the code changed: there may
			// be room to start one.
		case <-again:
			// The running invocations may be slower than they looked.
		case <-token:
			rechecker = true
		case <-f.stop:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// maybeStart starts a process when more invocations wait than there are
// processes free to take them (idle or still starting) and fewer than
// Concurrency run. It returns the new process (nil when none was started),
// a channel closed at the next change of the pool, and, when it held back
// with invocations waiting, how soon to ask again.
func (f *Function) maybeStart(ctx context.Context) (*process, <-chan struct{}, time.Duration, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, nil, 0, ErrClosed
	}
	changed := f.changed
	if start, recheck := f.needProcessLocked(); !start {
		f.mu.Unlock()
		return nil, changed, recheck, nil
	}
	gen := f.gen
	needBuild := f.built != gen
	f.mu.Unlock()
	if needBuild {
		if err := f.build(ctx, gen); err != nil {
			return nil, nil, 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, 0, ErrClosed
	}
	if start, recheck := f.needProcessLocked(); !start {
		return nil, f.changed, recheck, nil
	}
	p, err := f.startProcess(f.gen)
	if err != nil {
		return nil, nil, 0, err
	}
	f.proactiveInitLocked(f.gen)
	return p, f.changed, 0, nil
}

// needProcessLocked decides whether waiting invocations need one more
// process. Lambda starts an environment for every concurrent request; on
// one machine a cold start takes CPU from the processes already running,
// so a process is added only when the backlog would take the warm ones
// longer to clear than a cold start takes (start to first answer), or
// when the invocations' waits for a process add up to more than two cold
// starts (connects arriving in batches), and at most one cold start per
// CPU runs at a time. Invocations shorter than a cold start get at most
// shortPool processes (a thousand $disconnects at once drain fastest
// that way), while a backlog of slow ones (waiting on I/O) grows the pool
// up to Concurrency. A process whose current invocation has already run
// longer than a cold start does not count as one that will soon be free.
// When it holds back, recheck says when to decide again (the running
// invocations may turn out slow, a cold start may end, a process may
// take another's invocation).
func (f *Function) needProcessLocked() (start bool, recheck time.Duration) {
	wait := min(max(f.avgCold/4, 10*time.Millisecond), time.Second)
	if len(f.procs) >= f.cfg.Concurrency {
		return false, wait
	}
	free, soon, starting := 0, 0, 0
	now := time.Now()
	for p := range f.procs {
		if p.gen != f.gen {
			continue
		}
		busy, ready, takenAt := p.state()
		switch {
		case !ready:
			starting++
			free++
		case !busy:
			free++
			soon++
		case now.Sub(takenAt) < f.avgCold:
			soon++
		}
	}
	backlog := f.waiting - free
	if backlog <= 0 {
		return false, wait
	}
	if starting >= maxColdStarts {
		return false, wait
	}
	if soon == 0 || (f.runs == 0 && f.avgCold == 0) {
		// Nothing will take the backlog soon, or nothing is measured yet.
		return true, 0
	}
	clear := time.Duration(backlog) * f.avgRun / time.Duration(soon)
	if f.avgRun < f.avgCold && len(f.procs) >= shortPool {
		// Invocations shorter than a cold start keep the CPUs busy: one
		// more process would take CPU from the others for its start and
		// for compiling its code again, more than it brings.
		return false, wait
	}
	if clear > f.avgCold || f.debt > 2*f.avgCold {
		f.debt = 0
		return true, 0
	}
	return false, wait
}

// proactiveInitLocked pre-initializes a second process of gen next to
// the one just started when it is the function's only process (see
// Config.ProactiveInit). Both start at once, on two CPUs, so the spare
// is warm before a burst comes instead of starting in its midst. After a
// failed init of gen, no spare starts until the code changes: a function
// whose init fails does not fail twice per invocation.
func (f *Function) proactiveInitLocked(gen int) {
	if !f.cfg.ProactiveInit || runtime.NumCPU() < 2 || f.cfg.Concurrency < 2 || f.initFailed == gen {
		return
	}
	n := 0
	for p := range f.procs {
		if p.gen == gen {
			n++
		}
	}
	if n != 1 {
		return
	}
	if _, err := f.startProcess(gen); err != nil {
		f.log.Info("lambdart: proactive init", "err", err)
	}
}

// addDebtLocked adds an invocation's wait for a process to the debt,
// forgotten when waiting paused for several cold starts.
func (f *Function) addDebtLocked(wait time.Duration) {
	now := time.Now()
	if now.Sub(f.debtAt) > 4*f.avgCold {
		f.debt = 0
	}
	f.debt += wait
	f.debtAt = now
}

// maxColdStarts bounds the processes of one function starting at once:
// more than one per CPU only slows each.
var maxColdStarts = max(1, runtime.NumCPU())

// shortPool is how many processes invocations shorter than a cold start
// get: one per CPU, at least 2. Measured on the chat app, a Node.js
// process costs ~0.15 s of CPU to start and load the SDK and as much
// again to compile the SDK's hot paths over its first few hundred
// invocations, more than the invocations it would take from the others.
var shortPool = max(2, runtime.NumCPU())

// observeRun and observeCold update the moving averages (weight 1/4):
// a warm invocation's run time, and a process's start to its first
// answer.
func (f *Function) observeRun(d time.Duration) {
	f.mu.Lock()
	f.avgRun = movingAverage(f.avgRun, d, f.runs == 0)
	f.runs++
	f.mu.Unlock()
}

// observeCold also seeds avgRun with the first invocation's run time
// while no warm one is measured: an overestimate (it includes the
// handler's lazy set-up), better than none.
func (f *Function) observeCold(d, ran time.Duration) {
	f.mu.Lock()
	f.avgCold = movingAverage(f.avgCold, d, f.avgCold == 0)
	if f.runs == 0 {
		f.avgRun = ran
	}
	f.mu.Unlock()
}

func movingAverage(avg, sample time.Duration, first bool) time.Duration {
	if first {
		return sample
	}
	return avg + (sample-avg)/4
}

// poolChanged wakes the invocations waiting for a process.
func (f *Function) poolChangedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Function) build(ctx context.Context, gen int) error {
	f.buildMu.Lock()
	defer f.buildMu.Unlock()
	f.mu.Lock()
	done := f.built >= gen
	f.mu.Unlock()
	if done {
		return nil
	}
	if f.cfg.Build != nil {
		if err := f.cfg.Build(ctx); err != nil {
			return fmt.Errorf("%w: build: %w", ErrInit, err)
		}
	}
	f.mu.Lock()
	f.built = gen
	f.mu.Unlock()
	return nil
}

// processExited forgets p and wakes the invocations waiting for room.
func (f *Function) processExited(p *process) {
	p.mu.Lock()
	ready, killed := p.ready, p.killed
	p.mu.Unlock()
	f.mu.Lock()
	if !ready && !killed {
		f.initFailed = p.gen
	}
	delete(f.procs, p)
	f.poolChangedLocked()
	f.mu.Unlock()
}

// Processes reports how many processes are running.
func (f *Function) Processes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.procs)
}

// PIDs returns the process IDs of the running processes.
func (f *Function) PIDs() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, 0, len(f.procs))
	for p := range f.procs {
		out = append(out, p.pid())
	}
	return out
}

// Close stops every process and the watcher and waits for them. Invocations
// still waiting fail with ErrClosed. Calling it again is a no-op.
func (f *Function) Close() error {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		procs := make([]*process, 0, len(f.procs))
		for p := range f.procs {
			procs = append(procs, p)
		}
		f.mu.Unlock()
		close(f.stop)
		for _, p := range procs {
			p.kill()
		}
	})
	f.wg.Wait()
	return nil
}

// restart makes the next invocation run in a fresh process: idle
// processes stop now, busy ones after their invocation.
func (f *Function) restart() {
	f.mu.Lock()
	f.gen++
	close(f.stale)
	f.stale = make(chan struct{})
	f.poolChangedLocked()
	f.mu.Unlock()
}

func (f *Function) currentGen() (int, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, f.stale
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var errKilled = errors.New("stopped by the runtime")
