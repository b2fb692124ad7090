package local

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// admit gives c a connection ID and counts its goroutine, unless the
// gateway is shutting down. IDs are unique among the live connections.
func (g *Gateway) admit(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shuttingDown {
		return false
	}
	for {
		id := newID()
		if _, dup := g.live[id]; !dup {
			c.id = id
			break
		}
	}
	g.live[c.id] = c
	g.wg.Add(1)
	return true
}

// release forgets c once its goroutine is done.
func (g *Gateway) release(c *conn) {
	g.mu.Lock()
	delete(g.live, c.id)
	if g.conns[c.id] == c {
		delete(g.conns, c.id)
	}
	g.mu.Unlock()
	g.wg.Done()
}

// track makes an upgraded connection reachable through the management API,
// unless the gateway is shutting down.
func (g *Gateway) track(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shuttingDown {
		return false
	}
	g.conns[c.id] = c
	return true
}

func (g *Gateway) untrack(c *conn) {
	g.mu.Lock()
	if g.conns[c.id] == c {
		delete(g.conns, c.id)
	}
	g.mu.Unlock()
}

func (g *Gateway) lookup(id string) *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[id]
}

func (g *Gateway) snapshotLive() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*conn, 0, len(g.live))
	for _, c := range g.live {
		out = append(out, c)
	}
	return out
}

// newRequestID returns an ID for one event, in the same format.
func (g *Gateway) newRequestID() string { return newID() }

// newID returns an ID shaped like API Gateway's ("L0SM9cOFvHcCIhw="): 11
// random bytes in standard base64, 16 characters ending in "=". IDs with
// "+" or "/" are drawn again so that they stay one path segment even for
// clients that forget to escape them; "=" stays, as in AWS, so clients
// that forget to escape it are caught.
func newID() string {
	var b [11]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		id := base64.StdEncoding.EncodeToString(b[:])
		if !strings.ContainsAny(id, "+/") {
			return id
		}
	}
}
