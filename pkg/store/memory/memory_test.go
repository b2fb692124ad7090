package memory_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) storetest.Stores {
		s := memory.New(memory.WithClock(now), memory.WithPageSize(2))
		return storetest.Stores{Connections: s, Requests: s}
	})
}
