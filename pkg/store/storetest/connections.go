package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

var connectionTests = []testCase{
	{"SaveGetRoundTrip", testSaveGetRoundTrip},
	{"SaveReplaces", testSaveReplaces},
	{"ReturnsCopies", testConnectionCopies},
	{"GetMissing", testGetMissing},
	{"Delete", testDelete},
	{"ListByUserAndTenant", testListConnections},
	{"ListPagesPastOneMegabyte", testListConnectionsLarge},
	{"ListPagesManyItems", testListConnectionsMany},
	{"TTLHidesExpired", testConnectionTTL},
	{"UpdateLastPing", testUpdateLastPing},
	{"RouteMatchesGet", testRouteMatchesGet},
	{"RoutesInOneBatch", testRoutesBatch},
	{"DeleteStale", testDeleteStale},
	{"InvalidInput", testConnectionInvalidInput},
	{"TooLarge", testConnectionTooLarge},
	{"CancelledContext", testConnectionCancelledContext},
}

func fullConnection(e *env, id string) *store.Connection {
	now := e.clock.Now()
	return &store.Connection{
		ConnectionID: id,
		UserID:       "user-1",
		TenantID:     "tenant-1",
		Endpoint:     "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
		ConnectedAt:  now.Add(-time.Minute),
		LastPing:     now.Add(-time.Second),
		Permissions:  []string{"reports:read", "reports:write"},
		Metadata:     map[string]string{"ua": "test/1.0", "ip": "203.0.113.7"},
		TTL:          now.Add(2 * time.Hour).Unix(),
	}
}

func equalConnection(t *testing.T, got, want *store.Connection) {
	t.Helper()
	if got.ConnectionID != want.ConnectionID || got.UserID != want.UserID ||
		got.TenantID != want.TenantID || got.Endpoint != want.Endpoint || got.TTL != want.TTL {
		t.Errorf("connection = %+v, want %+v", got, want)
	}
	sameTime(t, "ConnectedAt", got.ConnectedAt, want.ConnectedAt)
	sameTime(t, "LastPing", got.LastPing, want.LastPing)
	if !slices.Equal(got.Permissions, want.Permissions) {
		t.Errorf("Permissions = %q, want %q", got.Permissions, want.Permissions)
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		t.Errorf("Metadata = %v, want %v", got.Metadata, want.Metadata)
	}
}

func testSaveGetRoundTrip(t *testing.T, e *env) {
	ctx := t.Context()
	want := fullConnection(e, "L0SM9cOFvHcCIhw=")
	wantErr(t, "Save", e.conns.Save(ctx, want), nil)
	got, err := e.conns.Get(ctx, want.ConnectionID)
	wantErr(t, "Get", err, nil)
	equalConnection(t, got, want)

	// A minimal record (no user, tenant, times or TTL) round-trips too.
	bare := &store.Connection{ConnectionID: "minimal"}
	wantErr(t, "Save minimal", e.conns.Save(ctx, bare), nil)
	got, err = e.conns.Get(ctx, "minimal")
	wantErr(t, "Get minimal", err, nil)
	equalConnection(t, got, bare)
	if !got.ConnectedAt.IsZero() || !got.LastPing.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.ConnectedAt, got.LastPing)
	}
}

func testSaveReplaces(t *testing.T, e *env) {
	ctx := t.Context()
	c := fullConnection(e, "c-1")
	wantErr(t, "Save", e.conns.Save(ctx, c), nil)
	c2 := &store.Connection{ConnectionID: "c-1", UserID: "user-2", Metadata: map[string]string{"k": "v"}}
	wantErr(t, "Save again", e.conns.Save(ctx, c2), nil)
	got, err := e.conns.Get(ctx, "c-1")
	wantErr(t, "Get", err, nil)
	equalConnection(t, got, c2)
	// The replaced record left no trace in the old user's or tenant's list.
	for name, list := range map[string]func(context.Context, string) ([]*store.Connection, error){
		"ListByUser(user-1)":     e.conns.ListByUser,
		"ListByTenant(tenant-1)": e.conns.ListByTenant,
	} {
		key := name[strings.Index(name, "(")+1 : len(name)-1]
		l, err := list(ctx, key)
		wantErr(t, name, err, nil)
		if len(l) != 0 {
			t.Errorf("%s = %d connections after replace, want 0", name, len(l))
		}
	}
}

