package lambdart

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Runtime API paths, version 2018-06-01.
const (
	pathNext      = "/2018-06-01/runtime/invocation/next"
	pathInvPrefix = "/2018-06-01/runtime/invocation/"
	pathInitError = "/2018-06-01/runtime/init/error"
)

// headerThenNext, on an invocation's response or error, asks the Runtime
// API to answer with the next invocation (as GET next would) instead of
// 202 once the answer is taken. Streamer's own shims send it: one request
// and one response per invocation instead of two of each, so the
// function process wakes once per invocation. Lambda's Runtime API has no
// such header; runtimes that do not send it see the API unchanged.
const headerThenNext = "Streamer-Then-Next"

// process is one running instance of the function with its own Runtime
// API listener.
type process struct {
	f   *Function
	gen int
	cmd *exec.Cmd
	ln  net.Listener
	srv *http.Server

	exitedCh chan struct{} // closed once the process has exited and is cleaned up
	started  time.Time

	mu       sync.Mutex
	current  *invocation // the invocation handed out and not yet answered
	served   int         // invocations handed out
	busy     bool        // running an invocation
	ready    bool        // has asked for an invocation (its init is done)
	takenAt  time.Time   // when current was handed out
	initErr  *FunctionError
	waitErr  error
	killed   bool
	killOnce sync.Once
}

// startProcess starts a process; f.mu is held.
func (f *Function) startProcess(gen int) (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdart: runtime API listener: %w", err)
	}
	p := &process{f: f, gen: gen, ln: ln, exitedCh: make(chan struct{}), started: time.Now()}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	cmd := exec.Command(f.cfg.Command[0], f.cfg.Command[1:]...)
	cmd.Dir = f.cfg.Dir
	cmd.Env = p.environ()
	cmd.Stdout = f.out.prefixed(f.cfg.Name)
	cmd.Stderr = f.out.prefixed(f.cfg.Name)
	// A grandchild holding the output pipes must not hold Wait forever.
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: start %s: %w", ErrInit, f.cfg.Command[0], err)
	}
	f.procs[p] = true
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	go func() {
		defer f.wg.Done()
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		killed := p.killed
		p.mu.Unlock()
		// The Runtime API of a dead process has nothing more to say;
		// Close also ends a /next still blocked.
		_ = p.srv.Close()
		if !killed {
			f.log.Info("lambdart: process exited", "pid", cmd.Process.Pid, "err", err)
		}
		// exitedCh first: an invocation waiting on the process it started
		// sees the exit before the pool's change, so it fails with the
		// init error instead of starting another process for itself.
		close(p.exitedCh)
		f.processExited(p)
	}()
	f.log.Debug("lambdart: process started", "pid", cmd.Process.Pid, "runtimeApi", ln.Addr().String())
	return p, nil
}

func (p *process) environ() []string {
	c := p.f.cfg
	env := append([]string(nil), c.Env...)
	return append(env,
		"AWS_LAMBDA_RUNTIME_API="+p.ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME="+c.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+c.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME=local/[$LATEST]"+strings.ReplaceAll(newRequestID(), "-", ""),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_EXECUTION_ENV=AWS_Lambda_"+c.Runtime,
		"AWS_REGION="+c.Region,
		"AWS_DEFAULT_REGION="+c.Region,
		"LAMBDA_TASK_ROOT="+c.Dir,
		"_HANDLER="+c.Handler,
		"TZ=:UTC",
	)
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) isBusy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy
}

// state reports whether p runs an invocation, whether its init is done,
// and when it took its current invocation.
func (p *process) state() (busy, ready bool, takenAt time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, p.ready, p.takenAt
}

// kill stops the process (and its process group) once.
func (p *process) kill() {
	p.killOnce.Do(func() {
		p.mu.Lock()
		p.killed = true
		p.mu.Unlock()
		killProcess(p.cmd)
	})
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr == nil {
		return errors.New("exit status 0")
	}
	return p.waitErr
}

// initFailure is the error of a process that exited before taking an
// invocation, nil if it had served some.
func (p *process) initFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.served > 0 {
		return nil
	}
	if p.initErr != nil {
		return p.initErr
	}
	return fmt.Errorf("%w: the runtime exited before asking for an invocation: %v", ErrInit, p.waitErr)
}

// ServeHTTP is the process's Runtime API.
func (p *process) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == pathNext && r.Method == http.MethodGet:
		p.next(w, r)
	case r.URL.Path == pathInitError && r.Method == http.MethodPost:
		p.initError(w, r)
	case strings.HasPrefix(r.URL.Path, pathInvPrefix) && r.Method == http.MethodPost:
		rest := strings.TrimPrefix(r.URL.Path, pathInvPrefix)
		id, kind, _ := strings.Cut(rest, "/")
		switch kind {
		case "response":
			p.answer(w, r, id, false)
		case "error":
			p.answer(w, r, id, true)
		default:
			p.misuse(w, http.StatusNotFound, "InvalidRequest", "unknown Runtime API path "+r.URL.Path)
		}
	default:
		p.misuse(w, http.StatusNotFound, "InvalidRequest", "unknown Runtime API call "+r.Method+" "+r.URL.Path)
	}
}

