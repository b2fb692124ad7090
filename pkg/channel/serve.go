package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// ServeChannel answers one channel message for the router: subscribe
// (with recovery), unsubscribe, publish and presence. The channel name is
// scoped to the sender's tenant, so no name reaches another tenant's
// channel. Refusals are *streamer.ClientError: NOT_FOUND for an unknown
// namespace, FORBIDDEN for what the namespace, the Authorizer or the
// subscription cap does not allow, INVALID_MESSAGE for a bad name.
func (s *Service) ServeChannel(ctx context.Context, req *streamer.ChannelRequest) (any, error) {
	if err := ValidateName(req.Channel); err != nil {
		return nil, streamer.NewClientError(protocol.CodeInvalidMessage, "invalid channel name")
	}
	ns, err := s.namespace(req.Channel)
	if err != nil {
		return nil, &streamer.ClientError{Code: protocol.CodeNotFound, Message: "unknown channel namespace " + NamespaceOf(req.Channel), Err: err}
	}
	key := Key(req.Identity.TenantID, req.Channel)
	switch req.Type {
	case protocol.TypeSubscribe:
		if err := s.check(ctx, OpSubscribe, req); err != nil {
			return nil, err
		}
		return s.subscribe(ctx, req, ns, key)
	case protocol.TypeUnsubscribe:
		// Anyone may leave a channel; unsubscribing from one never joined
		// is answered the same (idempotent).
		sub, ok, err := s.store.Unsubscribe(ctx, key, req.ConnectionID)
		if err != nil {
			return nil, fmt.Errorf("channel: unsubscribing: %w", err)
		}
		if ok && ns.JoinLeave {
			s.announce(ctx, key, protocol.NewLeave(req.Channel, protocol.ClientInfo{UserID: sub.UserID, ConnectionID: sub.ConnectionID}))
		}
		return protocol.NewUnsubscribed(req.ID, req.Channel), nil
	case protocol.TypePublish:
		if !ns.ClientPublish {
			return nil, streamer.NewClientError(protocol.CodeForbidden, "clients may not publish on "+req.Channel)
		}
		if err := s.check(ctx, OpPublish, req); err != nil {
			return nil, err
		}
		pos, err := s.publish(ctx, req.Identity.TenantID, req.Channel, req.Data, req.Identity.UserID)
		var over *OverloadedError
		switch {
		case errors.Is(err, ErrTooLarge):
			return nil, &streamer.ClientError{Code: protocol.CodeInvalidMessage, Message: "publication too large", Err: err}
		case errors.As(err, &over):
			return nil, &streamer.ClientError{Code: protocol.CodeOverloaded, Message: fmt.Sprintf("the channel's fan-out is behind; nothing was published; retry after %d ms", over.RetryAfter.Milliseconds()), Err: err, RetryAfter: over.RetryAfter}
		}
		if err != nil {
			return nil, err
		}
		data, err := jsonOf(protocol.Published{Channel: req.Channel, Offset: pos.Offset, Epoch: pos.Epoch})
		if err != nil {
			return nil, err
		}
		return protocol.NewResponse(req.ID, data), nil
	case protocol.TypePresence:
		if !ns.Presence {
			return nil, streamer.NewClientError(protocol.CodeForbidden, "presence is not enabled on "+req.Channel)
		}
		if err := s.check(ctx, OpPresence, req); err != nil {
			return nil, err
		}
		subs, err := s.store.Subscribers(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("channel: listing subscribers: %w", err)
		}
		members := make([]protocol.Member, len(subs))
		for i, sub := range subs {
			members[i] = protocol.Member{UserID: sub.UserID, ConnectionID: sub.ConnectionID}
		}
		slices.SortFunc(members, func(a, b protocol.Member) int {
			if a.UserID != b.UserID {
				return strings.Compare(a.UserID, b.UserID)
			}
			return strings.Compare(a.ConnectionID, b.ConnectionID)
		})
		return protocol.NewPresence(req.ID, req.Channel, members), nil
	default:
		return nil, streamer.NewClientError(protocol.CodeInvalidMessage, "not a channel message")
	}
}

// check runs the built-in user rule and the app's Authorizer.
func (s *Service) check(ctx context.Context, op Op, req *streamer.ChannelRequest) error {
	a := Access{Op: op, Channel: req.Channel, Namespace: NamespaceOf(req.Channel), Identity: req.Identity, ConnectionID: req.ConnectionID}
	if err := userRule(a); err != nil {
		return err
	}
	if s.authorize == nil {
		return nil
	}
	err := s.authorize(ctx, a)
	if err == nil {
		return nil
	}
	var ce *streamer.ClientError
	if errors.As(err, &ce) {
		return err
	}
	return &streamer.ClientError{Code: protocol.CodeForbidden, Message: "not allowed to " + string(op) + " on " + req.Channel, Err: err}
}

