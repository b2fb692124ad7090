package connectiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"golang.org/x/time/rate"

	"github.com/streamer-go/streamer/pkg/connection"
)

// StatusDrop in a Script makes the server close the TCP connection
// without answering: the client sees a network error, and the message is
// not delivered.
const StatusDrop = -1

// Server is a real @connections endpoint on loopback. Every connection ID
// is live unless Disconnect (or a DELETE) made it gone. Methods are safe
// for concurrent use, also while requests are being served.
type Server struct {
	// URL is the endpoint, for connection.NewAPIGatewayClient and
	// connection.NewManager.
	URL string

	srv     *httptest.Server
	started time.Time

	mu                   sync.Mutex
	gone                 map[string]bool
	scripts              map[string][]int
	throttle             int
	burstEvery, burstLen int
	latency              func(connectionID string) time.Duration
	holds                map[string]*hold
	attempts             map[string]int
	received             map[string][][]byte
	total                int
	rawPaths             []string
	keepPaths            bool
	open                 int
	limit                *rate.Limiter // the account's quota; nil = none
	limited              int
	failFraction         float64
	failed               int
}

type hold struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

// NewServer starts a server; stop it with Close.
func NewServer() *Server {
	s := &Server{
		started:  time.Now().UTC(),
		gone:     map[string]bool{},
		scripts:  map[string][]int{},
		holds:    map[string]*hold{},
		attempts: map[string]int{},
		received: map[string][][]byte{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = s.trackConn
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, releasing any held request first.
func (s *Server) Close() {
	s.mu.Lock()
	for _, h := range s.holds {
		h.once.Do(func() { close(h.release) })
	}
	s.mu.Unlock()
	s.srv.Close()
}

// testConfig is the AWS config of the clients Client and FastClient
// build: static test credentials.
var testConfig = aws.Config{
	Region:      "us-east-1",
	Credentials: credentials.NewStaticCredentialsProvider("AKIDCONNECTIONTEST", "connectiontest-secret", ""),
}

// Client returns a real SDK client for this server, built by
// connection.NewAPIGatewayClient with static test credentials.
func (s *Server) Client() *apigatewaymanagementapi.Client {
	return connection.NewAPIGatewayClient(testConfig, s.URL)
}

// FastClient returns a lean client for this server, built by
// connection.NewFastClient with static test credentials. Close its idle
// connections (or Shutdown the Manager using it) before Close.
func (s *Server) FastClient(opts ...connection.FastClientOption) *connection.FastClient {
	return connection.NewFastClient(testConfig, s.URL, opts...)
}

// Disconnect makes the IDs gone: every later request for them is
// answered 410 GoneException, as API Gateway does after the client left.
func (s *Server) Disconnect(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.gone[id] = true
	}
}

// IsGone reports whether the ID is gone.
func (s *Server) IsGone(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[id]
}

// Script makes the next requests for id answer these statuses, one per
// request, before the request is served: 500, 502, 503 (server errors),
// 429 (LimitExceededException), 403, 410, 413, 400, or StatusDrop. The
// message of a scripted request is not delivered. 200 (or 0) in the list
// means "serve normally". After the list, requests are served normally.
func (s *Server) Script(id string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[id] = append(s.scripts[id], statuses...)
}

// ThrottleNext answers the next n requests, whatever their ID, with 429
// LimitExceededException: a burst of throttling.
func (s *Server) ThrottleNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle += n
}

// ThrottleBursts makes the server throw a burst of length 429 answers
// after every `every` requests, whatever their ID, for as long as the
// server runs; every <= 0 turns the bursts off.
func (s *Server) ThrottleBursts(every, length int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.burstEvery, s.burstLen = every, length
}

// SetRateLimit gives the server an account quota like API Gateway's
// (10,000/s with a burst of 5,000 in AWS): a token bucket of rate requests
// per second holding up to burst, shared by every request whatever its ID
// or method. A request that finds the bucket empty is answered 429
// LimitExceededException and not delivered. rate <= 0 removes the limit.
func (s *Server) SetRateLimit(perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.limit = nil
		return
	}
	s.limit = rate.NewLimiter(rate.Limit(perSecond), max(1, burst))
}

// RateLimited returns how many requests the rate limit answered 429.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// FailRandomly answers that fraction (0..1) of the requests, chosen at
// random, with a server error (500, 502 or 503) before delivery. 0 stops.
func (s *Server) FailRandomly(fraction float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failFraction = fraction
}

// RandomlyFailed returns how many requests FailRandomly failed.
func (s *Server) RandomlyFailed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// SetLatency makes every request wait f(connectionID) before it is
// answered (and before any fault is decided). nil removes the latency.
func (s *Server) SetLatency(f func(connectionID string) time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = f
}

// Hold makes the next request for id wait, after it arrived, until
// release is called (or the client gives up, or the server closes).
// arrived is closed when the request arrives, so a test can act while a
// send is in flight.
func (s *Server) Hold(id string) (arrived <-chan struct{}, release func()) {
	h := &hold{arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.holds[id] = h
	s.mu.Unlock()
	return h.arrived, func() { h.once.Do(func() { close(h.release) }) }
}

// Reset forgets what was received and counted (not the gone IDs, the
// scripts or the latency), for benchmarks that reuse a server.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = map[string]int{}
	s.received = map[string][][]byte{}
	s.total = 0
	s.rawPaths = nil
}

