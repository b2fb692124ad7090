package channel

import (
	"context"
	"time"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// Defaults of a Service.
const (
	// DefaultHistorySize is the history of the built-in namespaces.
	DefaultHistorySize = 100
	// DefaultHistoryTTL is how long the built-in namespaces keep history.
	DefaultHistoryTTL = 10 * time.Minute
	// DefaultMaxSubscriptions caps one connection's subscriptions.
	DefaultMaxSubscriptions = 100
	// DefaultSubscriptionTTL is how long a subscription lives unless
	// renewed: API Gateway's 2-hour connection limit plus a margin, the
	// backstop when $disconnect never arrives.
	DefaultSubscriptionTTL = streamer.DefaultConnectionTTL
	// UserNamespace holds private channels: "user:{id}" is usable by the
	// user {id} only (of the same tenant), out of the box.
	UserNamespace = "user"
)

// Namespace is the options of the channels whose name starts with the
// namespace and ':' ("chat:room1" is in "chat"; names without ':' are in
// the default namespace ""). The zero value is a namespace with no
// history, no presence and server-only publishing.
type Namespace struct {
	// HistorySize is how many publications each channel keeps for
	// recovery; 0 keeps none (a recovering subscribe then succeeds only
	// when nothing was missed).
	HistorySize int
	// HistoryTTL is how long each publication is kept; 0 keeps them until
	// HistorySize pushes them out.
	HistoryTTL time.Duration
	// Presence lets subscribers ask who else is subscribed.
	Presence bool
	// JoinLeave sends join and leave events to subscribers.
	JoinLeave bool
	// ClientPublish lets clients publish (subject to the Authorizer); the
	// server's Publish always may.
	ClientPublish bool
}

func (n Namespace) history() HistoryOptions {
	return HistoryOptions{Size: n.HistorySize, TTL: n.HistoryTTL}
}

// Op is what a client asks to do on a channel.
type Op string

// The operations an Authorizer decides.
const (
	OpSubscribe Op = "subscribe"
	OpPublish   Op = "publish"
	OpPresence  Op = "presence"
)

// Access is one client's request to use a channel.
type Access struct {
	Op Op
	// Channel is the name the client sent, without the tenant: access is
	// always within Identity.TenantID.
	Channel      string
	Namespace    string
	Identity     streamer.Identity
	ConnectionID string
}

// Authorizer decides whether a client may perform an operation: nil
// allows it, a *streamer.ClientError refuses with its code, any other
// error refuses with FORBIDDEN. It runs after the built-in rule for
// UserNamespace and must not block for long: it runs on every subscribe,
// publish and presence.
type Authorizer func(ctx context.Context, a Access) error

// userRule is the built-in rule: "user:{id}" belongs to user {id}.
func userRule(a Access) error {
	if a.Namespace == UserNamespace && a.Channel != UserNamespace+":"+a.Identity.UserID {
		return streamer.NewClientError(protocol.CodeForbidden, "channel "+a.Channel+" is private to another user")
	}
	return nil
}
