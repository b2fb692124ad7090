package progress

import (
	"math"
	"time"
)

// Defaults of a Publisher.
const (
	// DefaultRate is how many updates per second a Publisher sends to the
	// client at most.
	DefaultRate = 10.0
	// DefaultPersistInterval is the minimum time between two persisted
	// updates; persisting is throttled harder than sending because every
	// persisted update is a DynamoDB write.
	DefaultPersistInterval = time.Second
)

// Option configures a Publisher.
type Option func(*config)

type config struct {
	sendInterval    time.Duration
	persistInterval time.Duration
	onError         func(error)
}

func defaultConfig() config {
	return config{
		sendInterval:    rateInterval(DefaultRate),
		persistInterval: DefaultPersistInterval,
	}
}

// WithRate sets how many updates per second are sent to the client at most
// (default [DefaultRate]). The first update is sent at once; later ones wait
// for their slot and are coalesced meanwhile. math.Inf(1) removes the limit.
// Zero, negative and NaN values are ignored.
func WithRate(perSecond float64) Option {
	return func(c *config) {
		switch {
		case math.IsInf(perSecond, 1):
			c.sendInterval = 0
		case perSecond > 0:
			c.sendInterval = rateInterval(perSecond)
		}
	}
}

// WithPersistInterval sets the minimum time between two persisted updates
// (default [DefaultPersistInterval]). The first update is persisted at once,
// so a cancelled request is noticed early. Zero persists every update that is
// not coalesced away; negative values are ignored.
func WithPersistInterval(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.persistInterval = d
		}
	}
}

// WithErrorHandler sets a function called with a [*DeliveryError] each time
// the send or persist Func fails. It runs on the delivery goroutine, outside
// any lock, and delays later deliveries while it runs, so it should be quick
// (the processor uses it to notice store.ErrConflict and cancel the handler).
// It may call Report but must not call Close, which waits for the goroutine
// the handler runs on.
func WithErrorHandler(fn func(error)) Option {
	return func(c *config) { c.onError = fn }
}

func rateInterval(perSecond float64) time.Duration {
	return time.Duration(float64(time.Second) / perSecond)
}