// subscribe stores the subscription first and reads the position after,
// so every publication is either in what the reply recovers or delivered
// live (or both: the client drops duplicates by offset).
func (s *Service) subscribe(ctx context.Context, req *streamer.ChannelRequest, ns Namespace, key string) (any, error) {
	chans, err := s.store.Subscriptions(ctx, req.ConnectionID)
	if err != nil {
		return nil, fmt.Errorf("channel: listing subscriptions: %w", err)
	}
	limit := streamer.NewClientError(protocol.CodeForbidden, fmt.Sprintf("subscription limit of %d per connection reached", s.maxSubs))
	if !slices.Contains(chans, key) && len(chans) >= s.maxSubs {
		return nil, limit
	}
	sub := Subscriber{ConnectionID: req.ConnectionID, UserID: req.Identity.UserID}
	created, err := s.store.Subscribe(ctx, key, sub, s.now().Add(s.subTTL))
	if err != nil {
		return nil, fmt.Errorf("channel: subscribing: %w", err)
	}
	if created {
		// A connection's messages are handled concurrently (on API Gateway
		// and in the local runtime), so other subscribes may have passed
		// the check above at the same time: count again after the write
		// and take back this one if the connection is over the limit. Of
		// racing subscribes some may all be refused; none is kept over it.
		if chans, err = s.store.Subscriptions(ctx, req.ConnectionID); err != nil {
			return nil, fmt.Errorf("channel: listing subscriptions: %w", err)
		}
		if len(chans) > s.maxSubs {
			if _, _, err := s.store.Unsubscribe(ctx, key, req.ConnectionID); err != nil {
				return nil, fmt.Errorf("channel: taking back a subscription over the limit: %w", err)
			}
			return nil, limit
		}
	}
	if created && ns.JoinLeave {
		s.announce(ctx, key, protocol.NewJoin(req.Channel, protocol.ClientInfo{UserID: sub.UserID, ConnectionID: sub.ConnectionID}))
	}
	if req.Since == nil {
		pos, err := s.store.Position(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("channel: reading position: %w", err)
		}
		return protocol.NewSubscribed(req.ID, req.Channel, pos.Offset, pos.Epoch, false, nil), nil
	}
	after := uint64(req.Since.Offset)
	entries, pos, err := s.store.History(ctx, key, after)
	if err != nil {
		return nil, fmt.Errorf("channel: reading history: %w", err)
	}
	pubs, ok := recoverable(req.Channel, req.Since.Epoch, after, entries, pos)
	if !ok {
		return protocol.NewSubscribed(req.ID, req.Channel, pos.Offset, pos.Epoch, false, nil), nil
	}
	return protocol.NewSubscribed(req.ID, req.Channel, pos.Offset, pos.Epoch, true, pubs), nil
}

// recoverBudget is the room recovered publications may take in the
// subscribed message, under API Gateway's 128 KiB limit.
const recoverBudget = connection.MaxMessageBytes - 1024

// recoverable returns the publications a client at (epoch, after) missed, if
// the history holds every one of them and they fit in one message: the
// epoch matches, after is not in the future, and entries run without a
// gap from after+1 to the channel's offset. Lost entries fill their
// offsets and are not delivered.
func recoverable(name, epoch string, after uint64, entries []Entry, pos Position) ([]protocol.Publication, bool) {
	if epoch != pos.Epoch || after > pos.Offset {
		return nil, false
	}
	if uint64(len(entries)) != pos.Offset-after {
		return nil, false
	}
	pubs := make([]protocol.Publication, 0, len(entries))
	size := 0
	for i, e := range entries {
		if e.Offset != after+uint64(i)+1 {
			return nil, false
		}
		if e.Lost {
			continue
		}
		var info *protocol.ClientInfo
		if e.UserID != "" {
			info = &protocol.ClientInfo{UserID: e.UserID}
		}
		pubs = append(pubs, protocol.NewPublication(name, e.Offset, pos.Epoch, e.Data, info))
		size += len(e.Data) + len(name) + len(e.UserID) + 128
		if size > recoverBudget {
			return nil, false
		}
	}
	return pubs, true
}

// announce queues a join or leave for a channel's subscribers, in order
// with its publications (and in the same frames).
func (s *Service) announce(ctx context.Context, key string, ev protocol.PresenceEvent) {
	b, err := json.Marshal(ev)
	if err != nil {
		s.log.ErrorContext(ctx, "channel: encoding presence event", slog.String("channel", key), slog.Any("error", err))
		return
	}
	s.fan.enqueue(ctx, key, b, false)
}

// RemoveConnection removes every subscription of a connection (on
// $disconnect, or when a fan-out finds it gone) and announces the leaves.
func (s *Service) RemoveConnection(ctx context.Context, connectionID string) error {
	keys, err := s.store.Subscriptions(ctx, connectionID)
	if err != nil {
		return fmt.Errorf("channel: listing subscriptions of %s: %w", connectionID, err)
	}
	var errs []error
	for _, key := range keys {
		sub, ok, err := s.store.Unsubscribe(ctx, key, connectionID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, name := SplitKey(key)
		if ns, err := s.namespace(name); ok && err == nil && ns.JoinLeave {
			s.announce(ctx, key, protocol.NewLeave(name, protocol.ClientInfo{UserID: sub.UserID, ConnectionID: connectionID}))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("channel: removing subscriptions of %s: %w", connectionID, err)
	}
	return nil
}
