package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// wire is a real @connections endpoint (connectiontest.NewServer) with a
// real connection.Manager in front of it.
type wire struct {
	srv *connectiontest.Server
	mgr *connection.Manager
}

func newWire(t *testing.T) *wire {
	t.Helper()
	srv := connectiontest.NewServer()
	client := srv.Client()
	mgr := connection.NewManager(memory.New(), client, srv.URL,
		connection.WithRetry(connection.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Shutdown(ctx); err != nil {
			t.Errorf("manager shutdown: %v", err)
		}
		srv.Close()
		closeIdle(client)
	})
	return &wire{srv: srv, mgr: mgr}
}

func closeIdle(c *apigatewaymanagementapi.Client) {
	if h, ok := c.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
		h.CloseIdleConnections()
	}
}

// newService returns a Service over st and w, shut down at cleanup.
func newService(t *testing.T, st channel.Store, w *wire, opts ...channel.Option) *channel.Service {
	t.Helper()
	svc := channel.New(st, w.mgr, opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("channel shutdown: %v", err)
		}
	})
	return svc
}

// stores returns the stores the real-path tests run on: memory always,
// DynamoDB on dynalite when it is there.
func stores(t *testing.T) map[string]func(t *testing.T) channel.Store {
	return map[string]func(t *testing.T) channel.Store{
		"memory": func(t *testing.T) channel.Store { return channel.NewMemoryStore() },
		"dynamodb": func(t *testing.T) channel.Store {
			client := dynamotest.Client(t)
			prefix := dynamotest.Tables(t, client, "chansvc")
			return channel.NewDynamoStore(client, channel.WithDynamoPrefix(prefix))
		},
	}
}

