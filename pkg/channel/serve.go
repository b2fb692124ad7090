package channel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/streamer-go/streamer/pkg/connection"
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
		return nil, streamer.NewClientError(streamer.CodeInvalidMessage, "invalid channel name")
	}
	ns, err := s.namespace(req.Channel)
	if err != nil {
		return nil, &streamer.ClientError{Code: streamer.CodeNotFound, Message: "unknown channel namespace " + NamespaceOf(req.Channel), Err: err}
	}
	key := Key(req.Identity.TenantID, req.Channel)
	switch req.Type {
	case streamer.TypeSubscribe:
		if err := s.check(ctx, OpSubscribe, req); err != nil {
			return nil, err
		}
		return s.subscribe(ctx, req, ns, key)
	case streamer.TypeUnsubscribe:
		// Anyone may leave a channel; unsubscribing from one never joined
		// is answered the same (idempotent).
		sub, ok, err := s.store.Unsubscribe(ctx, key, req.ConnectionID)
		if err != nil {
			return nil, fmt.Errorf("channel: unsubscribing: %w", err)
		}
		if ok && ns.JoinLeave {
			s.announce(ctx, key, streamer.NewLeave(req.Channel, streamer.ClientInfo{UserID: sub.UserID, ConnectionID: sub.ConnectionID}))
		}
		return streamer.NewUnsubscribed(req.ID, req.Channel), nil
	case streamer.TypePublish:
		if !ns.ClientPublish {
			return nil, streamer.NewClientError(streamer.CodeForbidden, "clients may not publish on "+req.Channel)
		}
		if err := s.check(ctx, OpPublish, req); err != nil {
			return nil, err
		}
		pos, err := s.publish(ctx, req.Identity.TenantID, req.Channel, req.Data, req.Identity.UserID)
		if errors.Is(err, ErrTooLarge) {
			return nil, &streamer.ClientError{Code: streamer.CodeInvalidMessage, Message: "publication too large", Err: err}
		}
		if err != nil {
			return nil, err
		}
		data, err := jsonOf(streamer.Published{Channel: req.Channel, Offset: pos.Offset, Epoch: pos.Epoch})
		if err != nil {
			return nil, err
		}
		return streamer.NewResponse(req.ID, data), nil
	case streamer.TypePresence:
		if !ns.Presence {
			return nil, streamer.NewClientError(streamer.CodeForbidden, "presence is not enabled on "+req.Channel)
		}
		if err := s.check(ctx, OpPresence, req); err != nil {
			return nil, err
		}
		subs, err := s.store.Subscribers(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("channel: listing subscribers: %w", err)
		}
		members := make([]streamer.Member, len(subs))
		for i, sub := range subs {
			members[i] = streamer.Member{UserID: sub.UserID, ConnectionID: sub.ConnectionID}
		}
		slices.SortFunc(members, func(a, b streamer.Member) int {
			if a.UserID != b.UserID {
				return strings.Compare(a.UserID, b.UserID)
			}
			return strings.Compare(a.ConnectionID, b.ConnectionID)
		})
		return streamer.NewPresence(req.ID, req.Channel, members), nil
	default:
		return nil, streamer.NewClientError(streamer.CodeInvalidMessage, "not a channel message")
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
	return &streamer.ClientError{Code: streamer.CodeForbidden, Message: "not allowed to " + string(op) + " on " + req.Channel, Err: err}
}

// subscribe stores the subscription first and reads the position after,
// so every publication is either in what the reply recovers or delivered
// live (or both: the client drops duplicates by offset).
func (s *Service) subscribe(ctx context.Context, req *streamer.ChannelRequest, ns Namespace, key string) (any, error) {
	chans, err := s.store.Subscriptions(ctx, req.ConnectionID)
	if err != nil {
		return nil, fmt.Errorf("channel: listing subscriptions: %w", err)
	}
	already := slices.Contains(chans, key)
	if !already && len(chans) >= s.maxSubs {
		return nil, streamer.NewClientError(streamer.CodeForbidden, fmt.Sprintf("subscription limit of %d per connection reached", s.maxSubs))
	}
	sub := Subscriber{ConnectionID: req.ConnectionID, UserID: req.Identity.UserID}
	if err := s.store.Subscribe(ctx, key, sub, s.now().Add(s.subTTL)); err != nil {
		return nil, fmt.Errorf("channel: subscribing: %w", err)
	}
	if !already && ns.JoinLeave {
		s.announce(ctx, key, streamer.NewJoin(req.Channel, streamer.ClientInfo{UserID: sub.UserID, ConnectionID: sub.ConnectionID}))
	}
	if req.Since == nil {
		pos, err := s.store.Position(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("channel: reading position: %w", err)
		}
		return streamer.NewSubscribed(req.ID, req.Channel, pos.Offset, pos.Epoch, false, nil), nil
	}
	after := uint64(req.Since.Offset)
	entries, pos, err := s.store.History(ctx, key, after)
	if err != nil {
		return nil, fmt.Errorf("channel: reading history: %w", err)
	}
	pubs, ok := recoverable(req.Channel, req.Since.Epoch, after, entries, pos)
	if !ok {
		return streamer.NewSubscribed(req.ID, req.Channel, pos.Offset, pos.Epoch, false, nil), nil
	}
	return streamer.NewSubscribed(req.ID, req.Channel, pos.Offset, pos.Epoch, true, pubs), nil
}

// recoverBudget is the room recovered publications may take in the
// subscribed message, under API Gateway's 128 KiB limit.
const recoverBudget = connection.MaxMessageBytes - 1024

// recoverable returns the publications a client at (epoch, after) missed, if
// the history holds every one of them and they fit in one message: the
// epoch matches, after is not in the future, and entries run without a
// gap from after+1 to the channel's offset.
func recoverable(name, epoch string, after uint64, entries []Entry, pos Position) ([]streamer.Publication, bool) {
	if epoch != pos.Epoch || after > pos.Offset {
		return nil, false
	}
	if uint64(len(entries)) != pos.Offset-after {
		return nil, false
	}
	pubs := make([]streamer.Publication, len(entries))
	size := 0
	for i, e := range entries {
		if e.Offset != after+uint64(i)+1 {
			return nil, false
		}
		var info *streamer.ClientInfo
		if e.UserID != "" {
			info = &streamer.ClientInfo{UserID: e.UserID}
		}
		pubs[i] = streamer.NewPublication(name, e.Offset, pos.Epoch, e.Data, info)
		size += len(e.Data) + len(name) + len(e.UserID) + 128
		if size > recoverBudget {
			return nil, false
		}
	}
	return pubs, true
}

// announce queues a join or leave for a channel's subscribers, in order
// with its publications.
func (s *Service) announce(ctx context.Context, key string, ev streamer.PresenceEvent) {
	s.fan.enqueue(ctx, key, func(ctx context.Context) { s.deliver(ctx, key, ev) })
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
			s.announce(ctx, key, streamer.NewLeave(name, streamer.ClientInfo{UserID: sub.UserID, ConnectionID: connectionID}))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("channel: removing subscriptions of %s: %w", connectionID, err)
	}
	return nil
}
