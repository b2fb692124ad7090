package store

import (
	"context"
	"time"
)

// Connection is one WebSocket connection as API Gateway (or the local
// runtime) knows it, plus the identity the $connect handler verified.
type Connection struct {
	ConnectionID string
	UserID       string
	TenantID     string
	// Endpoint is the management API endpoint of this connection, such as
	// https://{api}.execute-api.{region}.amazonaws.com/{stage}. Empty means
	// the ConnectionManager's own endpoint.
	Endpoint    string
	ConnectedAt time.Time
	LastPing    time.Time
	// Permissions come from the verified token; the router enforces them.
	Permissions []string
	Metadata    map[string]string
	// TTL is a Unix time in seconds after which the record is invisible to
	// reads. Zero means no expiry; a negative TTL is ErrInvalidInput.
	TTL int64
}

// Expired reports whether the record's TTL has passed at now.
func (c *Connection) Expired(now time.Time) bool {
	return c.TTL > 0 && c.TTL <= now.Unix()
}

// ConnectionStore persists connections. Implementations are safe for
// concurrent use.
type ConnectionStore interface {
	// Save creates or replaces the connection.
	Save(ctx context.Context, c *Connection) error
	// Get returns the connection, or ErrNotFound if it is absent or expired.
	Get(ctx context.Context, connectionID string) (*Connection, error)
	// Delete removes the connection. Deleting an absent one is not an error.
	Delete(ctx context.Context, connectionID string) error
	// ListByUser returns every live connection of the user, paging
	// internally.
	ListByUser(ctx context.Context, userID string) ([]*Connection, error)
	// ListByTenant returns every live connection of the tenant, paging
	// internally.
	ListByTenant(ctx context.Context, tenantID string) ([]*Connection, error)
	// UpdateLastPing sets LastPing; ErrNotFound if the connection is gone.
	UpdateLastPing(ctx context.Context, connectionID string, at time.Time) error
	// DeleteStale removes connections whose LastPing (or ConnectedAt when
	// never pinged) is before the given time, and expired ones, and returns
	// how many it removed.
	DeleteStale(ctx context.Context, before time.Time) (int, error)
}

// Route is what sending a message to a connection needs from its record:
// where to post it and when the connection was last seen.
type Route struct {
	// Endpoint is the connection's management API endpoint; empty means
	// the sender's own (see Connection.Endpoint).
	Endpoint string
	// LastPing is the connection's LastPing.
	LastPing time.Time
}

// RouteGetter is implemented by a ConnectionStore that can return a
// connection's Route without building the whole record: no copy of its
// Permissions and Metadata in memory, a projection of three attributes
// in DynamoDB. The connection Manager uses it, when the store has it, for
// the lookup each Send makes.
type RouteGetter interface {
	// GetRoute returns the connection's Route, with the errors Get would
	// return: ErrNotFound if it is absent or expired.
	GetRoute(ctx context.Context, connectionID string) (Route, error)
}

// RoutesGetter is implemented by a ConnectionStore that can return the
// Routes of many connections in one batched read. The connection
// Manager's Broadcast uses it to post each ID to its own endpoint.
type RoutesGetter interface {
	// GetRoutes returns the Route of each live connection among ids;
	// absent and expired ones are missing from the map (not an error).
	GetRoutes(ctx context.Context, ids []string) (map[string]Route, error)
}