func testConnectionCopies(t *testing.T, e *env) {
	ctx := t.Context()
	c := fullConnection(e, "c-1")
	want := fullConnection(e, "c-1")
	wantErr(t, "Save", e.conns.Save(ctx, c), nil)
	// Mutating the saved value or a returned one must not change the record.
	c.UserID = "mallory"
	c.Permissions[0] = "admin"
	c.Metadata["ip"] = "0.0.0.0"
	got, err := e.conns.Get(ctx, "c-1")
	wantErr(t, "Get", err, nil)
	got.Permissions[0] = "admin"
	got.Metadata["ua"] = "x"
	got.TenantID = "other"
	got, err = e.conns.Get(ctx, "c-1")
	wantErr(t, "Get again", err, nil)
	equalConnection(t, got, want)
	list, err := e.conns.ListByUser(ctx, "user-1")
	wantErr(t, "ListByUser", err, nil)
	if len(list) != 1 {
		t.Fatalf("ListByUser = %d connections, want 1", len(list))
	}
	list[0].Metadata["ua"] = "x"
	got, _ = e.conns.Get(ctx, "c-1")
	equalConnection(t, got, want)
}

func testGetMissing(t *testing.T, e *env) {
	_, err := e.conns.Get(t.Context(), "nope")
	wantErr(t, "Get missing", err, store.ErrNotFound)
}

func testDelete(t *testing.T, e *env) {
	ctx := t.Context()
	wantErr(t, "Save", e.conns.Save(ctx, fullConnection(e, "c-1")), nil)
	wantErr(t, "Delete", e.conns.Delete(ctx, "c-1"), nil)
	_, err := e.conns.Get(ctx, "c-1")
	wantErr(t, "Get after Delete", err, store.ErrNotFound)
	wantErr(t, "Delete absent", e.conns.Delete(ctx, "c-1"), nil)
	l, err := e.conns.ListByUser(ctx, "user-1")
	wantErr(t, "ListByUser", err, nil)
	if len(l) != 0 {
		t.Errorf("ListByUser after Delete = %d, want 0", len(l))
	}
}

func ids(cs []*store.Connection) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.ConnectionID)
	}
	slices.Sort(out)
	return out
}

func testListConnections(t *testing.T, e *env) {
	ctx := t.Context()
	save := func(id, user, tenant string) {
		t.Helper()
		c := fullConnection(e, id)
		c.UserID, c.TenantID = user, tenant
		wantErr(t, "Save "+id, e.conns.Save(ctx, c), nil)
	}
	save("a1", "alice", "acme")
	save("a2", "alice", "acme")
	save("b1", "bob", "acme")
	save("c1", "carol", "globex")
	wantErr(t, "Save anonymous", e.conns.Save(ctx, &store.Connection{ConnectionID: "anon"}), nil)

	cases := []struct {
		name string
		list func(context.Context, string) ([]*store.Connection, error)
		key  string
		want []string
	}{
		{"ListByUser", e.conns.ListByUser, "alice", []string{"a1", "a2"}},
		{"ListByUser", e.conns.ListByUser, "bob", []string{"b1"}},
		{"ListByUser", e.conns.ListByUser, "nobody", []string{}},
		{"ListByTenant", e.conns.ListByTenant, "acme", []string{"a1", "a2", "b1"}},
		{"ListByTenant", e.conns.ListByTenant, "globex", []string{"c1"}},
		{"ListByTenant", e.conns.ListByTenant, "initech", []string{}},
	}
	for _, c := range cases {
		got, err := c.list(ctx, c.key)
		wantErr(t, c.name, err, nil)
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("%s(%q) = %q, want %q", c.name, c.key, ids(got), c.want)
		}
	}
	// Listed records are complete, not index projections.
	got, _ := e.conns.ListByUser(ctx, "bob")
	if len(got) == 1 {
		want := fullConnection(e, "b1")
		want.UserID, want.TenantID = "bob", "acme"
		equalConnection(t, got[0], want)
	}
}

// testListConnectionsLarge stores more than 1 MB for one user, which a
// DynamoDB Query cannot return in one page.
func testListConnectionsLarge(t *testing.T, e *env) {
	ctx := t.Context()
	big := strings.Repeat("x", 300*1024)
	var want []string
	for i := range 5 {
		id := fmt.Sprintf("big-%d", i)
		c := &store.Connection{ConnectionID: id, UserID: "heavy", TenantID: "t", Metadata: map[string]string{"blob": big}}
		wantErr(t, "Save "+id, e.conns.Save(ctx, c), nil)
		want = append(want, id)
	}
	for name, list := range map[string]func(context.Context, string) ([]*store.Connection, error){
		"ListByUser": e.conns.ListByUser, "ListByTenant": e.conns.ListByTenant,
	} {
		key := map[string]string{"ListByUser": "heavy", "ListByTenant": "t"}[name]
		got, err := list(ctx, key)
		wantErr(t, name, err, nil)
		if !slices.Equal(ids(got), want) {
			t.Fatalf("%s = %q, want %q", name, ids(got), want)
		}
		for _, c := range got {
			if c.Metadata["blob"] != big {
				t.Fatalf("%s: %s came back with a %d-byte blob", name, c.ConnectionID, len(c.Metadata["blob"]))
			}
		}
	}
}

