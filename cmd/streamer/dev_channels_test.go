package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// chanMessage is any server message of the channel protocol, read
// generically.
type chanMessage struct {
	Type         protocol.MessageType `json:"type"`
	RequestID    string               `json:"request_id"`
	Channel      string               `json:"channel"`
	Offset       uint64               `json:"offset"`
	Epoch        string               `json:"epoch"`
	Recovered    bool                 `json:"recovered"`
	Publications []chanMessage        `json:"publications"`
	Data         json.RawMessage      `json:"data"`
	Info         *protocol.ClientInfo `json:"info"`
	Members      []protocol.Member    `json:"members"`
	Code         protocol.ErrorCode   `json:"code"`
	Message      string               `json:"message"`
	Messages     []json.RawMessage    `json:"messages"`
}

// unbatch returns the messages m stands for: those a batch holds, in
// order, or m itself.
func unbatch(m chanMessage) ([]chanMessage, error) {
	if m.Type != protocol.TypeBatch {
		return []chanMessage{m}, nil
	}
	out := make([]chanMessage, len(m.Messages))
	for i, b := range m.Messages {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("batch message %s: %w", b, err)
		}
	}
	return out, nil
}

// chanClient is a WebSocket client whose messages a reader goroutine
// collects, so events interleaved with replies are never lost.
type chanClient struct {
	t    testing.TB
	name string
	c    *websocket.Conn
	in   chan chanMessage
	done chan struct{}
	// backlog holds messages read but not yet matched, oldest first.
	backlog []chanMessage
}

func dialChannels(ctx context.Context, t testing.TB, url, token string) *chanClient {
	t.Helper()
	var opts *websocket.DialOptions
	if token != "" {
		opts = &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}}
	}
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	cc := &chanClient{t: t, c: c, in: make(chan chanMessage, 4096), done: make(chan struct{})}
	go func() {
		defer close(cc.done)
		defer close(cc.in)
		for {
			_, b, err := c.Read(context.WithoutCancel(ctx))
			if err != nil {
				return
			}
			var m chanMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("undecodable server message %s: %v", b, err)
				return
			}
			msgs, err := unbatch(m)
			if err != nil {
				t.Errorf("undecodable batch: %v", err)
				return
			}
			for _, m := range msgs {
				cc.in <- m
			}
		}
	}()
	t.Cleanup(cc.close)
	return cc
}

// close ends the connection and waits for the reader.
func (c *chanClient) close() {
	c.c.CloseNow()
	<-c.done
}

func (c *chanClient) send(ctx context.Context, format string, args ...any) {
	c.t.Helper()
	if err := c.c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, format, args...)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the oldest message that match accepts; the others stay in
// the backlog for later calls.
func (c *chanClient) next(ctx context.Context, match func(chanMessage) bool) chanMessage {
	c.t.Helper()
	for i, m := range c.backlog {
		if match(m) {
			c.backlog = append(c.backlog[:i:i], c.backlog[i+1:]...)
			return m
		}
	}
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting", c.name)
			}
			if match(m) {
				return m
			}
			c.backlog = append(c.backlog, m)
		case <-ctx.Done():
			c.t.Fatalf("%s: no matching message: %v", c.name, ctx.Err())
		}
	}
}

func reply(id string) func(chanMessage) bool {
	return func(m chanMessage) bool { return m.RequestID == id }
}

func ofType(t protocol.MessageType) func(chanMessage) bool {
	return func(m chanMessage) bool { return m.Type == t }
}

// startJWTDev runs `streamer dev` in process with HS256 auth and returns
// it with a token minter.
func startJWTDev(t *testing.T, ctx context.Context, extra ...string) (*devStack, func(user, tenant string) string) {
	t.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef-channels")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseDevFlags(append([]string{"--addr", "127.0.0.1:0", "--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", file}, extra...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	mint := func(user, tenant string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": user, "tenant_id": tenant, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return s, mint
}

// TestDevChannelsEndToEnd: 20 clients of two tenants on 5 channels of the
// demo's chat namespace, through `streamer dev`. Every client receives
// exactly its channels' publications of its own tenant, in offset order;
// unsubscribe stops delivery; presence lists exactly the live subscribers,
// and an abrupt TCP close removes one (with a leave event).
func TestDevChannelsEndToEnd(t *testing.T) {
	t.Run("memory", func(t *testing.T) { devChannelsEndToEnd(t) })
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := dynamotest.Endpoint(t)
		devChannelsEndToEnd(t, "--dynamodb-endpoint", endpoint, "--table-prefix", dynamotest.Prefix("devchan"))
	})
}

