package storetest_test

import (
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/store/storetest"
)

// A store's own tests run the suite with a factory that builds a fresh,
// isolated store on the suite's clock for every subtest. The body below
// belongs in a TestContract(t *testing.T) of the store's package; package
// dynamo's factory also creates fresh tables per subtest.
func ExampleRun() {
	testContract := func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, now func() time.Time) storetest.Stores {
			s := memory.New(memory.WithClock(now), memory.WithPageSize(2))
			return storetest.Stores{Connections: s, Requests: s}
		})
	}
	_ = testContract
}
