package demo

import (
	"context"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
)

// The demo's channels.
const (
	// TickerChannel is published by the server every TickerInterval, in
	// tenant DefaultTenant (the tenant of every connection while auth is
	// off; with JWT auth, only that tenant's users see it).
	TickerChannel = "ticker"
	// ChatNamespace holds the chat rooms ("chat:lobby"): clients publish,
	// see who is there, and get join/leave events.
	ChatNamespace = "chat"
	// TickerInterval is how often the ticker publishes.
	TickerInterval = time.Second
)

// ChannelOptions are the demo's namespaces: the default one (ticker) with
// history and presence, and "chat" where clients publish too.
func ChannelOptions() []channel.Option {
	return []channel.Option{
		channel.WithNamespace("", channel.Namespace{
			HistorySize: channel.DefaultHistorySize, HistoryTTL: channel.DefaultHistoryTTL, Presence: true,
		}),
		channel.WithNamespace(ChatNamespace, channel.Namespace{
			HistorySize: channel.DefaultHistorySize, HistoryTTL: channel.DefaultHistoryTTL,
			Presence: true, JoinLeave: true, ClientPublish: true,
		}),
	}
}

// Tick is the data of a ticker publication.
type Tick struct {
	N    int       `json:"n"`
	Time time.Time `json:"time"`
}

// Publisher is what the ticker needs of the channel service.
type Publisher interface {
	Publish(ctx context.Context, channel string, data any) (uint64, error)
}

var _ Publisher = channel.Tenant{}

// RunTicker publishes a Tick on TickerChannel every interval until ctx
// ends. A failed publication is skipped (the offsets still show it to
// nobody: it was never stored).
func RunTicker(ctx context.Context, p Publisher, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if _, err := p.Publish(ctx, TickerChannel, Tick{N: n, Time: now.UTC()}); err != nil && ctx.Err() != nil {
				return
			}
		}
	}
}
