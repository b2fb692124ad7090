package channel

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
)

// DefaultRedeliveryDelay is the first wait before a publication a
// subscriber did not receive is posted to it again; each further try
// doubles the wait, up to DefaultRedeliveryMaxDelay.
const (
	DefaultRedeliveryDelay    = time.Second
	DefaultRedeliveryMaxDelay = 30 * time.Second
)

// WithRedelivery sets the backoff of redelivery: the wait before the first
// try and the most any wait grows to (defaults DefaultRedeliveryDelay and
// DefaultRedeliveryMaxDelay). Values <= 0 keep the default; most is
// raised to first when smaller.
func WithRedelivery(first, most time.Duration) Option {
	return func(s *Service) {
		if first > 0 {
			s.redo.first = first
		}
		if most > 0 {
			s.redo.max = most
		}
		s.redo.max = max(s.redo.max, s.redo.first)
	}
}

// owed is the newest publication (encoded) that one or more subscribers
// of a channel did not receive. Subscribers failed in the same round share
// one owed.
type owed struct{ data []byte }

// redelivery keeps, per channel, the subscribers whose post of a round's
// newest publication failed for good (past the Manager's retries, not
// 410), and posts that publication to them again on a backoff until it
// arrives, the connection is gone (410 from its own endpoint) or the
// subscription ends. Receiving the newest publication is enough: a
// subscriber that missed older ones sees the gap before it and recovers
// them from history (or learns recovered:false), and one that already has
// it drops it as a duplicate. A later round that reaches the subscriber
// with a publication settles the debt the same way. A round that could
// not list the channel's subscribers owes its newest publication to every
// subscriber, listed at the next try.
//
// One goroutine per channel with debts runs the tries; it ends when the
// channel owes nothing. Shutdown stops them.
type redelivery struct {
	first, max time.Duration
	// after is time.After; tests replace it to drive the backoff.
	after func(time.Duration) <-chan time.Time

	mu   sync.Mutex
	owed map[string]map[string]*owed // channel key -> connection ID -> debt
	// all holds, per channel, a publication owed to every subscriber; a
	// channel with debts in owed or all has its redelivery running.
	all    map[string]*owed
	closed bool

	ctx     context.Context // cancelled by stop
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

func newRedelivery() *redelivery {
	r := &redelivery{first: DefaultRedeliveryDelay, max: DefaultRedeliveryMaxDelay, after: time.After, owed: map[string]map[string]*owed{}, all: map[string]*owed{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// delay is the wait before try n (0-based).
func (r *redelivery) delay(n int) time.Duration {
	d := r.first
	for range n {
		if d >= r.max/2 {
			return r.max
		}
		d *= 2
	}
	return min(d, r.max)
}

// settle records the outcome of the frame carrying a round's newest
// publication (data) to ids: the subscribers in failed (not gone) owe it,
// every other one reached is settled. It starts the channel's
// redelivery when it has none running.
func (s *Service) settle(ctx context.Context, key string, ids []string, failed map[string]error, data []byte) {
	r := s.redo
	r.mu.Lock()
	defer r.mu.Unlock()
	debts := r.owed[key]
	if debts == nil && r.all[key] == nil && len(failed) == 0 {
		return
	}
	// The round listed every subscriber: what it owes replaces a debt to
	// all of them.
	delete(r.all, key)
	for _, id := range ids {
		if _, bad := failed[id]; !bad {
			delete(debts, id)
		}
	}
	var o *owed
	for id, cause := range failed {
		if isGone(cause) {
			delete(debts, id)
			continue
		}
		if r.closed {
			s.log.WarnContext(ctx, "channel: undelivered publication not retried: shutting down; the subscriber sees the gap at its next publication", slog.String("channel", key), slog.String("connection_id", id))
			continue
		}
		if o == nil {
			o = &owed{data: data}
		}
		if debts == nil {
			debts = s.startRedelivery(key)
		}
		debts[id] = o
	}
}

// settleAll records that a round could not list key's subscribers, so
// its newest publication (data) is owed to all of them.
func (s *Service) settleAll(ctx context.Context, key string, data []byte) {
	r := s.redo
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		s.log.WarnContext(ctx, "channel: undelivered publication not retried: shutting down; subscribers see the gap at their next publication", slog.String("channel", key))
		return
	}
	if r.owed[key] == nil {
		s.startRedelivery(key)
	}
	r.all[key] = &owed{data: data}
}

// startRedelivery starts key's redelivery and returns its (empty) debts;
// r.mu is held.
func (s *Service) startRedelivery(key string) map[string]*owed {
	r := s.redo
	debts := map[string]*owed{}
	r.owed[key] = debts
	r.workers.Go(func() { s.redeliverLoop(key) })
	return debts
}

// redeliverLoop tries key's debts on the backoff until none is left or
// the service shuts down.
func (s *Service) redeliverLoop(key string) {
	r := s.redo
	for try := 0; ; try++ {
		select {
		case <-r.after(r.delay(try)):
		case <-r.ctx.Done():
			r.mu.Lock()
			n := len(r.owed[key])
			delete(r.owed, key)
			delete(r.all, key)
			r.mu.Unlock()
			s.log.Warn("channel: redelivery stopped by shutdown; those subscribers see the gap at their next publication", slog.String("channel", key), slog.Int("subscribers", n))
			return
		}
		r.mu.Lock()
		debts := make(map[string]*owed, len(r.owed[key]))
		for id, o := range r.owed[key] {
			debts[id] = o
		}
		all := r.all[key]
		r.mu.Unlock()

		settled, listed := s.redeliver(r.ctx, key, debts, all)

		r.mu.Lock()
		left := r.owed[key]
		if listed && all != nil && r.all[key] == all {
			// Every subscriber now has its own debt (in debts).
			delete(r.all, key)
			for id, o := range debts {
				if o == all && left[id] == nil {
					left[id] = o
				}
			}
		}
		for _, id := range settled {
			if left[id] == debts[id] { // not owed something newer meanwhile
				delete(left, id)
			}
		}
		if len(left) == 0 && r.all[key] == nil {
			delete(r.owed, key)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// redeliver posts each debt once and returns the subscribers settled:
// reached, gone (their subscriptions removed) or no longer subscribed.
// all, when set, is owed to every subscriber without a debt of its own:
// it is added to debts for them, and listed reports that the subscribers
// could be listed.
func (s *Service) redeliver(ctx context.Context, key string, debts map[string]*owed, all *owed) (settled []string, listed bool) {
	subs, err := s.store.Subscribers(ctx, key)
	if err != nil {
		s.log.WarnContext(ctx, "channel: redelivery: listing subscribers", slog.String("channel", key), slog.Any("error", err))
		return nil, false
	}
	subscribed := make(map[string]bool, len(subs))
	for _, sub := range subs {
		subscribed[sub.ConnectionID] = true
		if all != nil && debts[sub.ConnectionID] == nil {
			debts[sub.ConnectionID] = all
		}
	}
	groups := map[*owed][]string{}
	for id, o := range debts {
		if !subscribed[id] {
			settled = append(settled, id)
			continue
		}
		groups[o] = append(groups[o], id)
	}
	for o, ids := range groups {
		err := s.out.Broadcast(ctx, ids, json.RawMessage(o.data))
		var be *connection.BroadcastError
		switch {
		case err == nil:
			settled = append(settled, ids...)
		case errors.As(err, &be):
			for _, id := range ids {
				cause, bad := be.Failed[id]
				if bad && isGone(cause) {
					if err := s.RemoveConnection(ctx, id); err != nil {
						s.log.WarnContext(ctx, "channel: removing gone subscriber", slog.String("connection_id", id), slog.Any("error", err))
					}
				}
				if !bad || isGone(cause) {
					settled = append(settled, id)
				}
			}
			s.log.DebugContext(ctx, "channel: redelivery failed; trying again later", slog.String("channel", key), slog.Int("failed", len(be.Failed)))
		default:
			s.log.WarnContext(ctx, "channel: redelivery failed; trying again later", slog.String("channel", key), slog.Any("error", err))
		}
	}
	return settled, true
}

// stop ends the redeliveries and waits for them.
func (r *redelivery) stop() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.workers.Wait()
}
