package memory

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/internal/validate"
)

// cloneConnection is the copy of c the store keeps, its times normalised
// (see normal).
func cloneConnection(c *store.Connection) *store.Connection {
	out := copyStored(c)
	out.ConnectedAt = normal(c.ConnectedAt)
	out.LastPing = normal(c.LastPing)
	return out
}

// copyStored is the copy of a stored connection a caller gets, so that
// the caller cannot change what the store holds. Its times were
// normalised when stored.
func copyStored(c *store.Connection) *store.Connection {
	out := *c
	out.Permissions = slices.Clone(c.Permissions)
	out.Metadata = maps.Clone(c.Metadata)
	return &out
}

// Save creates or replaces the connection.
func (s *Store) Save(ctx context.Context, c *store.Connection) error {
	const op = "save connection"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.Connection(c); err != nil {
		return opError(op, "", err)
	}
	if n := connectionSize(c); n > store.MaxItemBytes {
		return opError(op, c.ConnectionID, sizeError(n))
	}
	stored := cloneConnection(c)
	now := s.clock()
	s.mu.Lock()
	s.conns[c.ConnectionID] = stored
	s.noteInsert(now)
	s.mu.Unlock()
	return nil
}

// Get returns a copy of the connection, or ErrNotFound if it is absent or
// expired.
func (s *Store) Get(ctx context.Context, connectionID string) (*store.Connection, error) {
	const op = "get connection"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if connectionID == "" {
		return nil, invalid(op, "", "empty connection id")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[connectionID]
	if !ok || c.Expired(now) {
		return nil, notFound(op, connectionID)
	}
	return copyStored(c), nil
}

// GetRoute returns the connection's Endpoint and LastPing, with the
// errors of Get, without copying the record.
func (s *Store) GetRoute(ctx context.Context, connectionID string) (store.Route, error) {
	const op = "get connection"
	if err := checkCtx(ctx, op); err != nil {
		return store.Route{}, err
	}
	if connectionID == "" {
		return store.Route{}, invalid(op, "", "empty connection id")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[connectionID]
	if !ok || c.Expired(now) {
		return store.Route{}, notFound(op, connectionID)
	}
	return store.Route{Endpoint: c.Endpoint, LastPing: c.LastPing}, nil
}

// GetRoutes returns the Routes of the live connections among ids, under
// one lock.
func (s *Store) GetRoutes(ctx context.Context, ids []string) (map[string]store.Route, error) {
	if err := checkCtx(ctx, "get connections"); err != nil {
		return nil, err
	}
	now := s.clock()
	out := make(map[string]store.Route, len(ids))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if c, ok := s.conns[id]; ok && !c.Expired(now) {
			out[id] = store.Route{Endpoint: c.Endpoint, LastPing: c.LastPing}
		}
	}
	return out, nil
}

// Delete removes the connection; deleting an absent one is not an error.
func (s *Store) Delete(ctx context.Context, connectionID string) error {
	const op = "delete connection"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if connectionID == "" {
		return invalid(op, "", "empty connection id")
	}
	s.mu.Lock()
	delete(s.conns, connectionID)
	s.mu.Unlock()
	return nil
}

// ListByUser returns the user's live connections, oldest first.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]*store.Connection, error) {
	return s.listConnections(ctx, "list connections by user", userID, func(c *store.Connection) string { return c.UserID })
}

// ListByTenant returns the tenant's live connections, oldest first.
func (s *Store) ListByTenant(ctx context.Context, tenantID string) ([]*store.Connection, error) {
	return s.listConnections(ctx, "list connections by tenant", tenantID, func(c *store.Connection) string { return c.TenantID })
}

func (s *Store) listConnections(ctx context.Context, op, key string, field func(*store.Connection) string) ([]*store.Connection, error) {
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, invalid(op, "", "empty key")
	}
	now := s.clock()
	var out []*store.Connection
	s.mu.Lock()
	for _, c := range s.conns {
		if field(c) == key && !c.Expired(now) {
			out = append(out, copyStored(c))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *store.Connection) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ConnectionID, b.ConnectionID)
	})
	return out, nil
}

// UpdateLastPing sets LastPing; ErrNotFound if the connection is absent or
// expired.
func (s *Store) UpdateLastPing(ctx context.Context, connectionID string, at time.Time) error {
	const op = "update last ping"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if connectionID == "" {
		return invalid(op, "", "empty connection id")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[connectionID]
	if !ok || c.Expired(now) {
		return notFound(op, connectionID)
	}
	c.LastPing = normal(at)
	return nil
}

// DeleteStale removes connections last seen before the given time (LastPing,
// or ConnectedAt when never pinged) and expired ones.
func (s *Store) DeleteStale(ctx context.Context, before time.Time) (int, error) {
	const op = "delete stale connections"
	if err := checkCtx(ctx, op); err != nil {
		return 0, err
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, c := range s.conns {
		if stale(c, before, now) {
			delete(s.conns, id)
			n++
		}
	}
	return n, nil
}

func stale(c *store.Connection, before, now time.Time) bool {
	seen := c.LastPing
	if seen.IsZero() {
		seen = c.ConnectedAt
	}
	return seen.Before(before) || c.Expired(now)
}
