package streamer

import (
	"bytes"
	"log/slog"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// Router defaults.
const (
	// DefaultSyncTimeout bounds a sync handler, well under API Gateway's
	// 29-second integration timeout so the error still reaches the client.
	DefaultSyncTimeout = 10 * time.Second
	// DefaultIdentityCacheTTL is how long the router trusts a connection
	// record it has read. A connection deleted on $disconnect stays usable
	// for at most this long by messages already in flight.
	DefaultIdentityCacheTTL = 5 * time.Second
	// DefaultIdentityCacheSize bounds the identity cache.
	DefaultIdentityCacheSize = 10000
	// DefaultRequestTTL is how long an async request stays readable
	// (resume) after it was queued.
	DefaultRequestTTL = 24 * time.Hour
	// resumeReadTimeout bounds the store reads of a resume before its
	// answer (the connection's identity, then the request), all of them
	// together; resumeTimeout bounds the whole resume, its answer and the
	// rebind after it included (see serveResume). The client gets an
	// answer within a second even from a store that hangs.
	resumeReadTimeout = 450 * time.Millisecond
	resumeTimeout     = 900 * time.Millisecond
)

// Option configures a Router.
type Option func(*Router)

// WithConnectionStore sets where the router reads each connection's
// identity (stored by the $connect handler). Without it every connection
// is its own anonymous user (UserID "anonymous:" + connection id) with no
// permissions, and results cannot follow a user to a new connection.
func WithConnectionStore(cs store.ConnectionStore) Option {
	return func(r *Router) { r.conns = cs }
}

// WithLogger sets the logger; the default discards everything. Message
// bodies and payloads are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(r *Router) {
		if l != nil {
			r.log = l
		}
	}
}

// WithSyncTimeout sets the default timeout of sync handlers (default
// [DefaultSyncTimeout]). Values <= 0 are ignored.
func WithSyncTimeout(d time.Duration) Option {
	return func(r *Router) {
		if d > 0 {
			r.syncTimeout = d
		}
	}
}

// WithMaxPayload sets the largest inbound message in bytes (default
// [DefaultMaxMessageBytes], API Gateway's quota). Larger messages are
// answered with INVALID_MESSAGE. Values <= 0 are ignored.
func WithMaxPayload(n int) Option {
	return func(r *Router) {
		if n > 0 {
			r.maxMessage = n
		}
	}
}

// WithIdentityCache sets how long and how many connection records the
// router caches (defaults [DefaultIdentityCacheTTL],
// [DefaultIdentityCacheSize]). A ttl <= 0 turns caching off.
func WithIdentityCache(ttl time.Duration, size int) Option {
	return func(r *Router) {
		r.cacheTTL = ttl
		if size > 0 {
			r.cacheSize = size
		}
	}
}

// WithRequestTTL sets how long queued requests stay in the store (default
// [DefaultRequestTTL]). Values <= 0 are ignored.
func WithRequestTTL(d time.Duration) Option {
	return func(r *Router) {
		if d > 0 {
			r.requestTTL = d
		}
	}
}

// WithReplyEndpoint sets how the router finds the management endpoint
// to reply to a message through (default https://{DomainName}/{Stage},
// http for a loopback domain). Replies go there without reading the
// connection's record, so they reach the client while the store is
// unavailable or has lost the record. A function returning "" makes
// replies go through the Sender's Send (the record's endpoint).
func WithReplyEndpoint(fn func(Message) string) Option {
	return func(r *Router) {
		if fn != nil {
			r.replyEndpoint = fn
		}
	}
}

// WithRequestIDKey sets the secret that keys async request ids (at least
// 16 bytes; shorter keys are ignored). An id is an HMAC of the user and
// the client's id, so the same submission always gets the same id, and
// no user can compute another's. Default: a random key per Router, which
// makes a resubmission that reaches another process (another runtime,
// another Lambda instance) a new request: Routers sharing a store should
// share the key.
func WithRequestIDKey(key []byte) Option {
	return func(r *Router) {
		if len(key) >= 16 {
			r.idKey = bytes.Clone(key)
		}
	}
}

// WithActions makes the router use a shared action registry (see
// Actions) instead of one of its own. Nil is ignored.
func WithActions(a *Actions) Option {
	return func(r *Router) {
		if a != nil {
			r.actions = a
		}
	}
}

// WithQueue makes the router hand each async request it stores to the
// pool of a Processor in the same process through q (see [Queue]). Nil is
// ignored.
func WithQueue(q *Queue) Option {
	return func(r *Router) {
		if q != nil {
			r.queue = q
		}
	}
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(r *Router) {
		if now != nil {
			r.now = now
		}
	}
}

// ActionOption configures one action.
type ActionOption func(*action)

// RequirePermissions refuses the action with FORBIDDEN unless the
// connection's identity holds every one of perms.
func RequirePermissions(perms ...string) ActionOption {
	return func(a *action) { a.perms = append(a.perms, perms...) }
}

// Timeout overrides the handler's timeout: the sync timeout for Handle, the
// processor's per-request timeout for HandleAsync. Values <= 0 are ignored.
func Timeout(d time.Duration) ActionOption {
	return func(a *action) {
		if d > 0 {
			a.timeout = d
		}
	}
}
