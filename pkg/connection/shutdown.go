package connection

import (
	"context"
	"log/slog"
	"time"
)

// stopGrace bounds how long Shutdown waits, after its deadline, for the
// work it cancelled to return.
const stopGrace = time.Second

// Flush waits until no background work (LastPing writes) is in flight,
// or ctx ends, and returns ctx's error in that case. The manager keeps
// serving; under a steady stream of Sends from other goroutines new
// writes may keep it waiting until ctx ends. Lambda freezes the process between invocations, so a
// handler calls Flush before it returns.
func (m *Manager) Flush(ctx context.Context) error {
	return m.life.wait(ctx, true)
}

// Shutdown stops the manager like http.Server.Shutdown: from its start,
// new Send, Broadcast and IsActive calls fail with ErrShuttingDown; it
// waits for the calls in flight and the background writes; if ctx ends
// first it cancels what is left (their errors then match both the context
// error and ErrShuttingDown), waits for them to return, and returns ctx's
// error. What is cancelled stops promptly: an HTTP attempt (one through a
// FastClient's pool within 50 ms), a wait for the Limiter, a retry's
// backoff. A Send's lookup of its connection in the store is not cut
// short: through a FastClient it runs under the caller's context, since
// a context of the Send's own, only there for Shutdown to cancel, would
// cost about 1.5 % of its CPU (docs/PERFORMANCE.md); the Send then ends
// with ErrShuttingDown before it posts. A client built by
// NewAPIGatewayClient or NewFastClient (with its own pool) has its idle
// connections closed. Calling Shutdown again is safe: it waits the same way.
func (m *Manager) Shutdown(ctx context.Context) error {
	if m.life.close() {
		m.log(ctx, slog.LevelInfo, "connection: shutting down")
	}
	err := m.life.wait(ctx, false)
	if err != nil {
		m.life.stop(ErrShuttingDown)
		// Cancelled work returns promptly: every wait in the manager
		// selects on its context. Only a store that ignores its context
		// could hold on; give it a short grace rather than hang.
		grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
		defer cancel()
		_ = m.life.wait(grace, false)
	}
	m.clients.closeIdle()
	return err
}
