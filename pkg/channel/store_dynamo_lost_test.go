package channel_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// crashingPut fails the PutItem of the publication whose data is
// `"lost"` without writing it, as a publisher killed between taking its
// offset and storing its entry leaves the table.
type crashingPut struct {
	dynamo.Client
	crashed atomic.Bool
}

func (c *crashingPut) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if d, ok := in.Item["data"].(*types.AttributeValueMemberS); ok && d.Value == `"lost"` {
		c.crashed.Store(true)
		return nil, errors.New("publisher killed")
	}
	return c.Client.PutItem(ctx, in, o...)
}

// TestDynamoLostOffsetRecoversExactly: offset 2's publisher takes its
// offset and dies before storing the entry. A subscriber recovering
// across it, once the wait for it has passed, is told recovered:true with
// exactly the other publications (the history TTL's path, vouched for by
// offset 1, and from the start); a second recovery reads no more than one
// without a hole.
func TestDynamoLostOffsetRecoversExactly(t *testing.T) {
	raw := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, raw, "lost")
	crash := &crashingPut{Client: raw}
	c := dynamotest.NewCounter(crash)
	st := channel.NewDynamoStore(c, channel.WithDynamoPrefix(prefix), channel.WithDynamoHistoryWait(20*time.Millisecond))
	ctx := t.Context()
	w := newWire(t)
	svc := newService(t, st, w)
	for _, v := range []string{"one", "lost", "three", "four"} {
		_, err := svc.In("acme").Publish(ctx, "news", v)
		if (v == "lost") != (err != nil) {
			t.Fatalf("publishing %q: %v", v, err)
		}
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !crash.crashed.Load() {
		t.Fatal("the publisher of offset 2 did not crash")
	}
	pos, err := st.Position(ctx, channel.Key("acme", "news"))
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != 4 {
		t.Fatalf("position %+v, want offset 4", pos)
	}
	subscribe := func(after int64) protocol.Subscribed {
		t.Helper()
		reply, err := svc.ServeChannel(ctx, &streamer.ChannelRequest{
			Type: protocol.TypeSubscribe, ID: "x", Channel: "news", Since: &protocol.Since{Offset: after, Epoch: pos.Epoch},
			ConnectionID: "c1", Identity: streamer.Identity{UserID: "u", TenantID: "acme"},
		})
		if err != nil {
			t.Fatal(err)
		}
		sub, ok := reply.(protocol.Subscribed)
		if !ok {
			t.Fatalf("reply %T, want protocol.Subscribed", reply)
		}
		return sub
	}
	offsets := func(sub protocol.Subscribed) []uint64 {
		var out []uint64
		for _, p := range sub.Publications {
			out = append(out, p.Offset)
		}
		return out
	}
	c.Take()
	sub := subscribe(1)
	if !sub.Recovered || sub.Offset != 4 || !slices.Equal(offsets(sub), []uint64{3, 4}) {
		t.Fatalf("recovery from 1: recovered %v at %d with offsets %v; want true at 4 with 3 and 4", sub.Recovered, sub.Offset, offsets(sub))
	}
	if got := c.Take(); got["PutItem"] != 3 || got["GetItem"] != 2 {
		t.Errorf("recovery that marks offset 2 lost: calls %v, want 3 PutItem (2 subscribing, 1 mark) and 2 GetItem (counter, offset 1)", got)
	}
	for _, after := range []int64{1, 0} {
		sub := subscribe(after)
		want := []uint64{3, 4}
		if after == 0 {
			want = []uint64{1, 3, 4}
		}
		if !sub.Recovered || sub.Offset != 4 || !slices.Equal(offsets(sub), want) {
			t.Fatalf("recovery from %d: recovered %v at %d with offsets %v; want true at 4 with %v", after, sub.Recovered, sub.Offset, offsets(sub), want)
		}
		if got, want := c.Take(), map[string]int{"Query": 2, "PutItem": 2, "GetItem": 1}; !maps.Equal(got, want) {
			t.Errorf("recovery from %d across the lost mark: calls %v, want %v (no rereads)", after, got, want)
		}
	}
}

// TestDynamoSlowPublisherAfterLostMarkFails: a publisher that stalls
// between its counter and its put until a reader has marked its offset
// lost fails its Publish (unacknowledged), and the history stays exact.
func TestDynamoSlowPublisherAfterLostMarkFails(t *testing.T) {
	raw := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, raw, "lostslow")
	c := &slowPut{Client: raw, putting: make(chan struct{}), release: make(chan struct{}), reread: make(chan struct{})}
	st := channel.NewDynamoStore(c, channel.WithDynamoPrefix(prefix), channel.WithDynamoHistoryWait(0))
	ctx := t.Context()
	key := channel.Key("acme", "slow")
	h := channel.HistoryOptions{Size: 10}
	published := make(chan error, 1)
	go func() {
		_, err := st.Publish(ctx, key, channel.Entry{Data: []byte(`"slow"`)}, h)
		published <- err
	}()
	<-c.putting
	if _, err := st.Publish(ctx, key, channel.Entry{Data: []byte(`"fast"`)}, h); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		entries, pos, err := st.History(ctx, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		if pos.Offset != 2 || len(entries) != 2 || !entries[0].Lost || entries[0].Offset != 1 || len(entries[0].Data) != 0 ||
			entries[1].Lost || entries[1].Offset != 2 || string(entries[1].Data) != `"fast"` {
			t.Fatalf("history %s at %+v: %+v; want offset 1 lost and 2 (fast)", when, pos, entries)
		}
	}
	check("once the wait has passed")
	close(c.release)
	var cond *types.ConditionalCheckFailedException
	if err := <-published; !errors.As(err, &cond) {
		t.Fatalf("slow Publish after its offset was marked lost: %v; want a failed conditional put", err)
	}
	check("after the slow publisher's put")
}
