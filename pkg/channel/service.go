package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// Broadcaster delivers one message to many connections.
// *connection.Manager satisfies it; its retries, circuit breakers and
// metrics apply to every fan-out.
type Broadcaster interface {
	Broadcast(ctx context.Context, connectionIDs []string, message any) error
}

var (
	_ Broadcaster                = (*connection.Manager)(nil)
	_ streamer.ChannelService    = (*Service)(nil)
	_ streamer.ConnectionCleaner = (*Service)(nil)
)

// Service is the channels of one application: it answers the router's
// channel messages, publishes for the server and fans publications out.
// Create it with New; it is safe for concurrent use. Its fan-out runs in
// goroutines it owns: call Flush before a Lambda invocation returns and
// Shutdown when the process stops.
type Service struct {
	store      Store
	out        Broadcaster
	namespaces map[string]Namespace
	authorize  Authorizer
	maxSubs    int
	subTTL     time.Duration
	queueLen   int
	pubWait    time.Duration
	log        *slog.Logger
	now        func() time.Time

	fan  *fanout
	redo *redelivery
	// order serialises each channel's store write and fan-out queueing in
	// this process (striped by channel key), so a channel's publications
	// are queued, and so delivered, in offset order even when many
	// goroutines publish at once. It is held across the store call on
	// purpose, the one place this package does I/O under a lock: the
	// offset and the queue position must be taken together. It costs one
	// store round trip of serialisation per channel (and stripe) per
	// process, never the fan-out, which runs outside it.
	order [orderStripes]sync.Mutex
}

// orderStripes is how many locks the channels of a process share.
const orderStripes = 64

func (s *Service) orderLock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &s.order[h.Sum32()%orderStripes]
}

// Option configures a Service.
type Option func(*Service)

// WithNamespace sets the options of namespace name ("" is the default
// namespace of names without ':'). The default namespace and UserNamespace
// exist unless replaced, with DefaultHistorySize and DefaultHistoryTTL and
// nothing else; channels of any other namespace are refused NOT_FOUND
// until it is configured.
func WithNamespace(name string, ns Namespace) Option {
	return func(s *Service) { s.namespaces[name] = ns }
}

// WithAuthorizer sets the app's hook deciding subscribe, publish and
// presence (default: allow everything the namespace allows).
func WithAuthorizer(a Authorizer) Option {
	return func(s *Service) { s.authorize = a }
}

// WithMaxSubscriptions caps one connection's subscriptions (default
// DefaultMaxSubscriptions). Values <= 0 are ignored.
func WithMaxSubscriptions(n int) Option {
	return func(s *Service) {
		if n > 0 {
			s.maxSubs = n
		}
	}
}

// WithSubscriptionTTL sets how long a subscription lives (default
// DefaultSubscriptionTTL). Values <= 0 are ignored.
func WithSubscriptionTTL(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.subTTL = d
		}
	}
}

// WithQueueLength bounds the publications waiting for their fan-out per
// channel (default DefaultQueueLength). Past it a publisher waits for
// room (see WithPublishWait) and is then refused with ErrOverloaded:
// nothing is stored that the fan-out would have to drop. Values <= 0 are
// ignored.
func WithQueueLength(n int) Option {
	return func(s *Service) {
		if n > 0 {
			s.queueLen = n
		}
	}
}

// WithPublishWait sets how long a publication waits for room in its
// channel's full queue before it is refused with ErrOverloaded (default
// DefaultPublishWait; 0 refuses at once). Negative values are ignored.
func WithPublishWait(d time.Duration) Option {
	return func(s *Service) {
		if d >= 0 {
			s.pubWait = d
		}
	}
}

// WithLogger sets the logger (default: discard). Publication data is never
// logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) {
		if l != nil {
			s.log = l
		}
	}
}

// WithClock replaces time.Now, for tests of expiry.
func WithClock(now func() time.Time) Option {
	return func(s *Service) {
		if now != nil {
			s.now = now
		}
	}
}

