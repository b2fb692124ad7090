package channel

import "time"

// WithDynamoHistoryWait replaces historyWait, so tests of a publisher
// that never writes its entry need not wait 10 s.
func WithDynamoHistoryWait(d time.Duration) DynamoOption {
	return func(s *DynamoStore) { s.wait = d }
}