func devChannelsEndToEnd(t *testing.T, extra ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, mint := startJWTDev(t, ctx, extra...)

	const clients, channels, perChannel = 20, 5, 5
	tenantOf := func(i int) string { return []string{"acme", "globex"}[i/10] }
	chansOf := func(i int) []string {
		return []string{fmt.Sprintf("chat:r%d", i%channels), fmt.Sprintf("chat:r%d", (i+2)%channels)}
	}
	cs := make([]*chanClient, clients)
	for i := range cs {
		cs[i] = dialChannels(ctx, t, s.wsURL, mint(fmt.Sprintf("u%d", i), tenantOf(i)))
		cs[i].name = fmt.Sprintf("client %d", i)
		for j, ch := range chansOf(i) {
			id := fmt.Sprintf("s%d", j)
			cs[i].send(ctx, `{"type":"subscribe","id":%q,"channel":%q}`, id, ch)
			if m := cs[i].next(ctx, reply(id)); m.Type != protocol.TypeSubscribed || m.Channel != ch || m.Epoch == "" || m.Offset != 0 {
				t.Fatalf("client %d subscribe %s: %+v", i, ch, m)
			}
		}
	}

	// Each tenant's publisher (a client of that tenant, subscribed or not)
	// publishes perChannel times on every channel.
	for _, pub := range []int{0, 10} {
		for c := range channels {
			for n := 1; n <= perChannel; n++ {
				id := fmt.Sprintf("p%d-%d", c, n)
				cs[pub].send(ctx, `{"type":"publish","id":%q,"channel":"chat:r%d","data":{"tenant":%q,"n":%d}}`, id, c, tenantOf(pub), n)
				if m := cs[pub].next(ctx, reply(id)); m.Type != protocol.TypeResponse {
					t.Fatalf("publish reply %+v", m)
				}
			}
		}
	}
	for i, c := range cs {
		last := map[string]uint64{}
		for range 2 * perChannel {
			m := c.next(ctx, ofType(protocol.TypePublication))
			var d struct {
				Tenant string `json:"tenant"`
				N      uint64 `json:"n"`
			}
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Fatal(err)
			}
			switch {
			case !slices.Contains(chansOf(i), m.Channel):
				t.Errorf("client %d got a publication of %s", i, m.Channel)
			case d.Tenant != tenantOf(i):
				t.Errorf("client %d of %s got %s's publication", i, tenantOf(i), d.Tenant)
			case m.Offset != last[m.Channel]+1 || d.N != m.Offset:
				t.Errorf("client %d on %s: offset %d (n %d) after %d", i, m.Channel, m.Offset, d.N, last[m.Channel])
			case m.Info == nil || m.Info.UserID != fmt.Sprintf("u%d", i/10*10):
				t.Errorf("client %d: publication info %+v", i, m.Info)
			}
			last[m.Channel] = m.Offset
		}
	}

	// Exactly those: once the fan-out has run, nothing else is queued for
	// any client before the answer to its ping.
	if err := s.channels.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		c.backlog = slices.DeleteFunc(c.backlog, func(m chanMessage) bool { return m.Type != protocol.TypePublication })
		c.send(ctx, `{"type":"ping"}`)
		c.next(ctx, ofType(protocol.TypePong))
		for _, m := range c.backlog {
			if m.Type == protocol.TypePublication {
				t.Errorf("client %d got an extra publication %+v", i, m)
			}
		}
		c.backlog = nil
	}

	// Unsubscribe stops delivery: client 0 leaves chat:r0, client 5 (same
	// tenant and channel) still gets the next publication; once the
	// fan-out has run, client 0's next message is its pong.
	cs[0].send(ctx, `{"type":"unsubscribe","id":"u1","channel":"chat:r0"}`)
	if m := cs[0].next(ctx, reply("u1")); m.Type != protocol.TypeUnsubscribed || m.Channel != "chat:r0" {
		t.Fatalf("unsubscribe reply %+v", m)
	}
	cs[1].send(ctx, `{"type":"publish","id":"late","channel":"chat:r0","data":{"tenant":"acme","n":%d}}`, perChannel+1)
	cs[5].next(ctx, func(m chanMessage) bool { return m.Type == protocol.TypePublication && m.Offset == perChannel+1 })
	if err := s.channels.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cs[0].backlog = nil
	cs[0].send(ctx, `{"type":"ping"}`)
	cs[0].next(ctx, ofType(protocol.TypePong))
	for _, m := range cs[0].backlog {
		if m.Type == protocol.TypePublication {
			t.Errorf("client 0 got %+v after unsubscribing", m)
		}
	}

	// Presence: chat:r1 in acme has clients 1, 4, 6 and 9.
	presence := func(c *chanClient, id string) []string {
		c.send(ctx, `{"type":"presence","id":%q,"channel":"chat:r1"}`, id)
		m := c.next(ctx, reply(id))
		if m.Type != protocol.TypePresence {
			t.Fatalf("presence reply %+v", m)
		}
		var users []string
		for _, mem := range m.Members {
			if mem.ConnectionID == "" {
				t.Errorf("member without a connection id: %+v", mem)
			}
			users = append(users, mem.UserID)
		}
		slices.Sort(users)
		return users
	}
	if got, want := presence(cs[1], "pr1"), []string{"u1", "u4", "u6", "u9"}; !slices.Equal(got, want) {
		t.Errorf("presence %v, want %v", got, want)
	}
	if got, want := presence(cs[11], "pr2"), []string{"u11", "u14", "u16", "u19"}; !slices.Equal(got, want) {
		t.Errorf("globex presence %v, want %v", got, want)
	}
	// Client 4 drops its TCP connection without a close frame.
	cs[4].close()
	cs[1].next(ctx, func(m chanMessage) bool {
		return m.Type == protocol.TypeLeave && m.Channel == "chat:r1" && m.Info != nil && m.Info.UserID == "u4"
	})
	if got, want := presence(cs[1], "pr3"), []string{"u1", "u6", "u9"}; !slices.Equal(got, want) {
		t.Errorf("presence after the abrupt close %v, want %v", got, want)
	}
}

