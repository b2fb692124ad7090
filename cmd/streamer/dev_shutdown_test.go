package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// slowProcessor's Shutdown returns only once released, as a processor
// whose cut runs are still being put back in a slow store.
type slowProcessor struct {
	release  chan struct{}
	returned chan struct{}
	err      error
}

func (p *slowProcessor) Shutdown(ctx context.Context) error {
	defer close(p.returned)
	<-p.release
	return p.err
}

// TestSocketsCloseWhileCutRunsArePutBack: past the processor's deadline
// the sockets close without waiting for it; a processor done before its
// deadline is done before they close.
func TestSocketsCloseWhileCutRunsArePutBack(t *testing.T) {
	t.Run("processor past its deadline", func(t *testing.T) {
		p := &slowProcessor{release: make(chan struct{}), returned: make(chan struct{}), err: context.DeadlineExceeded}
		pctx, cancel := context.WithCancel(t.Context())
		cancel() // the processor's deadline has passed
		errc := make(chan error, 1)
		go func() {
			errc <- stopProcessorThen(pctx, p, func() {
				select {
				case <-p.returned:
					t.Error("the sockets closed only after the processor was done")
				default:
				}
				close(p.release)
			})
		}()
		select {
		case err := <-errc:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stopProcessorThen = %v, want the processor's error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the sockets never closed: stopProcessorThen waited for the processor")
		}
	})
	t.Run("processor done in time", func(t *testing.T) {
		p := &slowProcessor{release: make(chan struct{}), returned: make(chan struct{})}
		close(p.release)
		closed := false
		err := stopProcessorThen(t.Context(), p, func() {
			select {
			case <-p.returned:
			default:
				t.Error("the sockets closed while the processor still ran")
			}
			closed = true
		})
		if err != nil || !closed {
			t.Errorf("stopProcessorThen = %v, sockets closed %t", err, closed)
		}
	})
}
