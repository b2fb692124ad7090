package main

import (
	"errors"
	"flag"

	"github.com/streamer-go/streamer/pkg/connection"
)

// pacingOptions is the @connections call budget of `streamer dev`'s
// connection manager (API Gateway's account quota: 10,000 requests/s,
// burst 5,000, shared with new connections).
type pacingOptions struct {
	rate  float64
	burst int
}

func pacingFlags(fs *flag.FlagSet, o *pacingOptions) (finish func() error) {
	fs.Float64Var(&o.rate, "pacing-rate", connection.DefaultRate,
		"@connections calls per second the connection manager may make (posts, retries and GETs); 0 means unlimited")
	fs.IntVar(&o.burst, "pacing-burst", connection.DefaultBurst,
		"@connections calls that may go at once after a quiet spell; 0 means half of --pacing-rate")
	return func() error {
		if o.rate < 0 || o.burst < 0 {
			return errors.New("--pacing-rate and --pacing-burst must not be negative")
		}
		return nil
	}
}

// managerOption is the manager's Limiter: none when the rate is 0.
func (o pacingOptions) managerOption() connection.Option {
	if o.rate == 0 {
		return connection.WithLimiter(nil)
	}
	return connection.WithLimiter(connection.NewLimiter(connection.LimiterConfig{Rate: o.rate, Burst: o.burst}))
}
