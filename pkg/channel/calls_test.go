package channel_test

import (
	"maps"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// TestDynamoStoreCalls pins the DynamoDB calls of every store operation
// and of the service's subscribe, publish (with its fan-out) and
// disconnect, as channel.DynamoStore's documentation and
// docs/PERFORMANCE.md state them.
func TestDynamoStoreCalls(t *testing.T) {
	raw := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, raw, "calls")
	c := dynamotest.NewCounter(raw)
	st := channel.NewDynamoStore(c, channel.WithDynamoPrefix(prefix))
	ctx := t.Context()
	key := channel.Key("acme", "news")
	exp := time.Now().Add(time.Hour)
	h := channel.HistoryOptions{Size: 2, TTL: time.Hour}
	check := func(op string, want map[string]int) {
		t.Helper()
		if got := c.Take(); !maps.Equal(got, want) {
			t.Errorf("%s: calls %v, want %v", op, got, want)
		}
	}

	if _, err := st.Position(ctx, key); err != nil {
		t.Fatal(err)
	}
	check("Position of a new channel", map[string]int{"GetItem": 1, "PutItem": 1})
	if _, err := st.Position(ctx, key); err != nil {
		t.Fatal(err)
	}
	check("Position", map[string]int{"GetItem": 1})
	if _, err := st.Subscribe(ctx, key, channel.Subscriber{ConnectionID: "c1", UserID: "u"}, exp); err != nil {
		t.Fatal(err)
	}
	check("Subscribe", map[string]int{"PutItem": 2})
	for range 2 {
		if _, err := st.Publish(ctx, key, channel.Entry{Data: []byte(`1`)}, h); err != nil {
			t.Fatal(err)
		}
	}
	check("2 Publish while the history fills", map[string]int{"UpdateItem": 2, "PutItem": 2})
	if _, err := st.Publish(ctx, key, channel.Entry{Data: []byte(`1`)}, h); err != nil {
		t.Fatal(err)
	}
	check("Publish with a full history", map[string]int{"UpdateItem": 1, "PutItem": 1, "DeleteItem": 1})
	// Another channel: a publication kept in no history would leave a
	// hole in this one's, which History reads again for.
	if _, err := st.Publish(ctx, channel.Key("acme", "quiet"), channel.Entry{Data: []byte(`1`)}, channel.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	check("Publish without history", map[string]int{"UpdateItem": 1})
	if _, _, err := st.History(ctx, key, 1); err != nil {
		t.Fatal(err)
	}
	check("History", map[string]int{"GetItem": 1, "Query": 1})
	if _, err := st.Subscribers(ctx, key); err != nil {
		t.Fatal(err)
	}
	check("Subscribers", map[string]int{"Query": 1})
	if _, err := st.Subscriptions(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	check("Subscriptions", map[string]int{"Query": 1})
	if _, _, err := st.Unsubscribe(ctx, key, "c1"); err != nil {
		t.Fatal(err)
	}
	check("Unsubscribe", map[string]int{"DeleteItem": 2})

	// Through the service: what one client message costs.
	w := newWire(t)
	svc := newService(t, st, w, channel.WithNamespace("chat", channel.Namespace{HistorySize: 100, ClientPublish: true, JoinLeave: true}))
	serve := func(typ protocol.MessageType, name string, since *protocol.Since) {
		t.Helper()
		if _, err := svc.ServeChannel(ctx, &streamer.ChannelRequest{
			Type: typ, ID: "x", Channel: name, Since: since, Data: []byte(`{"a":1}`), ConnectionID: "c2",
			Identity: streamer.Identity{UserID: "u", TenantID: "acme"},
		}); err != nil {
			t.Fatal(err)
		}
		if err := svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	serve(protocol.TypeSubscribe, "news", nil)
	check("subscribe", map[string]int{"Query": 2, "PutItem": 2, "GetItem": 1})
	serve(protocol.TypeSubscribe, "news", &protocol.Since{Offset: 1, Epoch: "e"})
	check("subscribe with since", map[string]int{"Query": 2, "PutItem": 2, "GetItem": 1})
	if _, err := svc.In("acme").Publish(ctx, "news", 1); err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("server publish with its fan-out", map[string]int{"UpdateItem": 1, "PutItem": 1, "Query": 1})
	serve(protocol.TypeSubscribe, "chat:a", nil)
	// A channel seen for the first time also creates its counter item.
	check("subscribe to a new channel, with a join event", map[string]int{"Query": 3, "PutItem": 3, "GetItem": 1})
	serve(protocol.TypePublish, "chat:a", nil)
	check("client publish with its fan-out", map[string]int{"UpdateItem": 1, "PutItem": 1, "Query": 1})
	if err := svc.RemoveConnection(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("disconnect of a connection with 2 subscriptions (one with leave events)", map[string]int{"Query": 2, "DeleteItem": 4})
}

// BenchmarkDynamoPublish measures DynamoStore.Publish on dynalite with a
// full history (the steady state: UpdateItem, PutItem, DeleteItem) and
// reports the DynamoDB calls per publication.
//
//	./scripts/with-dynalite.sh go test -run '^$' -bench DynamoPublish ./pkg/channel/
func BenchmarkDynamoPublish(b *testing.B) {
	raw := dynamotest.Client(b)
	prefix := dynamotest.Tables(b, raw, "bench")
	c := dynamotest.NewCounter(raw)
	st := channel.NewDynamoStore(c, channel.WithDynamoPrefix(prefix))
	key := channel.Key("acme", "bench")
	h := channel.HistoryOptions{Size: 10, TTL: time.Hour}
	data := []byte(`{"price":101.25,"symbol":"ACME"}`)
	for range h.Size {
		if _, err := st.Publish(b.Context(), key, channel.Entry{Data: data}, h); err != nil {
			b.Fatal(err)
		}
	}
	c.Take()
	for b.Loop() {
		if _, err := st.Publish(b.Context(), key, channel.Entry{Data: data}, h); err != nil {
			b.Fatal(err)
		}
	}
	total := 0
	for _, n := range c.Take() {
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "calls/op")
}
