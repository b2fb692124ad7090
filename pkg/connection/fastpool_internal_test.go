package connection

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// TestPoolBoundsEndACallWithoutItsContext: a call through the pool under
// a context that never ends stops at its bounds' deadline (an attempt
// timeout) or when the stop flag is raised (Shutdown), with errors that
// say which; a call whose stop flag is already up is not sent.
func TestPoolBoundsEndACallWithoutItsContext(t *testing.T) {
	var requests atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	fc := NewFastClient(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}, srv.URL)
	defer fc.CloseIdleConnections()
	if fc.ep.pool == nil {
		t.Fatal("the loopback endpoint has no pool")
	}
	ctx := context.Background()
	data := []byte("m")
	hash := payloadHash(data)

	start := time.Now()
	err := fc.post(ctx, &fc.ep, "held", data, hash, bounds{Deadline: start.Add(100 * time.Millisecond)})
	if !errors.Is(err, errAttemptTimedOut) {
		t.Fatalf("past its deadline: %v, want errAttemptTimedOut", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("ended after %v, before its deadline", el)
	}

	var stop atomic.Bool
	done := make(chan error, 1)
	go func() { done <- fc.post(ctx, &fc.ep, "held", data, hash, bounds{Stop: &stop}) }()
	for requests.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, ErrShuttingDown) || !errors.Is(err, context.Canceled) {
			t.Fatalf("stopped: %v, want ErrShuttingDown and context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop flag did not end the call")
	}

	err = fc.post(ctx, &fc.ep, "other", data, hash, bounds{Stop: &stop})
	if !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("stopped before the call: %v", err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests reached the server; a call stopped before it began was sent", n)
	}
}