func subscribe(t *testing.T, svc *channel.Service, conn, user, tenant, name string) {
	t.Helper()
	reply, err := svc.ServeChannel(t.Context(), &streamer.ChannelRequest{
		Type: protocol.TypeSubscribe, ID: "s", Channel: name, ConnectionID: conn,
		Identity: streamer.Identity{UserID: user, TenantID: tenant},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reply.(protocol.Subscribed); !ok {
		t.Fatalf("subscribe reply %#v", reply)
	}
}

// offsets decodes the publications a connection received.
func offsets(t *testing.T, msgs [][]byte) []uint64 {
	t.Helper()
	var out []uint64
	for _, b := range unbatch(t, msgs) {
		var p protocol.Publication
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type == protocol.TypePublication {
			out = append(out, p.Offset)
		}
	}
	return out
}

// unbatch returns the messages posts carried, each batch replaced by the
// messages it holds.
func unbatch(t *testing.T, posts [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, b := range posts {
		var batch protocol.Batch
		if err := json.Unmarshal(b, &batch); err != nil {
			t.Fatalf("undecodable post %s: %v", b, err)
		}
		if batch.Type != protocol.TypeBatch {
			out = append(out, b)
			continue
		}
		if len(b) > channel.MaxFrameBytes {
			t.Errorf("batch of %d bytes, over a frame", len(b))
		}
		for _, m := range batch.Messages {
			out = append(out, m)
		}
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestConcurrentPublishers: 8 goroutines publish on one channel at once;
// offsets are 1..N with no gap or duplicate, and a subscriber receives
// all N in offset order (one process orders its fan-out), on both stores.
func TestConcurrentPublishers(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			w := newWire(t)
			svc := newService(t, mk(t), w)
			subscribe(t, svc, "sub-1", "u", "acme", "news")
			const publishers, each = 8, 25
			var (
				mu   sync.Mutex
				got  []uint64
				wg   sync.WaitGroup
				errs = make(chan error, publishers)
			)
			for p := range publishers {
				wg.Go(func() {
					for i := range each {
						off, err := svc.In("acme").Publish(t.Context(), "news", map[string]int{"p": p, "i": i})
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						got = append(got, off)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			slices.Sort(got)
			if want := seq(1, publishers*each); !slices.Equal(got, want) {
				t.Fatalf("offsets %v", got)
			}
			if err := svc.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if recv := offsets(t, w.srv.Received("sub-1")); !slices.Equal(recv, seq(1, publishers*each)) {
				t.Errorf("subscriber received %v, want 1..%d in order", recv, publishers*each)
			}
		})
	}
}

// TestFanOutUnderFaults: while 10 % of the posts of every publication fail
// once with a 5xx and 5 % of the subscribers are gone, every live
// subscriber receives every publication exactly once and in order, the
// gone ones are unsubscribed, and the history holds every publication.
func TestFanOutUnderFaults(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			w := newWire(t)
			st := mk(t)
			svc := newService(t, st, w)
			const subs, pubs = 100, 20
			r := rand.New(rand.NewPCG(8, 8))
			ids := make([]string, subs)
			gone := map[string]bool{}
			for i := range ids {
				ids[i] = fmt.Sprintf("conn-%03d=", i)
				subscribe(t, svc, ids[i], fmt.Sprintf("u%d", i), "acme", "feed")
				if r.Float64() < 0.05 {
					gone[ids[i]] = true
				}
			}
			if len(gone) == 0 {
				t.Fatal("no gone subscriber drawn")
			}
			for id := range gone {
				w.srv.Disconnect(id)
			}
			failedOnce := 0
			for n := 1; n <= pubs; n++ {
				for _, id := range ids {
					if !gone[id] && r.Float64() < 0.10 {
						w.srv.Script(id, 500+r.IntN(4))
						failedOnce++
					}
				}
				if _, err := svc.In("acme").Publish(t.Context(), "feed", map[string]int{"n": n}); err != nil {
					t.Fatal(err)
				}
				// One publication's faults at a time, so each script
				// meets the publication it was drawn for.
				if err := svc.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if failedOnce == 0 {
				t.Fatal("no transient failure drawn")
			}
			for _, id := range ids {
				recv := offsets(t, w.srv.Received(id))
				if gone[id] {
					if len(recv) != 0 {
						t.Errorf("gone %s received %v", id, recv)
					}
					continue
				}
				if !slices.Equal(recv, seq(1, pubs)) {
					t.Errorf("%s received %v, want 1..%d once each", id, recv, pubs)
				}
			}
			list, err := st.Subscribers(t.Context(), channel.Key("acme", "feed"))
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != subs-len(gone) {
				t.Errorf("%d subscribers left, want %d", len(list), subs-len(gone))
			}
			for _, s := range list {
				if gone[s.ConnectionID] {
					t.Errorf("gone %s still subscribed", s.ConnectionID)
				}
			}
			entries, pos, err := st.History(t.Context(), channel.Key("acme", "feed"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if pos.Offset != pubs || len(entries) != pubs {
				t.Errorf("history: position %+v, %d entries, want %d", pos, len(entries), pubs)
			}
		})
	}
}

// TestPublishRefusals: the server's Publish refuses bad names, unknown
// namespaces and oversize data with the package's sentinels, and
// everything after Shutdown with ErrClosed.
func TestPublishRefusals(t *testing.T) {
	w := newWire(t)
	svc := channel.New(channel.NewMemoryStore(), w.mgr)
	ctx := t.Context()
	if _, err := svc.Publish(ctx, "bad name", 1); !errors.Is(err, channel.ErrInvalidChannel) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := svc.Publish(ctx, "nope:x", 1); !errors.Is(err, channel.ErrUnknownNamespace) {
		t.Errorf("unknown namespace: %v", err)
	}
	big := make([]byte, connection.MaxMessageBytes)
	for i := range big {
		big[i] = 'x'
	}
	if _, err := svc.Publish(ctx, "news", string(big)); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	if _, err := svc.Publish(ctx, "news", func() {}); err == nil {
		t.Error("unmarshallable data accepted")
	}
	if off, err := svc.Publish(ctx, "news", 1); err != nil || off != 1 {
		t.Errorf("good publish: %d, %v", off, err)
	}
	for range 2 {
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	if _, err := svc.Publish(ctx, "news", 1); !errors.Is(err, channel.ErrClosed) {
		t.Errorf("after Shutdown: %v", err)
	}
}

// TestAuthorizer: the app's hook sees the operation, channel and identity;
// a plain error refuses with FORBIDDEN, a ClientError with its own code;
// the built-in user rule runs first.
func TestAuthorizer(t *testing.T) {
	w := newWire(t)
	var seen []channel.Access
	svc := newService(t, channel.NewMemoryStore(), w,
		channel.WithNamespace("room", channel.Namespace{ClientPublish: true, Presence: true}),
		channel.WithAuthorizer(func(ctx context.Context, a channel.Access) error {
			seen = append(seen, a)
			switch a.Channel {
			case "room:secret":
				return errors.New("not on the list")
			case "room:later":
				return streamer.NewClientError(protocol.CodeRateLimited, "come back later")
			}
			return nil
		}))
	ask := func(typ protocol.MessageType, name, user string) error {
		_, err := svc.ServeChannel(t.Context(), &streamer.ChannelRequest{
			Type: typ, ID: "x", Channel: name, ConnectionID: "c-" + user, Data: []byte(`1`),
			Identity: streamer.Identity{UserID: user, TenantID: "t"},
		})
		return err
	}
	code := func(err error) protocol.ErrorCode {
		var ce *streamer.ClientError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return "none"
	}
	if err := ask(protocol.TypeSubscribe, "room:open", "alice"); err != nil {
		t.Errorf("open room: %v", err)
	}
	if c := code(ask(protocol.TypePublish, "room:secret", "alice")); c != protocol.CodeForbidden {
		t.Errorf("secret room: %s", c)
	}
	if c := code(ask(protocol.TypePresence, "room:later", "alice")); c != protocol.CodeRateLimited {
		t.Errorf("later room: %s", c)
	}
	n := len(seen)
	if c := code(ask(protocol.TypeSubscribe, "user:bob", "alice")); c != protocol.CodeForbidden {
		t.Errorf("another user's channel: %s", c)
	}
	if len(seen) != n {
		t.Error("the hook ran for a channel the user rule refused")
	}
	if err := ask(protocol.TypeSubscribe, "user:bob", "bob"); err != nil {
		t.Errorf("own user channel: %v", err)
	}
	if len(seen) == 0 || seen[0].Op != channel.OpSubscribe || seen[0].Namespace != "room" || seen[0].Identity.UserID != "alice" || seen[0].ConnectionID != "c-alice" {
		t.Errorf("hook saw %+v", seen)
	}
}

// TestSlowSubscriberNeverBlocksThePublisher: while the gateway holds a
// post to one subscriber, the publisher's calls keep returning; once it
// answers, every subscriber gets every publication, in order.
func TestSlowSubscriberNeverBlocksThePublisher(t *testing.T) {
	w := newWire(t)
	svc := newService(t, channel.NewMemoryStore(), w)
	subscribe(t, svc, "slow", "u1", "", "news")
	subscribe(t, svc, "fast", "u2", "", "news")
	arrived, release := w.srv.Hold("slow")
	defer release()
	if _, err := svc.Publish(t.Context(), "news", 1); err != nil {
		t.Fatal(err)
	}
	<-arrived // the first fan-out is now stuck on the slow subscriber
	for n := 2; n <= 5; n++ {
		if off, err := svc.Publish(t.Context(), "news", n); err != nil || off != uint64(n) {
			t.Fatalf("publish %d while a post is held: %d, %v", n, off, err)
		}
	}
	release()
	if err := svc.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"slow", "fast"} {
		if got := offsets(t, w.srv.Received(id)); !slices.Equal(got, seq(1, 5)) {
			t.Errorf("%s received %v, want 1..5", id, got)
		}
	}
}