func testListConnectionsMany(t *testing.T, e *env) {
	ctx := t.Context()
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("c-%02d", i)
		c := &store.Connection{ConnectionID: id, UserID: "many", TenantID: "many-t", ConnectedAt: e.clock.Now()}
		if i%5 == 0 {
			c.TTL = e.clock.Now().Add(time.Minute).Unix() // expires below
		} else {
			want = append(want, id)
		}
		wantErr(t, "Save "+id, e.conns.Save(ctx, c), nil)
	}
	e.clock.Advance(2 * time.Minute)
	got, err := e.conns.ListByUser(ctx, "many")
	wantErr(t, "ListByUser", err, nil)
	if !slices.Equal(ids(got), want) {
		t.Errorf("ListByUser = %q, want %q", ids(got), want)
	}
	got, err = e.conns.ListByTenant(ctx, "many-t")
	wantErr(t, "ListByTenant", err, nil)
	if !slices.Equal(ids(got), want) {
		t.Errorf("ListByTenant = %q, want %q", ids(got), want)
	}
}

func testConnectionTTL(t *testing.T, e *env) {
	ctx := t.Context()
	c := fullConnection(e, "c-1")
	c.TTL = e.clock.Now().Add(10 * time.Second).Unix()
	wantErr(t, "Save", e.conns.Save(ctx, c), nil)
	e.clock.Advance(9 * time.Second)
	_, err := e.conns.Get(ctx, "c-1")
	wantErr(t, "Get before TTL", err, nil)
	e.clock.Advance(time.Second) // TTL == now: expired
	_, err = e.conns.Get(ctx, "c-1")
	wantErr(t, "Get at TTL", err, store.ErrNotFound)
	l, err := e.conns.ListByUser(ctx, "user-1")
	wantErr(t, "ListByUser", err, nil)
	if len(l) != 0 {
		t.Errorf("ListByUser lists an expired connection: %q", ids(l))
	}
	l, err = e.conns.ListByTenant(ctx, "tenant-1")
	wantErr(t, "ListByTenant", err, nil)
	if len(l) != 0 {
		t.Errorf("ListByTenant lists an expired connection: %q", ids(l))
	}
	wantErr(t, "UpdateLastPing expired", e.conns.UpdateLastPing(ctx, "c-1", e.clock.Now()), store.ErrNotFound)
	// Saving again revives the ID with a new TTL.
	c.TTL = e.clock.Now().Add(time.Hour).Unix()
	wantErr(t, "Save again", e.conns.Save(ctx, c), nil)
	_, err = e.conns.Get(ctx, "c-1")
	wantErr(t, "Get after resave", err, nil)
}

func testUpdateLastPing(t *testing.T, e *env) {
	ctx := t.Context()
	c := fullConnection(e, "c-1")
	wantErr(t, "Save", e.conns.Save(ctx, c), nil)
	at := e.clock.Now().Add(1500 * time.Millisecond)
	wantErr(t, "UpdateLastPing", e.conns.UpdateLastPing(ctx, "c-1", at), nil)
	got, err := e.conns.Get(ctx, "c-1")
	wantErr(t, "Get", err, nil)
	sameTime(t, "LastPing", got.LastPing, at)
	c.LastPing = at
	equalConnection(t, got, c) // nothing else changed
	wantErr(t, "UpdateLastPing missing", e.conns.UpdateLastPing(ctx, "gone", at), store.ErrNotFound)
	if _, err := e.conns.Get(ctx, "gone"); err == nil {
		t.Error("UpdateLastPing on a missing connection created it")
	}
}