// New returns a Service keeping state in st and delivering through out.
// Both are required; nil panics, as a programming error.
func New(st Store, out Broadcaster, opts ...Option) *Service {
	if st == nil || out == nil {
		panic("channel: New needs a store and a broadcaster")
	}
	builtin := Namespace{HistorySize: DefaultHistorySize, HistoryTTL: DefaultHistoryTTL}
	s := &Service{
		store:      st,
		out:        out,
		namespaces: map[string]Namespace{"": builtin, UserNamespace: builtin},
		maxSubs:    DefaultMaxSubscriptions,
		subTTL:     DefaultSubscriptionTTL,
		queueLen:   DefaultQueueLength,
		pubWait:    DefaultPublishWait,
		log:        slog.New(slog.DiscardHandler),
		now:        time.Now,
		redo:       newRedelivery(),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.namespaces = maps.Clone(s.namespaces)
	s.fan = newFanout(s.queueLen, s.pubWait, s.log, s.deliver)
	return s
}

// namespace returns the options of a (valid) channel name.
func (s *Service) namespace(name string) (Namespace, error) {
	ns, ok := s.namespaces[NamespaceOf(name)]
	if !ok {
		return Namespace{}, fmt.Errorf("%w: %q", ErrUnknownNamespace, NamespaceOf(name))
	}
	return ns, nil
}

// Publish publishes data (marshalled to JSON) on channel in the default
// tenant "" (that of connections with no tenant) and returns its offset.
// Use In for a tenant's channels. It returns once the publication is in
// the store, before it reaches the subscribers: fan-out runs in the
// background, in offset order per channel.
func (s *Service) Publish(ctx context.Context, channel string, data any) (uint64, error) {
	return s.In("").Publish(ctx, channel, data)
}

// Tenant publishes on one tenant's channels. Get one from Service.In; the
// zero value has no service and must not be used.
type Tenant struct {
	s  *Service
	id string
}

// In returns the publisher of tenant's channels.
func (s *Service) In(tenant string) Tenant { return Tenant{s: s, id: tenant} }

// Publish publishes data (marshalled to JSON) on channel in the tenant and
// returns its offset; see Service.Publish.
func (t Tenant) Publish(ctx context.Context, channel string, data any) (uint64, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("channel: marshalling data: %w", err)
	}
	pos, err := t.s.publish(ctx, t.id, channel, raw, "")
	return pos.Offset, err
}

// publishOverhead bounds the bytes a publication message adds to its data
// and channel name (envelope, offset, epoch, info).
const publishOverhead = 512

// publish stores one publication and queues its fan-out.
func (s *Service) publish(ctx context.Context, tenant, name string, data []byte, userID string) (Position, error) {
	if err := ValidateName(name); err != nil {
		return Position{}, err
	}
	ns, err := s.namespace(name)
	if err != nil {
		return Position{}, err
	}
	if len(data)+len(name)+len(userID)+publishOverhead > connection.MaxMessageBytes {
		return Position{}, fmt.Errorf("%w: %d bytes of data", ErrTooLarge, len(data))
	}
	key := Key(tenant, name)
	if err := s.fan.reserve(ctx, key); err != nil {
		return Position{}, err
	}
	mu := s.orderLock(key)
	mu.Lock()
	defer mu.Unlock()
	pos, err := s.store.Publish(ctx, key, Entry{Data: data, UserID: userID}, ns.history())
	if err != nil {
		s.fan.release(key)
		return Position{}, fmt.Errorf("channel: publishing on %s: %w", name, err)
	}
	var info *protocol.ClientInfo
	if userID != "" {
		info = &protocol.ClientInfo{UserID: userID}
	}
	msg, err := json.Marshal(protocol.NewPublication(name, pos.Offset, pos.Epoch, data, info))
	if err != nil {
		// data is JSON the caller or the router checked; this is a
		// programming error, and the offset is stored: subscribers see a
		// gap and recover it from history.
		s.fan.release(key)
		return Position{}, fmt.Errorf("channel: encoding publication %d on %s: %w", pos.Offset, name, err)
	}
	s.fan.enqueue(ctx, key, msg, true)
	return pos, nil
}

