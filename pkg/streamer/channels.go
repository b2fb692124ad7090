package streamer

import (
	"context"
	"errors"
	"log/slog"

	"github.com/streamer-go/streamer/pkg/protocol"
)

// ChannelService answers the channel messages (subscribe, unsubscribe,
// publish, presence) the router receives. *channel.Service satisfies it;
// the router only validates the envelope, loads the identity and sends the
// reply.
type ChannelService interface {
	// ServeChannel returns the reply to send to the requesting connection.
	// A *ClientError becomes an error message with its code; any other
	// error is logged and answered INTERNAL.
	ServeChannel(ctx context.Context, req *ChannelRequest) (reply any, err error)
}

// ChannelRequest is one channel message with the sender's identity, read
// from the connection record (never from the message).
type ChannelRequest struct {
	// Type is TypeSubscribe, TypeUnsubscribe, TypePublish or TypePresence.
	Type protocol.MessageType
	// ID is the client's id of the message; replies carry it.
	ID string
	// Channel is the name as the client sent it, valid per
	// CheckChannelName; the service scopes it to Identity.TenantID.
	Channel string
	// Since is set on a subscribe that asks to recover.
	Since *protocol.Since
	// Data is a publish's data (never nil on publish).
	Data         []byte
	ConnectionID string
	Identity     Identity
}

// ConnectionCleaner forgets everything kept for a connection that has
// gone (its channel subscriptions and presence). *channel.Service
// satisfies it.
type ConnectionCleaner interface {
	RemoveConnection(ctx context.Context, connectionID string) error
}

// WithChannels makes the router answer channel messages through svc.
// Without it they are answered INVALID_MESSAGE.
func WithChannels(svc ChannelService) Option {
	return func(r *Router) { r.channels = svc }
}

// WithConnectionCleanup makes Disconnect also call c.RemoveConnection, so
// a disconnected client's subscriptions and presence go at once rather
// than at their TTL.
func WithConnectionCleanup(c ConnectionCleaner) ConnectOption {
	return func(h *ConnectHandler) {
		if c != nil {
			h.cleanups = append(h.cleanups, c)
		}
	}
}

// serveChannel hands a channel message to the ChannelService and replies.
func (r *Router) serveChannel(ctx context.Context, log *slog.Logger, to origin, id Identity, in *protocol.Inbound) error {
	if r.channels == nil {
		return r.reply(ctx, to, protocol.NewError(in.ID, protocol.CodeInvalidMessage, "channels are not enabled on this server"))
	}
	reply, err := r.channels.ServeChannel(ctx, &ChannelRequest{
		Type:         in.Type,
		ID:           in.ID,
		Channel:      in.Channel,
		Since:        in.Since,
		Data:         in.Data,
		ConnectionID: to.connectionID,
		Identity:     id,
	})
	if err != nil {
		var ce *ClientError
		if errors.As(err, &ce) {
			log.InfoContext(ctx, "channel message refused", slog.String("type", string(in.Type)), slog.String("channel", in.Channel), slog.String("code", string(ce.Code)), slog.Any("error", err))
			e := protocol.NewError(in.ID, ce.Code, ce.Message)
			e.RetryAfterMs = ce.RetryAfter.Milliseconds()
			return r.reply(ctx, to, e)
		}
		log.ErrorContext(ctx, "channel message failed", slog.String("type", string(in.Type)), slog.String("channel", in.Channel), slog.Any("error", err))
		return r.reply(ctx, to, protocol.NewError(in.ID, protocol.CodeInternal, msgInternal))
	}
	return r.reply(ctx, to, reply)
}

// cleanupConnection runs the connection cleanups of a $disconnect.
func (h *ConnectHandler) cleanupConnection(ctx context.Context, connectionID string) error {
	var errs []error
	for _, c := range h.cleanups {
		if err := c.RemoveConnection(ctx, connectionID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
