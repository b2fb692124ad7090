package channel_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/channel/channeltest"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryStoreContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T, now func() time.Time) channel.Store {
		return channel.NewMemoryStore(channel.WithMemoryClock(now))
	})
}

// TestDynamoStoreContract runs the suite on dynalite: one table for all
// cases, which keep apart by their channel keys.
func TestDynamoStoreContract(t *testing.T) {
	client := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, client, "chan")
	channeltest.Run(t, func(t *testing.T, now func() time.Time) channel.Store {
		return channel.NewDynamoStore(client, channel.WithDynamoPrefix(prefix), channel.WithDynamoClock(now))
	})
}