// subscribe sends a subscribe (since may be "") and returns the reply.
func (c *chanClient) subscribe(ctx context.Context, id, channel, since string) chanMessage {
	c.t.Helper()
	if since != "" {
		c.send(ctx, `{"type":"subscribe","id":%q,"channel":%q,"since":%s}`, id, channel, since)
	} else {
		c.send(ctx, `{"type":"subscribe","id":%q,"channel":%q}`, id, channel)
	}
	return c.next(ctx, reply(id))
}

// TestDevChannelsRecovery: a client that was away while 50 publications
// happened gets exactly those 50, in order, with recovered:true; beyond the
// history size, or with an epoch that is not the channel's, it gets
// recovered:false and no publications.
func TestDevChannelsRecovery(t *testing.T) {
	t.Run("memory", func(t *testing.T) { devChannelsRecovery(t) })
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := dynamotest.Endpoint(t)
		devChannelsRecovery(t, "--dynamodb-endpoint", endpoint, "--table-prefix", dynamotest.Prefix("devchan"))
	})
}

func devChannelsRecovery(t *testing.T, extra ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, mint := startJWTDev(t, ctx, extra...)
	pub := s.channels.svc.In("acme")
	const channel = "chat:recovery"

	c := dialChannels(ctx, t, s.wsURL, mint("alice", "acme"))
	first := c.subscribe(ctx, "s1", channel, "")
	if first.Type != protocol.TypeSubscribed || first.Offset != 0 || first.Epoch == "" || len(first.Publications) != 0 {
		t.Fatalf("first subscribe %+v", first)
	}
	for n := 1; n <= 3; n++ {
		if _, err := pub.Publish(ctx, channel, map[string]int{"n": n}); err != nil {
			t.Fatal(err)
		}
	}
	var seen uint64
	for seen < 3 {
		m := c.next(ctx, ofType(protocol.TypePublication))
		if m.Offset != seen+1 || m.Epoch != first.Epoch {
			t.Fatalf("live publication %+v after %d", m, seen)
		}
		seen = m.Offset
	}
	c.close()

	// 50 publications while the client is away.
	for n := 4; n <= 53; n++ {
		if _, err := pub.Publish(ctx, channel, map[string]int{"n": n}); err != nil {
			t.Fatal(err)
		}
	}
	c = dialChannels(ctx, t, s.wsURL, mint("alice", "acme"))
	m := c.subscribe(ctx, "s2", channel, fmt.Sprintf(`{"offset":%d,"epoch":%q}`, seen, first.Epoch))
	if m.Type != protocol.TypeSubscribed || !m.Recovered || m.Offset != 53 || m.Epoch != first.Epoch || len(m.Publications) != 50 {
		t.Fatalf("recovering subscribe: type %s recovered %v offset %d epoch %q, %d publications", m.Type, m.Recovered, m.Offset, m.Epoch, len(m.Publications))
	}
	for i, p := range m.Publications {
		var d struct{ N uint64 }
		if err := json.Unmarshal(p.Data, &d); err != nil {
			t.Fatal(err)
		}
		if p.Type != protocol.TypePublication || p.Channel != channel || p.Offset != seen+uint64(i)+1 || d.N != p.Offset || p.Epoch != first.Epoch {
			t.Errorf("recovered publication %d: %+v", i, p)
		}
	}
	// A client that is up to date recovers nothing, successfully.
	if m := c.subscribe(ctx, "s3", channel, fmt.Sprintf(`{"offset":53,"epoch":%q}`, first.Epoch)); !m.Recovered || len(m.Publications) != 0 || m.Offset != 53 {
		t.Errorf("up-to-date subscribe %+v", m)
	}
	// An epoch that is not the channel's (history lost or reset) never
	// recovers, even with offsets the history holds.
	if m := c.subscribe(ctx, "s4", channel, `{"offset":10,"epoch":"older-epoch"}`); m.Type != protocol.TypeSubscribed || m.Recovered || len(m.Publications) != 0 || m.Epoch != first.Epoch || m.Offset != 53 {
		t.Errorf("subscribe with another epoch %+v", m)
	}
	// An offset from the future of this epoch does not either.
	if m := c.subscribe(ctx, "s5", channel, fmt.Sprintf(`{"offset":54,"epoch":%q}`, first.Epoch)); m.Recovered {
		t.Errorf("subscribe from the future %+v", m)
	}
	// Beyond the history size (the demo keeps 100): 120 more publications
	// push offsets up to 73 out.
	for n := 54; n <= 173; n++ {
		if _, err := pub.Publish(ctx, channel, map[string]int{"n": n}); err != nil {
			t.Fatal(err)
		}
	}
	if m := c.subscribe(ctx, "s6", channel, fmt.Sprintf(`{"offset":53,"epoch":%q}`, first.Epoch)); m.Type != protocol.TypeSubscribed || m.Recovered || len(m.Publications) != 0 || m.Offset != 173 {
		t.Errorf("subscribe beyond the history: recovered %v offset %d, %d publications", m.Recovered, m.Offset, len(m.Publications))
	}
	// ...while a client 100 behind still recovers all 100.
	if m := c.subscribe(ctx, "s7", channel, fmt.Sprintf(`{"offset":73,"epoch":%q}`, first.Epoch)); !m.Recovered || len(m.Publications) != 100 || m.Publications[0].Offset != 74 {
		t.Errorf("subscribe 100 behind: recovered %v, %d publications", m.Recovered, len(m.Publications))
	}
}