func testDeleteStale(t *testing.T, e *env) {
	ctx := t.Context()
	now := e.clock.Now()
	cutoff := now.Add(-10 * time.Minute)
	conns := []*store.Connection{
		{ConnectionID: "fresh-ping", ConnectedAt: now.Add(-time.Hour), LastPing: now.Add(-time.Minute)},
		{ConnectionID: "stale-ping", ConnectedAt: now.Add(-time.Hour), LastPing: now.Add(-11 * time.Minute)},
		{ConnectionID: "fresh-never-pinged", ConnectedAt: now.Add(-time.Minute)},
		{ConnectionID: "stale-never-pinged", ConnectedAt: now.Add(-time.Hour)},
		{ConnectionID: "expired", ConnectedAt: now, LastPing: now, TTL: now.Add(-time.Second).Unix()},
		{ConnectionID: "live-ttl", ConnectedAt: now, TTL: now.Add(time.Hour).Unix()},
	}
	for _, c := range conns {
		wantErr(t, "Save "+c.ConnectionID, e.conns.Save(ctx, c), nil)
	}
	n, err := e.conns.DeleteStale(ctx, cutoff)
	wantErr(t, "DeleteStale", err, nil)
	if n != 3 {
		t.Errorf("DeleteStale removed %d, want 3", n)
	}
	for _, c := range conns {
		_, err := e.conns.Get(ctx, c.ConnectionID)
		if keep := strings.HasPrefix(c.ConnectionID, "fresh") || c.ConnectionID == "live-ttl"; keep {
			wantErr(t, "Get "+c.ConnectionID, err, nil)
		} else {
			wantErr(t, "Get "+c.ConnectionID, err, store.ErrNotFound)
		}
	}
	// Nothing left to remove: a second sweep is a no-op.
	n, err = e.conns.DeleteStale(ctx, cutoff)
	wantErr(t, "DeleteStale again", err, nil)
	if n != 0 {
		t.Errorf("second DeleteStale removed %d, want 0", n)
	}
}

func testConnectionInvalidInput(t *testing.T, e *env) {
	ctx := t.Context()
	wantErr(t, "Save nil", e.conns.Save(ctx, nil), store.ErrInvalidInput)
	wantErr(t, "Save empty id", e.conns.Save(ctx, &store.Connection{UserID: "u"}), store.ErrInvalidInput)
	// A negative TTL is no Unix time; refusing it keeps both stores
	// agreeing on whether such a record has expired.
	wantErr(t, "Save negative TTL", e.conns.Save(ctx, &store.Connection{ConnectionID: "neg", TTL: -1}), store.ErrInvalidInput)
	_, err := e.conns.Get(ctx, "neg")
	wantErr(t, "Get after refused Save", err, store.ErrNotFound)
	_, err = e.conns.Get(ctx, "")
	wantErr(t, "Get empty id", err, store.ErrInvalidInput)
	wantErr(t, "Delete empty id", e.conns.Delete(ctx, ""), store.ErrInvalidInput)
	wantErr(t, "UpdateLastPing empty id", e.conns.UpdateLastPing(ctx, "", e.clock.Now()), store.ErrInvalidInput)
	_, err = e.conns.ListByUser(ctx, "")
	wantErr(t, "ListByUser empty", err, store.ErrInvalidInput)
	_, err = e.conns.ListByTenant(ctx, "")
	wantErr(t, "ListByTenant empty", err, store.ErrInvalidInput)
}

func testConnectionTooLarge(t *testing.T, e *env) {
	ctx := t.Context()
	c := &store.Connection{ConnectionID: "huge", UserID: "u", Metadata: map[string]string{"blob": strings.Repeat("x", store.MaxItemBytes+1)}}
	wantErr(t, "Save oversize", e.conns.Save(ctx, c), store.ErrTooLarge)
	_, err := e.conns.Get(ctx, "huge")
	wantErr(t, "Get after refused Save", err, store.ErrNotFound)
	// Just under the limit, with room for the rest of the record, is fine.
	c.Metadata["blob"] = strings.Repeat("x", store.MaxItemBytes-4096)
	wantErr(t, "Save near limit", e.conns.Save(ctx, c), nil)
	got, err := e.conns.Get(ctx, "huge")
	wantErr(t, "Get near limit", err, nil)
	if got.Metadata["blob"] != c.Metadata["blob"] {
		t.Error("near-limit record came back changed")
	}
}

func testConnectionCancelledContext(t *testing.T, e *env) {
	ctx := cancelledContext()
	wantErr(t, "Save", e.conns.Save(ctx, fullConnection(e, "c-1")), context.Canceled)
	_, err := e.conns.Get(ctx, "c-1")
	wantErr(t, "Get", err, context.Canceled)
	_, err = e.conns.ListByUser(ctx, "user-1")
	wantErr(t, "ListByUser", err, context.Canceled)
	_, err = e.conns.DeleteStale(ctx, e.clock.Now())
	wantErr(t, "DeleteStale", err, context.Canceled)
	_, err = e.conns.Get(t.Context(), "c-1")
	wantErr(t, "Get after cancelled Save", err, store.ErrNotFound)
}