// Received returns the messages delivered to id, in order.
func (s *Server) Received(id string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.received[id]))
	copy(out, s.received[id])
	return out
}

// ReceivedBy returns how many messages each ID received.
func (s *Server) ReceivedBy() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.received))
	for id, msgs := range s.received {
		out[id] = len(msgs)
	}
	return out
}

// Attempts returns how many requests (of any method) arrived for id.
func (s *Server) Attempts(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

// TotalAttempts returns how many requests arrived in all.
func (s *Server) TotalAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RecordPaths makes the server remember the raw (still escaped) request
// paths, for tests of URL encoding; see RawPaths.
func (s *Server) RecordPaths() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepPaths = true
}

// RawPaths returns the escaped paths of the requests since RecordPaths.
func (s *Server) RawPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rawPaths...)
}

func (s *Server) trackConn(_ net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		s.open++
	case http.StateClosed, http.StateHijacked:
		s.open--
	}
}

// OpenConns returns the number of TCP connections clients hold open to
// the server now, idle keep-alive ones included.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// awsError writes an error the way API Gateway does: the type in the
// X-Amzn-Errortype header and a JSON body with the message.
func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func writeStatus(w http.ResponseWriter, status int) bool {
	switch {
	case status == 0 || status == http.StatusOK:
		return false
	case status == StatusDrop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return true
			}
		}
		awsError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
	case status == http.StatusGone:
		awsError(w, status, "GoneException", "")
	case status == http.StatusTooManyRequests:
		awsError(w, status, "LimitExceededException", "Too Many Requests")
	case status == http.StatusForbidden:
		awsError(w, status, "ForbiddenException", "Forbidden")
	case status == http.StatusRequestEntityTooLarge:
		awsError(w, status, "PayloadTooLargeException", "Message too long")
	case status >= 500:
		awsError(w, status, "InternalServerErrorException", "Internal server error")
	default:
		awsError(w, status, "BadRequestException", "Bad request")
	}
	return true
}

const pathPrefix = "/@connections/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.EscapedPath()
	i := strings.Index(raw, pathPrefix)
	if i < 0 || strings.Contains(raw[i+len(pathPrefix):], "/") {
		awsError(w, http.StatusNotFound, "NotFoundException", "no such route")
		return
	}
	id, err := url.PathUnescape(raw[i+len(pathPrefix):])
	if err != nil || id == "" {
		awsError(w, http.StatusBadRequest, "BadRequestException", "invalid connection id")
		return
	}
	// API Gateway refuses unsigned calls; so do we, which proves the SDK
	// signed the request.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") || r.Header.Get("X-Amz-Date") == "" {
		awsError(w, http.StatusForbidden, "ForbiddenException", "Missing Authentication Token")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, connection.MaxMessageBytes+1))
	if err != nil {
		return // the client went away
	}

	s.mu.Lock()
	s.attempts[id]++
	s.total++
	// This request completes a run of burstEvery: the burst starts with
	// the next one.
	startBurst := s.burstEvery > 0 && s.total%s.burstEvery == 0
	if s.keepPaths {
		s.rawPaths = append(s.rawPaths, raw)
	}
	latency := s.latency
	h := s.holds[id]
	delete(s.holds, id)
	s.mu.Unlock()

	if latency != nil {
		if d := latency(id); d > 0 {
			if !sleep(r.Context(), d) {
				return
			}
		}
	}
	if h != nil {
		close(h.arrived)
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}

	s.mu.Lock()
	status := 0
	switch {
	case s.limit != nil && !s.limit.Allow():
		// Over the account's quota: refused before anything else, as API
		// Gateway's throttling comes before the connection is looked at.
		s.limited++
		status = http.StatusTooManyRequests
	case s.failFraction > 0 && rand.Float64() < s.failFraction:
		s.failed++
		status = []int{500, 502, 503}[rand.IntN(3)]
	case len(s.scripts[id]) > 0:
		status = s.scripts[id][0]
		s.scripts[id] = s.scripts[id][1:]
	case s.throttle > 0:
		s.throttle--
		status = http.StatusTooManyRequests
	case s.gone[id]:
		status = http.StatusGone
	case r.Method == http.MethodPost && len(body) > connection.MaxMessageBytes:
		status = http.StatusRequestEntityTooLarge
	}
	if startBurst {
		s.throttle += s.burstLen
	}
	if status == 0 || status == http.StatusOK {
		switch r.Method {
		case http.MethodPost:
			s.received[id] = append(s.received[id], body)
		case http.MethodDelete:
			s.gone[id] = true
		}
	}
	s.mu.Unlock()

	if writeStatus(w, status) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		ts := s.started.Format("2006-01-02T15:04:05.000Z")
		fmt.Fprintf(w, `{"connectedAt":%q,"identity":{"sourceIp":%q,"userAgent":"connectiontest"},"lastActiveAt":%q}`,
			ts, hostOf(r.RemoteAddr), time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	default:
		awsError(w, http.StatusMethodNotAllowed, "BadRequestException", "method not allowed")
	}
}

func hostOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[:i]
	}
	return addr
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
