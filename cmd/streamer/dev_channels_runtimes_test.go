package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// TestDevChannelsAcrossRuntimes: three `streamer dev` runtimes share one
// DynamoDB-API server, as Lambdas, APIs or Regions share a table. Each
// subscriber is connected to one runtime; publications made through every
// runtime reach every subscriber, each exactly once and in offset order,
// and no runtime deletes another's live connection records (each answers
// 410 for connections it does not hold).
func TestDevChannelsAcrossRuntimes(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prefix := dynamotest.Prefix("devrt")
	const runtimes, perRuntime, publications = 3, 4, 30
	stacks := make([]*devStack, runtimes)
	var mint func(user, tenant string) string
	for i := range stacks {
		stacks[i], mint = startJWTDev(t, ctx, "--dynamodb-endpoint", endpoint, "--table-prefix", prefix)
	}
	var subs []*chanClient
	for r, s := range stacks {
		for i := range perRuntime {
			c := dialChannels(ctx, t, s.wsURL, mint(fmt.Sprintf("u%d-%d", r, i), "acme"))
			c.name = fmt.Sprintf("runtime %d client %d", r, i)
			if m := c.subscribe(ctx, "s", "chat:across", ""); m.Type != protocol.TypeSubscribed {
				t.Fatalf("%s subscribe: %+v", c.name, m)
			}
			subs = append(subs, c)
		}
	}
	for n := range publications {
		pub := subs[(n%runtimes)*perRuntime] // through runtime n%3
		id := fmt.Sprintf("p%d", n)
		pub.send(ctx, `{"type":"publish","id":%q,"channel":"chat:across","data":{"n":%d}}`, id, n)
		if m := pub.next(ctx, reply(id)); m.Type != protocol.TypeResponse {
			t.Fatalf("publish %d: %+v", n, m)
		}
	}
	for _, c := range subs {
		seen := map[uint64]bool{}
		for len(seen) < publications {
			m := c.next(ctx, ofType(protocol.TypePublication))
			if seen[m.Offset] || m.Offset < 1 || m.Offset > publications {
				t.Fatalf("%s: offset %d again or out of range", c.name, m.Offset)
			}
			seen[m.Offset] = true
		}
	}
	for _, s := range stacks {
		if err := s.channels.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every subscription and every connection record is still there.
	subs[0].send(ctx, `{"type":"presence","id":"pr","channel":"chat:across"}`)
	m := subs[0].next(ctx, reply("pr"))
	if m.Type != protocol.TypePresence || len(m.Members) != len(subs) {
		t.Fatalf("presence: %d members (%s), want %d", len(m.Members), m.Type, len(subs))
	}
	st := dynamo.New(dynamotest.Client(t), dynamo.WithPrefix(prefix))
	for _, mem := range m.Members {
		if _, err := st.Get(ctx, mem.ConnectionID); err != nil {
			t.Errorf("record of live %s (%s): %v", mem.ConnectionID, mem.UserID, err)
		}
	}
	for _, s := range stacks {
		st := s.mgr.Stats()
		if gone := st.ErrorsByType["gone"]; gone != 0 {
			t.Errorf("a runtime saw %d 410s", gone)
		}
	}
}