// TestDevChannelsBadInput: every bad channel message gets a clear error
// with the client's id, and the socket stays open and usable.
func TestDevChannelsBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, mint := startJWTDev(t, ctx)
	c := dialChannels(ctx, t, s.wsURL, mint("alice", "acme"))
	long := make([]byte, protocol.MaxChannelLength+1)
	for i := range long {
		long[i] = 'a'
	}
	cases := []struct {
		name, msg string
		code      protocol.ErrorCode
	}{
		{"missing channel", `{"type":"subscribe","id":"b1"}`, protocol.CodeInvalidMessage},
		{"empty channel", `{"type":"subscribe","id":"b1","channel":""}`, protocol.CodeInvalidMessage},
		{"oversize channel", `{"type":"subscribe","id":"b1","channel":"` + string(long) + `"}`, protocol.CodeInvalidMessage},
		{"space in channel", `{"type":"subscribe","id":"b1","channel":"a b"}`, protocol.CodeInvalidMessage},
		{"hash in channel", `{"type":"subscribe","id":"b1","channel":"acme#x"}`, protocol.CodeInvalidMessage},
		{"non-ASCII channel", `{"type":"subscribe","id":"b1","channel":"café"}`, protocol.CodeInvalidMessage},
		{"empty namespace", `{"type":"subscribe","id":"b1","channel":":x"}`, protocol.CodeInvalidMessage},
		{"channel not a string", `{"type":"subscribe","id":"b1","channel":7}`, protocol.CodeInvalidMessage},
		{"missing id", `{"type":"subscribe","channel":"news"}`, protocol.CodeInvalidMessage},
		{"negative offset", `{"type":"subscribe","id":"b1","channel":"news","since":{"offset":-1,"epoch":"e"}}`, protocol.CodeInvalidMessage},
		{"since without epoch", `{"type":"subscribe","id":"b1","channel":"news","since":{"offset":1}}`, protocol.CodeInvalidMessage},
		{"since not an object", `{"type":"subscribe","id":"b1","channel":"news","since":"yesterday"}`, protocol.CodeInvalidMessage},
		{"since on publish", `{"type":"publish","id":"b1","channel":"chat:a","data":1,"since":{"offset":1,"epoch":"e"}}`, protocol.CodeInvalidMessage},
		{"publish without data", `{"type":"publish","id":"b1","channel":"chat:a"}`, protocol.CodeInvalidMessage},
		{"unknown namespace", `{"type":"subscribe","id":"b1","channel":"nope:x"}`, protocol.CodeNotFound},
		{"another user's channel", `{"type":"subscribe","id":"b1","channel":"user:bob"}`, protocol.CodeForbidden},
		{"publish where clients may not", `{"type":"publish","id":"b1","channel":"ticker","data":{"n":0}}`, protocol.CodeForbidden},
		{"presence where it is off", `{"type":"presence","id":"b1","channel":"user:alice"}`, protocol.CodeForbidden},
	}
	for _, tc := range cases {
		c.send(ctx, "%s", tc.msg)
		m := c.next(ctx, ofType(protocol.TypeError))
		if m.Code != tc.code || m.Message == "" {
			t.Errorf("%s: %+v, want %s", tc.name, m, tc.code)
		}
		// A message that does not decode (wrong field types, no id) is
		// answered without an id, like any undecodable request.
		if undecodable := tc.name == "missing id" || tc.name == "channel not a string" || tc.name == "since not an object"; !undecodable && m.RequestID != "b1" {
			t.Errorf("%s: request_id %q", tc.name, m.RequestID)
		}
	}
	// The user's own private channel works out of the box.
	if m := c.subscribe(ctx, "own", "user:alice", ""); m.Type != protocol.TypeSubscribed {
		t.Errorf("own private channel: %+v", m)
	}
	// Subscribe flood: the cap (100) counts distinct channels; the 100th
	// succeeds (user:alice was the first), the 101st is refused, and a
	// repeated subscribe of a channel already held still succeeds.
	for i := range 99 {
		c.send(ctx, `{"type":"subscribe","id":"f%d","channel":"flood%d"}`, i, i)
	}
	for i := range 99 {
		if m := c.next(ctx, reply(fmt.Sprintf("f%d", i))); m.Type != protocol.TypeSubscribed {
			t.Fatalf("flood subscribe %d: %+v", i, m)
		}
	}
	if m := c.subscribe(ctx, "over", "flood-over", ""); m.Type != protocol.TypeError || m.Code != protocol.CodeForbidden {
		t.Errorf("subscription over the cap: %+v", m)
	}
	if m := c.subscribe(ctx, "again", "flood3", ""); m.Type != protocol.TypeSubscribed {
		t.Errorf("repeated subscribe at the cap: %+v", m)
	}
	// Still open and answering, and other connections are unaffected.
	c.send(ctx, `{"type":"ping"}`)
	c.next(ctx, ofType(protocol.TypePong))
	other := dialChannels(ctx, t, s.wsURL, mint("bob", "acme"))
	if m := other.subscribe(ctx, "o1", "flood-over", ""); m.Type != protocol.TypeSubscribed {
		t.Errorf("another connection: %+v", m)
	}
}

