package connection_test

import (
	"context"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// blockingStore holds UpdateLastPing until release is closed, to observe
// background work.
type blockingStore struct {
	store.ConnectionStore
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) UpdateLastPing(ctx context.Context, id string, at time.Time) error {
	close(s.entered)
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.ConnectionStore.UpdateLastPing(ctx, id, at)
}

// getOnlyStore hides the memory store's GetRoute, so the Manager falls
// back to Get.
type getOnlyStore struct {
	store.ConnectionStore
}
