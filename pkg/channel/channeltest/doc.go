// Package channeltest is the contract suite of channel.Store: Run checks
// subscriptions (refresh, expiry, removal), offsets (1, 2, 3… with no gap
// or duplicate under concurrent publishers), epochs, bounded history (size
// and TTL) and tenant-key isolation against any implementation. Both
// channel.MemoryStore and channel.DynamoStore (on dynalite) run it; run it
// from your own store's tests:
//
//	func TestMyStore(t *testing.T) {
//		channeltest.Run(t, func(t *testing.T, now func() time.Time) channel.Store {
//			return mystore.New(mystore.WithClock(now))
//		})
//	}
package channeltest
