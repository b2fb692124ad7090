package channel_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// slowPut holds back the PutItem of publications until release is
// closed, and counts Queries, so a test can make a publisher stall
// between taking its offset and writing its entry for as long as it
// needs.
type slowPut struct {
	dynamo.Client
	putting chan struct{} // closed when a held-back PutItem starts
	release chan struct{}
	queries atomic.Int64
	reread  chan struct{} // closed at the 20th Query
	held    atomic.Bool
}

func (c *slowPut) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, ok := in.Item["data"]; ok && c.held.CompareAndSwap(false, true) {
		close(c.putting)
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Client.PutItem(ctx, in, o...)
}

func (c *slowPut) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if c.queries.Add(1) == 20 {
		close(c.reread)
	}
	return c.Client.Query(ctx, in, o...)
}

// TestDynamoHistoryWaitsForASlowPublisher: a publisher that stalls
// between its counter and its put, for far more Queries than a few
// rereads (as it does on a loaded host), is still in the history that
// History returns, which holds every offset up to the position.
func TestDynamoHistoryWaitsForASlowPublisher(t *testing.T) {
	raw := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, raw, "slowput")
	c := &slowPut{Client: raw, putting: make(chan struct{}), release: make(chan struct{}), reread: make(chan struct{})}
	st := channel.NewDynamoStore(c, channel.WithDynamoPrefix(prefix))
	ctx := t.Context()
	key := channel.Key("acme", "slow")
	h := channel.HistoryOptions{Size: 10}
	published := make(chan error, 1)
	go func() {
		_, err := st.Publish(ctx, key, channel.Entry{Data: []byte(`"slow"`)}, h)
		published <- err
	}()
	<-c.putting
	// A publisher after it finishes, leaving offset 1 a hole under 2.
	if _, err := st.Publish(ctx, key, channel.Entry{Data: []byte(`"fast"`)}, h); err != nil {
		t.Fatal(err)
	}
	type result struct {
		entries []channel.Entry
		pos     channel.Position
		err     error
	}
	got := make(chan result, 1)
	go func() {
		entries, pos, err := st.History(ctx, key, 0)
		got <- result{entries, pos, err}
	}()
	// Release the put only once History has read again many times.
	select {
	case r := <-got:
		t.Fatalf("History returned while the publisher of offset 1 was still writing: %+v", r)
	case <-c.reread:
	}
	close(c.release)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.pos.Offset != 2 || len(r.entries) != 2 || r.entries[0].Offset != 1 || string(r.entries[0].Data) != `"slow"` || r.entries[1].Offset != 2 {
		t.Fatalf("history at %+v: %+v; want offsets 1 (slow) and 2", r.pos, r.entries)
	}
}
