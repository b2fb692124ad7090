package connection_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock drives the manager's time. In auto mode every After fires at
// once and moves the clock forward by its duration, so retries take no
// real time; otherwise timers fire only on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	auto   bool
	sleeps []time.Duration
	timers []fakeTimer
	after  chan time.Duration // every After call is announced here (buffered)
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newAutoClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), auto: true, after: make(chan time.Duration, 100000)}
}

func newManualClock() *fakeClock {
	c := newAutoClock()
	c.auto = false
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	ch := make(chan time.Time, 1)
	if c.auto {
		if d > 0 {
			c.now = c.now.Add(d)
		}
		ch <- c.now
	} else {
		c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	}
	select {
	case c.after <- d:
	default:
	}
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// fixture is a manager wired to a real @connections server through the
// real SDK client, over a memory store.
type fixture struct {
	m     *connection.Manager
	srv   *connectiontest.Server
	store *memory.Store
	clock *fakeClock
}

func newFixture(t *testing.T, opts ...connection.Option) *fixture {
	t.Helper()
	return newFixtureWithClient(t, nil, opts...)
}

// newFixtureWithClient uses client (built for the fixture's server by
// mk) instead of one from NewAPIGatewayClient.
func newFixtureWithClient(t *testing.T, mk func(endpoint string) connection.APIGatewayClient, opts ...connection.Option) *fixture {
	t.Helper()
	f := &fixture{srv: connectiontest.NewServer(), store: memory.New(), clock: newAutoClock()}
	var client connection.APIGatewayClient = f.srv.Client()
	if mk != nil {
		client = mk(f.srv.URL)
	}
	opts = append([]connection.Option{connection.WithClock(f.clock)}, opts...)
	f.m = connection.NewManager(f.store, client, f.srv.URL, opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		f.srv.Close()
		if c, ok := client.(*apigatewaymanagementapi.Client); ok {
			if h, ok := c.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
				h.CloseIdleConnections()
			}
		}
	})
	return f
}

// connect saves connection records for ids.
func (f *fixture) connect(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := f.store.Save(context.Background(), &store.Connection{
			ConnectionID: id, UserID: "u-" + id, ConnectedAt: f.clock.Now(),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) exists(t *testing.T, id string) bool {
	t.Helper()
	_, err := f.store.Get(context.Background(), id)
	return err == nil
}

var testCreds = aws.Config{
	Region:      "eu-west-1",
	Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
}

// defaultSDKClient is a client as a user would build it with the SDK's
// defaults: standard retryer, 3 attempts on 5xx and 429.
func defaultSDKClient(endpoint string) connection.APIGatewayClient {
	return apigatewaymanagementapi.NewFromConfig(testCreds, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}