// testRouteMatchesGet: a store that is a store.RouteGetter answers
// GetRoute with Get's Endpoint and LastPing, and with Get's errors.
func testRouteMatchesGet(t *testing.T, e *env) {
	rg, ok := e.conns.(store.RouteGetter)
	if !ok {
		t.Skip("the store is not a store.RouteGetter")
	}
	ctx := t.Context()
	c := fullConnection(e, "L0SM9cOFvHcCIhw=")
	c.TTL = e.clock.Now().Add(10 * time.Second).Unix()
	wantErr(t, "Save", e.conns.Save(ctx, c), nil)
	minimal := &store.Connection{ConnectionID: "minimal"}
	wantErr(t, "Save minimal", e.conns.Save(ctx, minimal), nil)

	check := func(id string) {
		t.Helper()
		got, err := e.conns.Get(ctx, id)
		wantErr(t, "Get "+id, err, nil)
		r, err := rg.GetRoute(ctx, id)
		wantErr(t, "GetRoute "+id, err, nil)
		if r.Endpoint != got.Endpoint {
			t.Errorf("GetRoute(%s).Endpoint = %q, want %q", id, r.Endpoint, got.Endpoint)
		}
		sameTime(t, "GetRoute LastPing", r.LastPing, got.LastPing)
	}
	check(c.ConnectionID)
	check("minimal")
	if r, _ := rg.GetRoute(ctx, "minimal"); r.Endpoint != "" || !r.LastPing.IsZero() {
		t.Errorf("GetRoute of a record with neither field = %+v, want zero", r)
	}
	at := e.clock.Now().Add(1500 * time.Millisecond)
	wantErr(t, "UpdateLastPing", e.conns.UpdateLastPing(ctx, c.ConnectionID, at), nil)
	check(c.ConnectionID)
	r, _ := rg.GetRoute(ctx, c.ConnectionID)
	sameTime(t, "GetRoute LastPing after UpdateLastPing", r.LastPing, at)

	_, err := rg.GetRoute(ctx, "nope")
	wantErr(t, "GetRoute missing", err, store.ErrNotFound)
	_, err = rg.GetRoute(ctx, "")
	wantErr(t, "GetRoute empty ID", err, store.ErrInvalidInput)
	e.clock.Advance(10 * time.Second) // TTL == now: expired
	_, err = rg.GetRoute(ctx, c.ConnectionID)
	wantErr(t, "GetRoute at TTL", err, store.ErrNotFound)
	_, err = rg.GetRoute(cancelledContext(), "minimal")
	wantErr(t, "GetRoute with a cancelled context", err, context.Canceled)
}

// testRoutesBatch: a store that is a store.RoutesGetter returns the Route
// of every live connection among many IDs (more than one DynamoDB batch,
// with duplicates), and leaves out absent and expired ones.
func testRoutesBatch(t *testing.T, e *env) {
	rg, ok := e.conns.(store.RoutesGetter)
	if !ok {
		t.Skip("the store is not a store.RoutesGetter")
	}
	ctx := t.Context()
	var ids []string
	for i := range 150 {
		c := fullConnection(e, fmt.Sprintf("r%03d=", i))
		c.Endpoint = fmt.Sprintf("https://api%d.example.com/prod", i%3)
		if i%10 == 0 {
			c.TTL = e.clock.Now().Add(5 * time.Second).Unix()
		}
		wantErr(t, "Save", e.conns.Save(ctx, c), nil)
		ids = append(ids, c.ConnectionID)
	}
	asked := append(append(slices.Clone(ids), ids[:5]...), "absent-1", "absent-2")
	got, err := rg.GetRoutes(ctx, asked)
	wantErr(t, "GetRoutes", err, nil)
	if len(got) != len(ids) {
		t.Fatalf("GetRoutes: %d routes, want %d", len(got), len(ids))
	}
	for i, id := range ids {
		if want := fmt.Sprintf("https://api%d.example.com/prod", i%3); got[id].Endpoint != want {
			t.Errorf("GetRoutes[%s].Endpoint = %q, want %q", id, got[id].Endpoint, want)
		}
	}
	e.clock.Advance(5 * time.Second) // every tenth is now expired
	got, err = rg.GetRoutes(ctx, ids)
	wantErr(t, "GetRoutes after expiry", err, nil)
	if len(got) != 135 {
		t.Errorf("GetRoutes after expiry: %d routes, want 135", len(got))
	}
	if _, ok := got[ids[0]]; ok {
		t.Errorf("GetRoutes returned expired %s", ids[0])
	}
	_, err = rg.GetRoutes(cancelledContext(), ids)
	wantErr(t, "GetRoutes with a cancelled context", err, context.Canceled)
}
