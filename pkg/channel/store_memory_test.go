package channel_test

import (
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/channel/channeltest"
)

// TestMemoryStoreForgetsIdleChannels: a channel with no subscriber and no
// live history is dropped when its last subscriber leaves, and comes back
// with a new epoch; one whose history is still live keeps its position.
func TestMemoryStoreForgetsIdleChannels(t *testing.T) {
	clock := channeltest.NewClock(time.Unix(1_800_000_000, 0))
	st := channel.NewMemoryStore(channel.WithMemoryClock(clock.Now))
	ctx := t.Context()
	idle, kept := channel.Key("t", "idle"), channel.Key("t", "kept")
	for _, k := range []string{idle, kept} {
		if _, err := st.Subscribe(ctx, k, channel.Subscriber{ConnectionID: "c", UserID: "u"}, clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Publish(ctx, idle, channel.Entry{Data: []byte(`1`)}, channel.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(ctx, kept, channel.Entry{Data: []byte(`1`)}, channel.HistoryOptions{Size: 5, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Position(ctx, idle)
	keptBefore, _ := st.Position(ctx, kept)
	for _, k := range []string{idle, kept} {
		if _, _, err := st.Unsubscribe(ctx, k, "c"); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := st.Position(ctx, idle); after.Epoch == before.Epoch || after.Offset != 0 {
		t.Errorf("idle channel kept: %+v then %+v", before, after)
	}
	if after, _ := st.Position(ctx, kept); after != keptBefore {
		t.Errorf("channel with live history changed: %+v then %+v", keptBefore, after)
	}
}
