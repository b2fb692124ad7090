package connection

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/streamer-go/streamer/pkg/store"
)

// routeTrust is how a Broadcast knows the endpoint it posts an ID to, and
// so what a 410 from there means.
type routeTrust int

const (
	// routeOwn: the endpoint is the one the connection's record names; a
	// 410 there means the connection is gone, and its record is removed.
	routeOwn routeTrust = iota
	// routeNoRecord: the store has no record of the ID; it is posted
	// through the manager's endpoint and a 410 there is final, with
	// nothing to remove.
	routeNoRecord
	// routeUnknown: the route read failed; the manager's endpoint is a
	// guess, and a 410 there removes nothing.
	routeUnknown
)

// routeGroup is the IDs a Broadcast posts through one endpoint ("" is the
// manager's), with what it knows of their routes.
type routeGroup struct {
	endpoint string
	trust    routeTrust
	ids      []string
}

// routeLookups bounds the per-ID lookups routeGroups runs at once on a
// store without a batched read.
const routeLookups = 16

// maxCachedRoutes bounds the routes a Manager remembers; past it the
// cache starts again empty.
const maxCachedRoutes = 1 << 16

// routeCache remembers the endpoint of each connection whose record a
// Broadcast read. A connection's endpoint never changes (nor is its ID
// reused), so a later Broadcast to it reads nothing; a gone connection
// is forgotten.
type routeCache struct {
	mu        sync.Mutex
	endpoints map[string]string // by connection ID; "" is the manager's
}

func (c *routeCache) get(ids []string, routes map[string]store.Route) (misses []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if ep, ok := c.endpoints[id]; ok {
			routes[id] = store.Route{Endpoint: ep}
		} else {
			misses = append(misses, id)
		}
	}
	return misses
}

func (c *routeCache) put(routes map[string]store.Route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endpoints == nil || len(c.endpoints)+len(routes) > maxCachedRoutes {
		c.endpoints = make(map[string]string, len(routes))
	}
	for id, r := range routes {
		c.endpoints[id] = r.Endpoint
	}
}

func (c *routeCache) forget(id string) {
	c.mu.Lock()
	delete(c.endpoints, id)
	c.mu.Unlock()
}

// routeGroups finds the routes of ids (distinct, in order), from the
// cache or else in one read, and groups them by endpoint, keeping each
// group in the order of ids.
func (m *Manager) routeGroups(ctx context.Context, ids []string) []routeGroup {
	routes := make(map[string]store.Route, len(ids))
	var err error
	if misses := m.routeCache.get(ids, routes); len(misses) > 0 {
		var read map[string]store.Route
		read, err = m.readRoutes(ctx, misses)
		m.routeCache.put(read)
		for id, r := range read {
			routes[id] = r
		}
	}
	if err != nil {
		m.log(ctx, slog.LevelWarn, "connection: reading routes for a broadcast failed; posting through the manager's endpoint",
			slog.Int("ids", len(ids)), slog.Any("error", err))
	}
	type key struct {
		endpoint string
		trust    routeTrust
	}
	index := map[key]int{}
	var groups []routeGroup
	for _, id := range ids {
		k := key{trust: routeNoRecord}
		switch r, ok := routes[id]; {
		case ok:
			k = key{endpoint: m.clients.canonical(r.Endpoint), trust: routeOwn}
		case err != nil:
			k.trust = routeUnknown
		}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, routeGroup{endpoint: k.endpoint, trust: k.trust})
		}
		groups[i].ids = append(groups[i].ids, id)
	}
	return groups
}

// readRoutes returns the routes of the IDs that have a record. On error
// the map holds those it could read.
func (m *Manager) readRoutes(ctx context.Context, ids []string) (map[string]store.Route, error) {
	if rg, ok := m.store.(store.RoutesGetter); ok {
		routes, err := rg.GetRoutes(ctx, ids)
		if err != nil {
			return nil, err
		}
		return routes, nil
	}
	var (
		mu     sync.Mutex
		routes = make(map[string]store.Route, len(ids))
		errs   []error
		wg     sync.WaitGroup
		next   = make(chan string)
	)
	for range min(routeLookups, len(ids)) {
		wg.Go(func() {
			for id := range next {
				r, err := m.route(ctx, id)
				mu.Lock()
				switch {
				case err == nil:
					routes[id] = r
				case !errors.Is(err, store.ErrNotFound):
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		if id != "" {
			next <- id
		}
	}
	close(next)
	wg.Wait()
	return routes, errors.Join(errs...)
}
