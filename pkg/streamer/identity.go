package streamer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// anonymousPrefix starts the user id of a connection with no stored
// identity: each such connection is its own user, so anonymous clients can
// never see each other's requests.
const anonymousPrefix = "anonymous:"

// identity returns the identity stored for the connection by the $connect
// handler, from the cache when fresh. store.ErrNotFound means the
// connection is unknown (never authenticated, disconnected or expired).
func (r *Router) identity(ctx context.Context, connectionID string) (Identity, error) {
	if r.conns == nil {
		return Identity{UserID: anonymousPrefix + connectionID}, nil
	}
	now := r.now()
	if id, ok := r.identities.get(connectionID, now); ok {
		return id, nil
	}
	c, err := r.conns.Get(ctx, connectionID)
	if err != nil {
		return Identity{}, fmt.Errorf("streamer: loading connection: %w", err)
	}
	id := Identity{UserID: c.UserID, TenantID: c.TenantID, Permissions: slices.Clone(c.Permissions)}
	r.identities.put(connectionID, id, now)
	return id, nil
}

// identityCache remembers connection identities briefly. It is bounded:
// when full it first drops expired entries, then arbitrary ones (map order),
// which is good enough for a cache whose entries live seconds. Hand-written
// because an LRU library would be a dependency for twenty lines.
type identityCache struct {
	ttl  time.Duration
	size int

	mu      sync.Mutex
	entries map[string]cachedIdentity
}

type cachedIdentity struct {
	id      Identity
	expires time.Time
}

func newIdentityCache(ttl time.Duration, size int) *identityCache {
	return &identityCache{ttl: ttl, size: size, entries: make(map[string]cachedIdentity)}
}

func (c *identityCache) get(connectionID string, now time.Time) (Identity, bool) {
	if c.ttl <= 0 {
		return Identity{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[connectionID]
	if !ok {
		return Identity{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, connectionID)
		return Identity{}, false
	}
	return e.id, true
}

func (c *identityCache) put(connectionID string, id Identity, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.size {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[connectionID] = cachedIdentity{id: id, expires: now.Add(c.ttl)}
}
