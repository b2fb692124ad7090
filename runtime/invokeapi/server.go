package invokeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// Function is a local function: lambdart.Function has this method.
type Function interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Payload limits, as Lambda's quotas.
const (
	// MaxSyncPayload is the largest RequestResponse request and response
	// (6 MB).
	MaxSyncPayload = 6 * 1024 * 1024
	// MaxAsyncPayload is the largest Event request (1 MB).
	MaxAsyncPayload = 1024 * 1024
)

// DefaultRetryDelays are the waits before the two retries of a failed
// Event invocation, as Lambda's asynchronous invocation makes them.
var DefaultRetryDelays = []time.Duration{time.Minute, 2 * time.Minute}

// DefaultMaxQueued is Config.MaxQueued's default.
const DefaultMaxQueued = 10000

// ErrClosed: the server is shut down.
var ErrClosed = errors.New("invokeapi: closed")

// Config configures a Server.
type Config struct {
	// Functions are the functions served, by name.
	Functions map[string]Function
	// Region and AccountID are those of the functions' ARNs. Empty means
	// "us-east-1" and "123456789012".
	Region    string
	AccountID string
	// RetryDelays are the waits before the retries of a failed Event
	// invocation, one per retry. Nil means DefaultRetryDelays; an empty
	// non-nil slice retries nothing.
	RetryDelays []time.Duration
	// MaxQueued bounds the Event invocations queued or running; past it
	// Invoke answers 429 TooManyRequestsException. Zero means
	// DefaultMaxQueued.
	MaxQueued int
	// Logger receives the failed Event invocations. Nil discards.
	Logger *slog.Logger
}

// Server is the Invoke API. It is an http.Handler; Shutdown stops it.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	queued   int
	closed   bool
	stopping chan struct{} // closed at Shutdown: no more retry waits
	runCtx   context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "123456789012"
	}
	if cfg.RetryDelays == nil {
		cfg.RetryDelays = DefaultRetryDelays
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, log: logger, stopping: make(chan struct{}), runCtx: ctx, cancel: cancel}
}

// ServeHTTP serves the Lambda API's Invoke operation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/")
	name, ok2 := strings.CutSuffix(rest, "/invocations")
	if !ok || !ok2 || r.Method != http.MethodPost {
		op := strings.Trim(r.URL.Path, "/")
		writeError(w, http.StatusNotImplemented, "NotEmulated", "not emulated: lambda "+r.Method+" /"+op+" (the local runtime serves Invoke only)")
		return
	}
	name, err := url.PathUnescape(name)
	if err != nil || name == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "FunctionName is not valid")
		return
	}
	fn, arn, err := s.lookup(name, r.URL.Query().Get("Qualifier"))
	if err != nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", err.Error())
		return
	}
	typ := r.Header.Get("X-Amz-Invocation-Type")
	if typ == "" {
		typ = "RequestResponse"
	}
	limit := int64(MaxSyncPayload)
	if typ == "Event" {
		limit = MaxAsyncPayload
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body")
		return
	}
	if int64(len(payload)) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", fmt.Sprintf("Request must be smaller than %d bytes for the %s invocation type", limit, typ))
		return
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	} else if !json.Valid(payload) {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: the payload is not valid JSON")
		return
	}
	switch typ {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
	case "Event":
		if err := s.enqueue(name, arn, fn, payload); err != nil {
			if errors.Is(err, ErrClosed) {
				writeError(w, http.StatusServiceUnavailable, "ServiceException", "the local runtime is shutting down")
				return
			}
			writeError(w, http.StatusTooManyRequests, "TooManyRequestsException", err.Error())
			return
		}
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.WriteHeader(http.StatusAccepted)
	case "RequestResponse":
		s.invokeSync(w, r.Context(), fn, payload)
	default:
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun, not "+typ)
	}
}

