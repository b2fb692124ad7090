package local

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Faults injects the failures API Gateway shows on its bad days, each at
// a rate between 0 and 1, so that an application's retries, breakers and
// cleanup are exercised before production. Set Config.Faults to inject
// them; the zero value injects nothing.
type Faults struct {
	// ServerError is the fraction of @connections calls answered 500
	// InternalServerErrorException without doing anything.
	ServerError float64
	// Gone is the fraction of @connections calls for a live connection
	// answered 410 GoneException (the connection stays open: the backend
	// is told it is gone, as happens across Regions and endpoints).
	Gone float64
	// Latency is added to a fraction LatencyRate of @connections calls
	// before they are answered.
	Latency     time.Duration
	LatencyRate float64
	// LostDisconnect is the fraction of connection ends whose $disconnect
	// is never delivered (API Gateway's is best effort).
	LostDisconnect float64
	// Drop is the fraction of @connections POSTs for which the connection
	// is dropped without a close frame instead of delivered: the client
	// sees the socket end (1006), the call is answered 410 GoneException
	// and $disconnect runs (unless lost too).
	Drop float64
	// Seed seeds the random source when Rand is nil; runs with the same
	// seed and the same order of calls inject the same faults.
	Seed uint64
	// Rand, when set, is the random source of every draw (one draw a
	// call, one per $disconnect); tests inject it. It must be safe for
	// concurrent use or used from one goroutine.
	Rand func() float64 `json:"-"`
}

// FaultCounts counts the faults injected, by kind.
type FaultCounts struct {
	ServerErrors, Gone, Delayed, LostDisconnects, Dropped uint64
}

// injector is a gateway's Faults at work.
type injector struct {
	cfg  Faults
	rand func() float64

	serverErrors, gone, delayed, lost, dropped atomic.Uint64
}

func newInjector(f *Faults) *injector {
	if f == nil {
		return nil
	}
	in := &injector{cfg: *f, rand: f.Rand}
	if in.rand == nil {
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
		in.rand = func() float64 {
			mu.Lock()
			defer mu.Unlock()
			return r.Float64()
		}
	}
	return in
}

func (in *injector) counts() FaultCounts {
	return FaultCounts{
		ServerErrors:    in.serverErrors.Load(),
		Gone:            in.gone.Load(),
		Delayed:         in.delayed.Load(),
		LostDisconnects: in.lost.Load(),
		Dropped:         in.dropped.Load(),
	}
}

// fault is what one @connections call draws.
type fault int

const (
	faultNone fault = iota
	faultServerError
	faultGone
	faultDrop
)

// draw picks a call's fault with one draw, so the rates add up: with
// ServerError 0.01 and Gone 0.02, 1 % of calls get 500 and 2 % 410.
func (in *injector) draw(post bool) fault {
	u := in.rand()
	switch {
	case u < in.cfg.ServerError:
		return faultServerError
	case u < in.cfg.ServerError+in.cfg.Gone:
		return faultGone
	case post && u < in.cfg.ServerError+in.cfg.Gone+in.cfg.Drop:
		return faultDrop
	}
	return faultNone
}

// delay waits Latency for a fraction LatencyRate of calls, or until ctx
// ends.
func (in *injector) delay(ctx context.Context) {
	if in.cfg.Latency <= 0 || in.cfg.LatencyRate <= 0 || in.rand() >= in.cfg.LatencyRate {
		return
	}
	in.delayed.Add(1)
	t := time.NewTimer(in.cfg.Latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// injectLatency delays a management call when the faults say so.
func (g *Gateway) injectLatency(ctx context.Context) {
	if g.faults != nil {
		g.faults.delay(ctx)
	}
}

// injectOnConnection runs the faults of a call for the live connection c:
// 500, 410 or, for a POST, a drop. It answers the call when it injected
// one and reports whether the call may go on.
func (g *Gateway) injectOnConnection(w http.ResponseWriter, r *http.Request, c *conn) bool {
	in := g.faults
	if in == nil {
		return true
	}
	switch in.draw(r.Method == http.MethodPost) {
	case faultServerError:
		in.serverErrors.Add(1)
		writeAPIError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
		return false
	case faultGone:
		in.gone.Add(1)
		writeAPIError(w, http.StatusGone, "GoneException", "")
		return false
	case faultDrop:
		in.dropped.Add(1)
		g.log.Info("local: fault: connection dropped without a close frame", "connectionId", c.id)
		c.drop()
		writeAPIError(w, http.StatusGone, "GoneException", "")
		return false
	}
	return true
}

// loseDisconnect reports whether a connection's $disconnect is to be
// lost.
func (g *Gateway) loseDisconnect(c *conn) bool {
	in := g.faults
	if in == nil || in.cfg.LostDisconnect <= 0 || in.rand() >= in.cfg.LostDisconnect {
		return false
	}
	in.lost.Add(1)
	g.log.Info("local: fault: $disconnect not delivered", "connectionId", c.id)
	return true
}

// drop closes c's socket without a close frame, as a network failure
// would; its reader then ends and $disconnect runs with 1006.
func (c *conn) drop() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}