// subscriberReads is how many times a round tries to list a channel's
// subscribers before giving up on it.
const subscriberReads = 3

// deliver runs one round of a channel's fan-out: it lists the subscribers
// once and sends them the queued messages, packed into as few frames as
// fit (see pack), in order. Subscribers that are gone (410 from their own
// endpoint) lose all their subscriptions and get no later frame. A
// subscriber the frame with the round's newest publication could not
// reach (throttled past its retries, its breaker open) is owed that
// publication, which redelivery posts again until it arrives (see
// redelivery); a subscriber that missed only earlier frames sees the gap
// at that publication. Either way it recovers the missed offsets from
// history.
func (s *Service) deliver(ctx context.Context, key string, msgs []queued) {
	var (
		subs []Subscriber
		err  error
	)
	for try := range subscriberReads {
		if subs, err = s.store.Subscribers(ctx, key); err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(time.Duration(try+1) * 50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	newest := -1 // the round's newest publication
	for i, m := range msgs {
		if m.pub {
			newest = i
		}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "channel: listing subscribers; the round's newest publication is posted to them later, and they recover the rest from history", slog.String("channel", key), slog.Int("messages", len(msgs)), slog.Any("error", err))
		if newest >= 0 {
			s.settleAll(ctx, key, msgs[newest].data)
		}
		return
	}
	if len(subs) == 0 {
		return
	}
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = sub.ConnectionID
	}
	start := 0
	for _, fr := range pack(msgs) {
		if len(ids) == 0 {
			return
		}
		carriesNewest := start <= newest && newest < start+fr.n
		start += fr.n
		err := s.out.Broadcast(ctx, ids, json.RawMessage(fr.data))
		var be *connection.BroadcastError
		if carriesNewest {
			var failed map[string]error
			switch {
			case errors.As(err, &be):
				failed = be.Failed
			case err != nil:
				failed = make(map[string]error, len(ids))
				for _, id := range ids {
					failed[id] = err
				}
			}
			s.settle(ctx, key, ids, failed, msgs[newest].data)
		}
		if err == nil {
			continue
		}
		if !errors.As(err, &be) {
			s.log.WarnContext(ctx, "channel: fan-out failed", slog.String("channel", key), slog.Any("error", err))
			continue
		}
		failed := 0
		for id, cause := range be.Failed {
			if isGone(cause) {
				if err := s.RemoveConnection(ctx, id); err != nil {
					s.log.WarnContext(ctx, "channel: removing gone subscriber", slog.String("connection_id", id), slog.Any("error", err))
				}
				continue
			}
			failed++
			s.log.DebugContext(ctx, "channel: delivery failed", slog.String("channel", key), slog.String("connection_id", id), slog.Any("error", cause))
		}
		if failed > 0 {
			s.log.WarnContext(ctx, "channel: delivery failed; those subscribers are sent the newest publication again and recover from history", slog.String("channel", key), slog.Int("failed", failed), slog.Int("subscribers", len(ids)))
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { return isGone(be.Failed[id]) })
	}
}

// Flush waits until every queued fan-out has run, or ctx ends. A Lambda
// handler calls it before returning (awslambda.WithFlusher), because the
// process freezes between invocations.
func (s *Service) Flush(ctx context.Context) error { return s.fan.flush(ctx) }

// Shutdown refuses new publications, waits for queued fan-outs, stops
// redelivery and returns; at ctx's end it cancels the fan-outs still
// running and returns ctx.Err(). Safe to call more than once.
func (s *Service) Shutdown(ctx context.Context) error {
	err := s.fan.shutdown(ctx)
	s.redo.stop()
	return err
}

func jsonOf(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("channel: marshalling reply: %w", err)
	}
	return b, nil
}