// invokeSync runs one RequestResponse invocation.
func (s *Server) invokeSync(w http.ResponseWriter, ctx context.Context, fn Function, payload []byte) {
	out, err := fn.Invoke(ctx, payload)
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		if ctx.Err() != nil {
			return // the caller is gone
		}
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(errorDocument(err))
		return
	}
	if len(out) > MaxSyncPayload {
		writeError(w, http.StatusBadGateway, "ResponseSizeTooLarge", fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxSyncPayload))
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// errorDocument is the body Lambda answers for a failed invocation: the
// function's own error document, or one naming the runtime's failure.
func errorDocument(err error) []byte {
	var fe *lambdart.FunctionError
	var doc any
	switch {
	case errors.As(err, &fe):
		doc = fe
	case errors.Is(err, lambdart.ErrTimeout):
		doc = map[string]string{"errorMessage": "Task timed out" + strings.TrimPrefix(err.Error(), lambdart.ErrTimeout.Error())}
	case errors.Is(err, lambdart.ErrExited):
		doc = map[string]string{"errorType": "Runtime.ExitError", "errorMessage": "Error: Runtime exited" + strings.TrimPrefix(err.Error(), lambdart.ErrExited.Error())}
	default:
		doc = map[string]string{"errorType": "Runtime.Unknown", "errorMessage": err.Error()}
	}
	b, _ := json.Marshal(doc)
	return b
}

// lookup finds the function a FunctionName (name, ARN or partial ARN) and
// Qualifier name, and returns it with its ARN.
func (s *Server) lookup(ref, qualifier string) (Function, string, error) {
	name := ref
	region, account := s.cfg.Region, s.cfg.AccountID
	parts := strings.Split(ref, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		// arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]
		region, account, name = parts[3], parts[4], parts[6]
		if len(parts) == 8 {
			qualifier = parts[7]
		}
	case len(parts) >= 3 && parts[1] == "function":
		// {account}:function:{name}[:{qualifier}]
		account, name = parts[0], parts[2]
		if len(parts) == 4 {
			qualifier = parts[3]
		}
	case len(parts) == 2:
		// {name}:{qualifier}
		name, qualifier = parts[0], parts[1]
	}
	arn := "arn:aws:lambda:" + region + ":" + account + ":function:" + name
	if qualifier != "" {
		arn += ":" + qualifier
	}
	fn := s.cfg.Functions[name]
	if fn == nil || region != s.cfg.Region || account != s.cfg.AccountID || (qualifier != "" && qualifier != "$LATEST") {
		return nil, arn, fmt.Errorf("Function not found: %s", arn)
	}
	return fn, arn, nil
}

// enqueue starts an Event invocation with its retries.
func (s *Server) enqueue(name, arn string, fn Function, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.queued >= s.cfg.MaxQueued {
		return fmt.Errorf("Rate Exceeded: %d asynchronous invocations are queued", s.queued)
	}
	s.queued++
	s.wg.Add(1)
	go s.runEvent(name, arn, fn, payload)
	return nil
}

// runEvent runs an Event invocation, retrying a failure after each of
// RetryDelays, as Lambda's event queue does.
func (s *Server) runEvent(name, arn string, fn Function, payload []byte) {
	defer func() {
		s.mu.Lock()
		s.queued--
		s.mu.Unlock()
		s.wg.Done()
	}()
	for attempt := 0; ; attempt++ {
		_, err := fn.Invoke(s.runCtx, payload)
		if err == nil {
			return
		}
		if s.runCtx.Err() != nil {
			s.log.Warn("invokeapi: asynchronous invocation cancelled at shutdown", "function", name)
			return
		}
		if attempt == len(s.cfg.RetryDelays) {
			s.log.Warn("invokeapi: asynchronous invocation failed; dropped after its retries", "function", name, "attempts", attempt+1, "err", err)
			return
		}
		s.log.Info("invokeapi: asynchronous invocation failed; retrying", "function", name, "attempt", attempt+1, "in", s.cfg.RetryDelays[attempt], "err", err)
		t := time.NewTimer(s.cfg.RetryDelays[attempt])
		select {
		case <-t.C:
		case <-s.stopping:
			t.Stop()
			s.log.Warn("invokeapi: asynchronous invocation dropped at shutdown before its retry", "function", name, "arn", arn)
			return
		}
	}
}

// Shutdown refuses new invocations, drops Event invocations waiting for a
// retry, and waits for running ones until ctx ends, when they are
// cancelled; it then returns ctx's error. A second call waits the same.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stopping)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return ctx.Err()
	}
}

// writeError answers in Lambda's error shape: the type in
// X-Amzn-ErrorType, {"Type","Message"} in the body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	kind := "User"
	if status >= 500 {
		kind = "Service"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": kind, "Message": msg, "message": msg})
}