// TestDevTicker: with auth off, the demo's ticker channel publishes every
// second in the default tenant, with consecutive offsets, and presence
// (on in the default namespace) lists the subscriber.
func TestDevTicker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	c := dialChannels(ctx, t, s.wsURL, "")
	if m := c.subscribe(ctx, "t", demo.TickerChannel, ""); m.Type != protocol.TypeSubscribed {
		t.Fatalf("subscribe ticker: %+v", m)
	}
	var prev uint64
	for range 2 {
		m := c.next(ctx, ofType(protocol.TypePublication))
		var tick demo.Tick
		if err := json.Unmarshal(m.Data, &tick); err != nil || tick.N == 0 || tick.Time.IsZero() {
			t.Fatalf("tick %s: %v", m.Data, err)
		}
		if m.Channel != demo.TickerChannel || m.Info != nil || (prev != 0 && m.Offset != prev+1) {
			t.Errorf("tick %+v after offset %d", m, prev)
		}
		prev = m.Offset
	}
	c.send(ctx, `{"type":"presence","id":"p","channel":%q}`, demo.TickerChannel)
	if m := c.next(ctx, reply("p")); m.Type != protocol.TypePresence || len(m.Members) != 1 || m.Members[0].UserID != demo.AnonymousUser {
		t.Errorf("presence %+v", m)
	}
}
