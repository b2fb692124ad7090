package channel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore keeps channel state in process memory, for `streamer dev`,
// tests and single-process servers. Its epochs are born with the process,
// so a restart changes every channel's epoch and clients recover with
// recovered:false, as they must: the history is gone. Safe for concurrent
// use.
type MemoryStore struct {
	now func() time.Time

	mu       sync.Mutex
	channels map[string]*memChannel
	// byConn indexes subscriptions by connection. It may name channels
	// whose subscription has since expired; readers check.
	byConn map[string][]string
}

// memChannel is one channel. A subscription costs one subs entry and one
// byConn slice element (plus the connection id string, shared by both).
type memChannel struct {
	key    string // the map's own key, shared by byConn entries
	subs   map[string]memSub
	offset uint64
	epoch  string
	hist   []memEntry // oldest first, at most the history size
}

type memSub struct {
	userID  string
	expires int64 // Unix nanoseconds
}

type memEntry struct {
	Entry
	expires int64 // Unix nanoseconds; 0: never
}

// MemoryOption configures a MemoryStore.
type MemoryOption func(*MemoryStore)

// WithMemoryClock replaces time.Now, for tests of expiry.
func WithMemoryClock(now func() time.Time) MemoryOption {
	return func(s *MemoryStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	s := &MemoryStore{now: time.Now, channels: map[string]*memChannel{}, byConn: map[string][]string{}}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

// newEpoch returns a random epoch: 16 hex digits.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand's documented contract)
	return hex.EncodeToString(b[:])
}

// channel returns the channel's state, creating it; s.mu is held.
func (s *MemoryStore) channel(key string) *memChannel {
	ch := s.channels[key]
	if ch == nil {
		ch = &memChannel{key: key, subs: map[string]memSub{}, epoch: newEpoch()}
		s.channels[key] = ch
	}
	return ch
}

func checkKey(channel, connectionID string) error {
	if channel == "" || connectionID == "" {
		return fmt.Errorf("%w: empty channel or connection id", ErrInvalidInput)
	}
	return nil
}

// Subscribe adds or refreshes a subscription.
func (s *MemoryStore) Subscribe(ctx context.Context, channel string, sub Subscriber, expires time.Time) (bool, error) {
	if err := checkKey(channel, sub.ConnectionID); err != nil {
		return false, err
	}
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channel(channel)
	old, had := ch.subs[sub.ConnectionID]
	created := !had || old.expires <= now
	if !had && !slices.Contains(s.byConn[sub.ConnectionID], channel) {
		// ch.key, not channel: every subscription then shares one copy
		// of the key instead of retaining the caller's.
		s.byConn[sub.ConnectionID] = append(s.byConn[sub.ConnectionID], ch.key)
	}
	ch.subs[sub.ConnectionID] = memSub{userID: sub.UserID, expires: expires.UnixNano()}
	return created, nil
}

// Unsubscribe removes a subscription.
func (s *MemoryStore) Unsubscribe(ctx context.Context, channel, connectionID string) (Subscriber, bool, error) {
	if err := checkKey(channel, connectionID); err != nil {
		return Subscriber{}, false, err
	}
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	chans := s.byConn[connectionID]
	if i := slices.Index(chans, channel); i >= 0 {
		chans = slices.Delete(chans, i, i+1)
		if len(chans) == 0 {
			delete(s.byConn, connectionID)
		} else {
			s.byConn[connectionID] = chans
		}
	}
	ch := s.channels[channel]
	if ch == nil {
		return Subscriber{}, false, nil
	}
	sub, ok := ch.subs[connectionID]
	if !ok {
		return Subscriber{}, false, nil
	}
	delete(ch.subs, connectionID)
	s.dropIfIdle(channel, ch, now)
	if sub.expires <= now {
		return Subscriber{}, false, nil
	}
	return Subscriber{ConnectionID: connectionID, UserID: sub.userID}, true, nil
}

// Subscribers lists live subscriptions, dropping expired ones.
func (s *MemoryStore) Subscribers(ctx context.Context, channel string) ([]Subscriber, error) {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channel]
	if ch == nil {
		return nil, nil
	}
	out := make([]Subscriber, 0, len(ch.subs))
	for id, sub := range ch.subs {
		if sub.expires <= now {
			delete(ch.subs, id)
			continue
		}
		out = append(out, Subscriber{ConnectionID: id, UserID: sub.userID})
	}
	s.dropIfIdle(channel, ch, now)
	return out, nil
}

// dropIfIdle forgets a channel that has no subscriber and no live history,
// so a long-running process does not keep every channel it ever saw. Its
// next use starts a new epoch, which is what the epoch is for: nothing of
// the old one is left to recover. s.mu is held.
func (s *MemoryStore) dropIfIdle(key string, ch *memChannel, now int64) {
	if len(ch.subs) != 0 {
		return
	}
	for _, e := range ch.hist {
		if e.expires == 0 || e.expires > now {
			return
		}
	}
	delete(s.channels, key)
}

// Subscriptions lists the channels of a connection.
func (s *MemoryStore) Subscriptions(ctx context.Context, connectionID string) ([]string, error) {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, key := range s.byConn[connectionID] {
		if ch := s.channels[key]; ch != nil {
			if sub, ok := ch.subs[connectionID]; ok && sub.expires > now {
				out = append(out, key)
			}
		}
	}
	return out, nil
}

// Publish assigns the next offset and keeps the entry.
func (s *MemoryStore) Publish(ctx context.Context, channel string, e Entry, h HistoryOptions) (Position, error) {
	if channel == "" {
		return Position{}, fmt.Errorf("%w: empty channel", ErrInvalidInput)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channel(channel)
	ch.offset++
	e.Offset = ch.offset
	if h.Size > 0 {
		me := memEntry{Entry: Entry{Offset: e.Offset, Data: slices.Clone(e.Data), UserID: e.UserID}}
		if h.TTL > 0 {
			me.expires = now.Add(h.TTL).UnixNano()
		}
		if len(ch.hist) >= h.Size {
			// Shift rather than grow: the slice never exceeds Size.
			n := len(ch.hist) - h.Size + 1
			copy(ch.hist, ch.hist[n:])
			clear(ch.hist[len(ch.hist)-n:])
			ch.hist = ch.hist[:len(ch.hist)-n]
		}
		ch.hist = append(ch.hist, me)
	} else {
		ch.hist = nil
	}
	return Position{Offset: ch.offset, Epoch: ch.epoch}, nil
}

// History returns held entries after an offset.
func (s *MemoryStore) History(ctx context.Context, channel string, after uint64) ([]Entry, Position, error) {
	if channel == "" {
		return nil, Position{}, fmt.Errorf("%w: empty channel", ErrInvalidInput)
	}
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channel(channel)
	var out []Entry
	for _, me := range ch.hist {
		if me.Offset <= after || (me.expires != 0 && me.expires <= now) {
			continue
		}
		out = append(out, Entry{Offset: me.Offset, Data: slices.Clone(me.Data), UserID: me.UserID})
	}
	return out, Position{Offset: ch.offset, Epoch: ch.epoch}, nil
}

// Position returns the channel's position.
func (s *MemoryStore) Position(ctx context.Context, channel string) (Position, error) {
	if channel == "" {
		return Position{}, fmt.Errorf("%w: empty channel", ErrInvalidInput)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channel(channel)
	return Position{Offset: ch.offset, Epoch: ch.epoch}, nil
}
