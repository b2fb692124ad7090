package channel

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/streamer-go/streamer/pkg/connection"
)

// Sender delivers one message to one connection, routing by the
// connection's stored record. *connection.Manager satisfies it.
type Sender interface {
	Send(ctx context.Context, connectionID string, message any) error
}

// DefaultSendEachWorkers is how many sends SendEach runs at once by
// default.
const DefaultSendEachWorkers = 16

// SendEach returns a Broadcaster that delivers with one s.Send per
// connection, at most workers at once (DefaultSendEachWorkers when
// <= 0), and reports failures as a *connection.BroadcastError like
// Broadcast does.
//
// Manager.Broadcast routes each ID by its record too (in one batched
// read), so a *connection.Manager rarely needs this; it suits a Sender
// that has no Broadcast of its own. A connection whose record is gone
// counts as gone, so its subscriptions are removed.
func SendEach(s Sender, workers int) Broadcaster {
	if workers <= 0 {
		workers = DefaultSendEachWorkers
	}
	return &sendEach{s: s, workers: workers}
}

type sendEach struct {
	s       Sender
	workers int
}

// Broadcast encodes the message once and sends the bytes to each ID.
func (b *sendEach) Broadcast(ctx context.Context, connectionIDs []string, message any) error {
	data, err := connection.Encode(message)
	if err != nil {
		return err
	}
	raw := json.RawMessage(data)
	var (
		mu     sync.Mutex
		failed = map[string]error{}
		wg     sync.WaitGroup
		ids    = make(chan string)
	)
	for range min(b.workers, len(connectionIDs)) {
		wg.Go(func() {
			for id := range ids {
				if err := b.s.Send(ctx, id, raw); err != nil {
					mu.Lock()
					failed[id] = err
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range connectionIDs {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if len(failed) == 0 {
		return nil
	}
	return &connection.BroadcastError{Total: len(connectionIDs), Failed: failed}
}
