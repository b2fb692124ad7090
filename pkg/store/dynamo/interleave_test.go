package dynamo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// hookClient runs a hook once, right after the next GetItem or Scan
// returns: another writer acting between the store's read and its
// conditional write, the window a read-modify-write would lose an update
// in.
type hookClient struct {
	dynamo.Client
	mu        sync.Mutex
	afterGet  func()
	afterScan func()
}

func (c *hookClient) take(hook *func()) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := *hook
	*hook = nil
	return h
}

func (c *hookClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.Client.GetItem(ctx, in, o...)
	if h := c.take(&c.afterGet); h != nil {
		h()
	}
	return out, err
}

func (c *hookClient) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.Client.Scan(ctx, in, o...)
	if h := c.take(&c.afterScan); h != nil {
		h()
	}
	return out, err
}

// interleaved returns a store whose client runs hooks, and a plain store
// on the same tables and clock for the hooks to write with.
func interleaved(t *testing.T) (hooked *dynamo.Store, hooks *hookClient, other *dynamo.Store, clock *manualClock) {
	t.Helper()
	client := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, client, "test")
	clock = &manualClock{now: time.Now().UTC().Truncate(time.Second)}
	hooks = &hookClient{Client: client}
	opts := []dynamo.Option{dynamo.WithPrefix(prefix), dynamo.WithClock(clock.Now)}
	return dynamo.New(hooks, opts...), hooks, dynamo.New(client, opts...), clock
}

// Requeue of the last attempt reads the request, then writes FAILED. A
// Cancel landing between the two must win: the write is conditioned on
// what was read, so it fails instead of overwriting CANCELLED.
func TestRequeueDoesNotOverwriteACancelBetweenReadAndWrite(t *testing.T) {
	t.Parallel()
	s, hooks, other, _ := interleaved(t)
	ctx := t.Context()
	if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "r-1", "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	hooks.afterGet = func() {
		if _, err := other.Cancel(ctx, "r-1"); err != nil {
			t.Errorf("Cancel between Requeue's read and write: %v", err)
		}
	}
	_, err := s.Requeue(ctx, "r-1", "w1", store.RequestError{Code: "INTERNAL", Message: "boom"}, 1)
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Requeue after a concurrent Cancel: %v, want ErrConflict", err)
	}
	got, err := other.GetRequest(ctx, "r-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusCancelled || got.Error != nil || got.Attempts != 0 {
		t.Errorf("stored %s, error %+v, %d attempts; want the Cancel untouched", got.Status, got.Error, got.Attempts)
	}
}

// Claim of an expired lease reads the request, then takes it over. A
// rescuer that takes it over between the two keeps it.
func TestTakeOverLosesToATakeOverBetweenReadAndWrite(t *testing.T) {
	t.Parallel()
	s, hooks, other, clock := interleaved(t)
	ctx := t.Context()
	if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "r-1", "dead", time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	hooks.afterGet = func() {
		if _, err := other.Claim(ctx, "r-1", "first", time.Minute); err != nil {
			t.Errorf("take-over between Claim's read and write: %v", err)
		}
	}
	_, err := s.Claim(ctx, "r-1", "second", time.Minute)
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("second take-over: %v, want ErrConflict", err)
	}
	got, err := other.GetRequest(ctx, "r-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.LeaseOwner != "first" || got.Attempts != 1 {
		t.Errorf("stored lease %q with %d attempts; want first's, counted once", got.LeaseOwner, got.Attempts)
	}
}

// DeleteStale scans, then deletes. A connection that pings between the
// two is no longer stale and must survive.
func TestDeleteStaleSparesAConnectionPingedMidSweep(t *testing.T) {
	t.Parallel()
	s, hooks, other, clock := interleaved(t)
	ctx := t.Context()
	now := clock.Now()
	c := &store.Connection{ConnectionID: "c-1", UserID: "u-1", ConnectedAt: now.Add(-time.Hour), LastPing: now.Add(-time.Hour)}
	if err := s.Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	hooks.afterScan = func() {
		if err := other.UpdateLastPing(ctx, "c-1", now); err != nil {
			t.Errorf("ping between DeleteStale's scan and delete: %v", err)
		}
	}
	n, err := s.DeleteStale(ctx, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("DeleteStale removed %d, want 0: the connection pinged before the delete", n)
	}
	if _, err := other.Get(ctx, "c-1"); err != nil {
		t.Errorf("Get after DeleteStale: %v, want the pinged connection kept", err)
	}
}
