package memory

import (
	"fmt"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

func opError(op, id string, err error) error {
	if id == "" {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	return fmt.Errorf("memory: %s %q: %w", op, id, err)
}

// invalid builds an ErrInvalidInput error that names what was wrong.
func invalid(op, id, what string) error {
	return opError(op, id, fmt.Errorf("%s: %w", what, store.ErrInvalidInput))
}

// conflict builds an ErrConflict error that names the state found.
func conflict(op, id, why string) error {
	return opError(op, id, fmt.Errorf("%s: %w", why, store.ErrConflict))
}

func notFound(op, id string) error { return opError(op, id, store.ErrNotFound) }

func validLease(lease time.Duration) bool { return lease > 0 }

func sizeError(n int) error {
	return fmt.Errorf("record of about %d bytes exceeds the %d-byte item limit: %w", n, store.MaxItemBytes, store.ErrTooLarge)
}
