package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// FuzzChannelMessage feeds channel names and since positions through
// ParseInbound and the Service: nothing panics, a refused message is a
// ValidationError or a ClientError with a code, an accepted name obeys
// the documented rules and keeps its tenant through Key/SplitKey, and a
// subscribe with since recovers only in the channel's own epoch and never
// beyond its offset.
func FuzzChannelMessage(f *testing.F) {
	f.Add("news", int64(0), "e", "acme", true)
	f.Add("chat:room-1", int64(3), "", "", true)
	f.Add("user:alice", int64(-1), "x", "t#x", false)
	f.Add(":x", int64(1), "e", "a", true)
	f.Add("a#b", int64(9), "e", "", false)
	f.Add(strings.Repeat("z", 201), int64(1<<62), "e", "", true)
	f.Add("café", int64(5), "\x00", "", true)
	f.Fuzz(func(t *testing.T, name string, offset int64, epoch, tenant string, withSince bool) {
		msg := map[string]any{"type": "subscribe", "id": "f", "channel": name}
		if withSince {
			msg["since"] = map[string]any{"offset": offset, "epoch": epoch}
		}
		body, err := json.Marshal(msg)
		if err != nil {
			t.Skip()
		}
		in, err := protocol.ParseInbound(body, 0)
		if err != nil {
			var ve *protocol.ValidationError
			if !errors.As(err, &ve) || ve.Code != protocol.CodeInvalidMessage {
				t.Fatalf("ParseInbound(%s) = %v, want a ValidationError", body, err)
			}
			return
		}
		if len(in.Channel) == 0 || len(in.Channel) > protocol.MaxChannelLength || strings.ContainsAny(in.Channel, "# \t\n") || in.Channel[0] == ':' {
			t.Fatalf("accepted channel %q", in.Channel)
		}
		if in.Since != nil && (in.Since.Offset < 0 || in.Since.Epoch == "") {
			t.Fatalf("accepted since %+v", in.Since)
		}
		if gotTenant, gotName := channel.SplitKey(channel.Key(tenant, in.Channel)); gotTenant != tenant || gotName != in.Channel {
			t.Fatalf("Key/SplitKey(%q, %q) = %q, %q", tenant, in.Channel, gotTenant, gotName)
		}
		st := channel.NewMemoryStore()
		svc := channel.New(st, &connectiontest.Recorder{}, channel.WithNamespace("chat", channel.Namespace{HistorySize: 10}))
		defer svc.Shutdown(context.Background())
		ctx := context.Background()
		if _, err := svc.In(tenant).Publish(ctx, in.Channel, 1); err != nil && !errors.Is(err, channel.ErrUnknownNamespace) {
			t.Fatalf("Publish(%q): %v", in.Channel, err)
		}
		reply, err := svc.ServeChannel(ctx, &streamer.ChannelRequest{
			Type: in.Type, ID: in.ID, Channel: in.Channel, Since: in.Since, ConnectionID: "c",
			Identity: streamer.Identity{UserID: "alice", TenantID: tenant},
		})
		if err != nil {
			var ce *streamer.ClientError
			if !errors.As(err, &ce) || ce.Code == "" || ce.Code == protocol.CodeInternal {
				t.Fatalf("ServeChannel(%q): %v, want a ClientError", in.Channel, err)
			}
			return
		}
		sub, ok := reply.(protocol.Subscribed)
		if !ok {
			t.Fatalf("reply %#v", reply)
		}
		if sub.Recovered && (in.Since == nil || in.Since.Epoch != sub.Epoch || uint64(in.Since.Offset) > sub.Offset) {
			t.Fatalf("recovered %+v for since %+v", sub, in.Since)
		}
		if sub.Recovered && uint64(len(sub.Publications)) != sub.Offset-uint64(in.Since.Offset) {
			t.Fatalf("recovered %d publications from %d to %d", len(sub.Publications), in.Since.Offset, sub.Offset)
		}
	})
}
