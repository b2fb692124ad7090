package lambdart

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the Config fields.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultMemoryMB    = 128
	DefaultConcurrency = 4
	// MaxResponseBytes is Lambda's limit on a synchronous response (6 MB).
	MaxResponseBytes = 6 * 1024 * 1024
)

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
	// means 4.
	Concurrency int
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
}

// Function is a running pool of one function's processes. Create it with
// New; it is safe for concurrent use.
type Function struct {
	cfg Config
	log *slog.Logger
	out *lineOutput

	// work hands an invocation to a process waiting in /next.
	work chan *invocation

	mu       sync.Mutex
	procs    map[*process]bool
	gen      int           // bumped on every watched change
	stale    chan struct{} // closed (and replaced) when gen changes
	changed  chan struct{} // closed (and replaced) when a process exits or gets busy
	waiting  int           // invocations waiting for a process
	built    int           // the gen the last successful build was for; -1 never
	closed   bool
	buildMu  sync.Mutex
	wg       sync.WaitGroup // processes and the watcher
	stop     chan struct{}
	stopOnce sync.Once
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
		cfg:     cfg,
		log:     logger.With("function", cfg.Name),
		out:     &lineOutput{w: out},
		work:    make(chan *invocation),
		procs:   map[*process]bool{},
		stale:   make(chan struct{}),
		changed: make(chan struct{}),
		built:   -1,
		stop:    make(chan struct{}),
	}
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
	f.mu.Lock()
	f.waiting++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
	}()
	var started *process
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
		p, changed, err := f.maybeStart(ctx)
		if err != nil {
			return nil, err
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
			// A process exited, got busy or the code changed: there may
			// be room to start one.
		case <-f.stop:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// maybeStart starts a process when more invocations wait than there are
// processes free to take them (idle or still starting) and fewer than
// Concurrency run. It returns the new process (nil when none was started)
// and a channel closed at the next change of the pool.
func (f *Function) maybeStart(ctx context.Context) (*process, <-chan struct{}, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, nil, ErrClosed
	}
	changed := f.changed
	if !f.needProcessLocked() {
		f.mu.Unlock()
		return nil, changed, nil
	}
	gen := f.gen
	needBuild := f.built != gen
	f.mu.Unlock()
	if needBuild {
		if err := f.build(ctx, gen); err != nil {
			return nil, nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, ErrClosed
	}
	if !f.needProcessLocked() {
		return nil, f.changed, nil
	}
	p, err := f.startProcess(f.gen)
	if err != nil {
		return nil, nil, err
	}
	return p, f.changed, nil
}

func (f *Function) needProcessLocked() bool {
	if len(f.procs) >= f.cfg.Concurrency {
		return false
	}
	free := 0
	for p := range f.procs {
		if !p.isBusy() && p.gen == f.gen {
			free++
		}
	}
	return f.waiting > free
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
	f.mu.Lock()
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