// next hands the process its next invocation, waiting until there is
// one. A process of an older generation (the code changed) is stopped
// instead: it is idle, so nothing is lost.
func (p *process) next(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.current != nil {
		// Asking for the next event before answering this one: Lambda
		// treats the invocation as failed.
		inv := p.current
		p.current = nil
		p.mu.Unlock()
		inv.done <- result{err: fmt.Errorf("%w: asked for the next invocation without answering %s", ErrProtocol, inv.id)}
		p.mu.Lock()
	}
	p.mu.Unlock()
	gen, stale := p.f.currentGen()
	if gen != p.gen {
		p.kill()
		return
	}
	p.mu.Lock()
	p.ready = true
	p.mu.Unlock()
	var idle <-chan time.Time
	if p.f.cfg.IdleTimeout > 0 {
		t := time.NewTimer(p.f.cfg.IdleTimeout)
		defer t.Stop()
		idle = t.C
	}
	select {
	case inv := <-p.f.work:
		now := time.Now()
		inv.deadline = now.Add(p.f.cfg.Timeout)
		p.mu.Lock()
		p.current = inv
		p.served++
		p.busy = true
		p.takenAt = now
		p.mu.Unlock()
		// The waiting invocations are not woken here: with a thousand
		// waiting, a wake-up per hand-off costs more than the
		// invocations; they decide again on their recheck timer.
		inv.taken <- p
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:"+p.f.cfg.Region+":123456789012:function:"+p.f.cfg.Name)
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+strings.ReplaceAll(inv.id, "-", "")[:24]+";Sampled=0")
		h.Set("Content-Type", "application/json")
		// A length, not chunks: the runtimes' clients read one body.
		h.Set("Content-Length", strconv.Itoa(len(inv.payload)))
		_, _ = w.Write(inv.payload)
	case <-stale:
		p.kill()
	case <-idle:
		// Unused for IdleTimeout: reclaimed, as Lambda reclaims an idle
		// environment. An invocation not yet taken is not lost: the send
		// in dispatch did not happen, so it starts or waits for another.
		p.f.log.Debug("lambdart: idle process stopped", "pid", p.pid(), "idle", p.f.cfg.IdleTimeout)
		p.kill()
	case <-p.f.stop:
	case <-r.Context().Done():
	}
}

// answer takes the function's response or error for request id.
func (p *process) answer(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseBytes+1))
	if err != nil {
		return
	}
	p.mu.Lock()
	inv := p.current
	if inv == nil || inv.id != id {
		p.mu.Unlock()
		p.misuse(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+strconv.Quote(id)+" is running in this process")
		return
	}
	p.current = nil
	p.busy = false
	ran := time.Since(p.takenAt)
	first := p.served == 1
	p.mu.Unlock()
	if first {
		p.f.observeCold(time.Since(p.started), ran)
	} else {
		p.f.observeRun(ran)
	}
	var res result
	switch {
	case len(body) > MaxResponseBytes:
		res.err = fmt.Errorf("%w: response payload over %d bytes", ErrProtocol, MaxResponseBytes)
		writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response too large")
		inv.done <- res
		p.kill()
		return
	case isError:
		fe := &FunctionError{}
		if len(body) > 0 && json.Unmarshal(body, fe) != nil {
			res.err = fmt.Errorf("%w: the error document is not JSON", ErrProtocol)
			writeStatus(w, http.StatusBadRequest, "InvalidErrorDocument", "the error document is not JSON")
			inv.done <- res
			p.kill()
			return
		}
		if fe.Type == "" {
			fe.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		}
		if fe.Type == "" {
			fe.Type = "Unhandled"
		}
		res.err = fe
	default:
		res.body = body
	}
	inv.done <- res
	if r.Header.Get(headerThenNext) != "" {
		p.next(w, r)
		return
	}
	writeStatus(w, http.StatusAccepted, "", "OK")
}

// initError records the process's init failure; Lambda then stops it.
func (p *process) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	fe := &FunctionError{Init: true}
	if json.Unmarshal(body, fe) != nil || fe.Type == "" {
		fe.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if fe.Type == "" {
			fe.Type = "Runtime.Unknown"
		}
		if fe.Message == "" {
			fe.Message = string(body)
		}
	}
	p.mu.Lock()
	p.initErr = fe
	p.mu.Unlock()
	p.f.log.Info("lambdart: init error", "type", fe.Type, "message", fe.Message)
	writeStatus(w, http.StatusAccepted, "", "OK")
	p.kill()
}

// misuse answers a call the Runtime API does not allow. The process is
// broken: its invocation fails and it is stopped, so the next invocation
// runs in a fresh one.
func (p *process) misuse(w http.ResponseWriter, status int, errType, msg string) {
	writeStatus(w, status, errType, msg)
	p.mu.Lock()
	inv := p.current
	p.current = nil
	p.mu.Unlock()
	p.f.log.Info("lambdart: runtime API misuse; stopping the process", "pid", p.pid(), "err", msg)
	if inv != nil {
		inv.done <- result{err: fmt.Errorf("%w: %s", ErrProtocol, msg)}
	}
	p.kill()
}

func writeStatus(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if errType == "" {
		_, _ = fmt.Fprintf(w, `{"status":%q}`, msg)
		return
	}
	b, _ := json.Marshal(map[string]string{"errorType": errType, "errorMessage": msg})
	_, _ = w.Write(b)
}
