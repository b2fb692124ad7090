package connection_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// wrappedClient is an APIGatewayClient that is not an
// *apigatewaymanagementapi.Client (as a user's instrumented wrapper
// would be), so the manager cannot derive clients from its options.
type wrappedClient struct {
	*apigatewaymanagementapi.Client
	posts int
}

func (w *wrappedClient) PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	w.posts++
	return w.Client.PostToConnection(ctx, in, opts...)
}

func TestOtherEndpointThroughAWrappedClient(t *testing.T) {
	var w *wrappedClient
	f := newFixtureWithClient(t, func(endpoint string) connection.APIGatewayClient {
		w = &wrappedClient{Client: defaultSDKClient(endpoint).(*apigatewaymanagementapi.Client)}
		return w
	})
	other := connectiontest.NewServer()
	defer other.Close()
	ctx := context.Background()
	if err := f.store.Save(ctx, &store.Connection{ConnectionID: "far", Endpoint: other.URL}); err != nil {
		t.Fatal(err)
	}
	other.Script("far", 500, 500, 500, 500)
	err := f.m.Send(ctx, "far", "m")
	if err == nil {
		t.Fatal("scripted failures did not fail")
	}
	// The other endpoint got every attempt, exactly 4: the endpoint was
	// set per call and the SDK's own retries stayed off.
	if got := other.Attempts("far"); got != 4 {
		t.Errorf("other endpoint saw %d attempts, want 4", got)
	}
	if f.srv.TotalAttempts() != 0 || w.posts != 4 {
		t.Errorf("own endpoint %d attempts, wrapper %d posts", f.srv.TotalAttempts(), w.posts)
	}
}

func TestIsActiveAttemptsWithDefaultSDKClient(t *testing.T) {
	f := newFixtureWithClient(t, defaultSDKClient)
	f.connect(t, "c1")
	f.srv.Script("c1", 503, 503, 503, 503, 503)
	if f.m.IsActive(context.Background(), "c1") {
		t.Error("IsActive true after 503s")
	}
	if got := f.srv.Attempts("c1"); got != 4 {
		t.Errorf("GET attempts = %d, want 4 (SDK retries must stay off)", got)
	}
	if !f.exists(t, "c1") {
		t.Error("a 503 removed the record")
	}
}

func TestSendCancelDuringRequest(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	arrived, release := f.srv.Hold("c1")
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.m.Send(ctx, "c1", "m") }()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := f.srv.Attempts("c1"); got != 1 {
		t.Errorf("attempts = %d: a cancelled Send must not retry", got)
	}
	// A cancelled call says nothing about the connection's health.
	if got := breakers(f.m); got.Open != 0 || got.Closed != 0 {
		t.Errorf("breakers = %+v after a cancelled Send", got)
	}
}

// TestDefaultSDKClientNeverRetriesOnItsOwn drives every call the manager
// makes (Send to its own endpoint, Send through a client derived for
// another endpoint, Broadcast, IsActive on the derived client) through an
// SDK client left at its defaults, which would make 3 attempts per call:
// each path must show exactly the manager's 4 attempts, not 12.
func TestDefaultSDKClientNeverRetriesOnItsOwn(t *testing.T) {
	f := newFixtureWithClient(t, defaultSDKClient)
	other := connectiontest.NewServer()
	defer other.Close()
	ctx := context.Background()
	f.connect(t, "own")
	if err := f.store.Save(ctx, &store.Connection{ConnectionID: "far", Endpoint: other.URL}); err != nil {
		t.Fatal(err)
	}
	fail := []int{500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500}

	f.srv.Script("own", fail...)
	if err := f.m.Send(ctx, "own", "m"); err == nil {
		t.Error("Send: scripted failures did not fail")
	}
	if got := f.srv.Attempts("own"); got != 4 {
		t.Errorf("Send to own endpoint: %d attempts, want 4", got)
	}

	other.Script("far", fail...)
	if err := f.m.Send(ctx, "far", "m"); err == nil {
		t.Error("Send far: scripted failures did not fail")
	}
	if got := other.Attempts("far"); got != 4 {
		t.Errorf("Send through the derived client: %d attempts, want 4", got)
	}

	f.srv.Script("b", fail...)
	if err := f.m.Broadcast(ctx, []string{"b", "own"}, "m"); err == nil {
		t.Error("Broadcast: scripted failures did not fail")
	}
	if got := f.srv.Attempts("b"); got != 4 {
		t.Errorf("Broadcast: %d attempts, want 4", got)
	}

	other.Script("far", 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	before := other.Attempts("far")
	if f.m.IsActive(ctx, "far") {
		t.Error("IsActive true after 503s")
	}
	if got := other.Attempts("far") - before; got != 4 {
		t.Errorf("IsActive through the derived client: %d attempts, want 4", got)
	}
}

// TestSendRoutesByTheRecordWithOrWithoutRouteGetter: the endpoint and
// LastPing a Send acts on come from the record, whether the store answers
// GetRoute (the memory store) or only Get.
func TestSendRoutesByTheRecordWithOrWithoutRouteGetter(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(store.ConnectionStore) store.ConnectionStore
	}{
		{"GetRoute", func(s store.ConnectionStore) store.ConnectionStore { return s }},
		{"Get", func(s store.ConnectionStore) store.ConnectionStore { return getOnlyStore{s} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own, other := connectiontest.NewServer(), connectiontest.NewServer()
			defer own.Close()
			defer other.Close()
			st := memory.New()
			m := connection.NewManager(tc.wrap(st), own.FastClient(), own.URL)
			defer m.Shutdown(context.Background())
			ctx := context.Background()
			stale := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
			if err := st.Save(ctx, &store.Connection{ConnectionID: "far", Endpoint: other.URL, LastPing: stale}); err != nil {
				t.Fatal(err)
			}
			if err := m.Send(ctx, "far", "m"); err != nil {
				t.Fatal(err)
			}
			if got := len(other.Received("far")); got != 1 || own.TotalAttempts() != 0 {
				t.Fatalf("record's endpoint got %d messages, manager's %d attempts; want 1 and 0", got, own.TotalAttempts())
			}
			// The stale LastPing was seen: the Send refreshed it.
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			c, err := st.Get(ctx, "far")
			if err != nil {
				t.Fatal(err)
			}
			if !c.LastPing.After(stale) {
				t.Errorf("LastPing = %v, not refreshed from %v", c.LastPing, stale)
			}
			if err := m.Send(ctx, "absent", "m"); !errors.Is(err, connection.ErrConnectionNotFound) {
				t.Errorf("Send to an absent ID: %v, want ErrConnectionNotFound", err)
			}
		})
	}
}
