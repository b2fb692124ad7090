package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/channel"
)

// devChannels is `streamer dev`'s channel service and the demo's ticker.
type devChannels struct {
	svc        *channel.Service
	stopTicker context.CancelFunc
	ticker     sync.WaitGroup
}

// startChannels creates the channel service over st (the memory store, or
// DynamoDB with --dynamodb-endpoint) and starts the demo's ticker.
func startChannels(ctx context.Context, st channel.Store, out channel.Broadcaster, logger *slog.Logger) *devChannels {
	c := &devChannels{svc: channel.New(st, out, append(demo.ChannelOptions(), channel.WithLogger(logger))...)}
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.stopTicker = cancel
	c.ticker.Go(func() { demo.RunTicker(tctx, c.svc.In(demo.DefaultTenant), demo.TickerInterval) })
	return c
}

// shutdown stops the ticker, then lets queued fan-outs finish within ctx.
// Fan-outs still queued at the deadline (to sockets the gateway has
// closed anyway) are dropped with a warning: in a dev loop that is not a
// failure. Safe to call more than once.
func (c *devChannels) shutdown(ctx context.Context, log *slog.Logger) error {
	c.stopTicker()
	c.ticker.Wait()
	err := c.svc.Shutdown(ctx)
	if err != nil && ctx.Err() != nil {
		log.Warn("streamer dev: channel fan-outs dropped at the shutdown deadline", "err", err)
		return nil
	}
	return err
}

// channelsHint is printed at start, after the actions.
const channelsHint = `Channels: {"type":"subscribe","id":"2","channel":"ticker"} (published every second); chat:* rooms take {"type":"publish","id":"3","channel":"chat:lobby","data":{"text":"hi"}}, presence and join/leave.`
