package connection_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
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
	if os.Getenv(benchServerEnv) != "" {
		os.Exit(runBenchServer())
	}
	goleak.VerifyTestMain(m)
}

// fixtureClientEnv picks the client the fixtures build: "sdk" for
// NewAPIGatewayClient, anything else for NewFastClient. The behaviour
// tests run with both: TestBehaviourWithSDKClient runs this test binary
// again with it set to "sdk".
const fixtureClientEnv = "STREAMER_CONNECTION_TEST_CLIENT"

func fixtureUsesSDK() bool { return os.Getenv(fixtureClientEnv) == "sdk" }

// newTestClient builds the fixture's client for srv.
func newTestClient(srv *connectiontest.Server) connection.APIGatewayClient {
	if fixtureUsesSDK() {
		return srv.Client()
	}
	return srv.FastClient()
}

// TestBehaviourWithSDKClient runs every other test of this package again
// (same flags) with the fixtures built on the SDK client, so that both
// clients pass the same behaviour tests. The one exception is the 10,000-ID
// chaos test, which takes most of the package's time (over 20 s under
// -race): it runs on the default, lean client, and the SDK client's
// handling of every fault it injects is covered by the per-status and
// scripted-fault tests of this run.
func TestBehaviourWithSDKClient(t *testing.T) {
	if fixtureUsesSDK() {
		t.Skip("this is the SDK run")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	var args []string
	skip := "^TestChaosBroadcast$"
	for _, a := range os.Args[1:] {
		// A second profile would overwrite the first.
		if strings.HasPrefix(a, "-test.coverprofile") || strings.HasPrefix(a, "-test.cpuprofile") ||
			strings.HasPrefix(a, "-test.memprofile") || strings.HasPrefix(a, "-test.trace") {
			continue
		}
		// Each run of this test runs the package once: passing -test.count
		// on would repeat the package count times in every one of the
		// parent's count runs.
		if strings.HasPrefix(a, "-test.count=") {
			continue
		}
		if v, ok := strings.CutPrefix(a, "-test.skip="); ok && v != "" {
			skip = v + "|" + skip
			continue
		}
		args = append(args, a)
	}
	args = append(args, "-test.skip="+skip)
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), fixtureClientEnv+"=sdk")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests failed with the SDK client: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("SDK client run:\n%s", out)
	}
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
	client := newTestClient(f.srv)
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
		closeIdle(client)
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

// closeIdle closes the idle keep-alive connections of a test client.
func closeIdle(client connection.APIGatewayClient) {
	switch c := client.(type) {
	case *connection.FastClient:
		c.CloseIdleConnections()
	case *apigatewaymanagementapi.Client:
		if h, ok := c.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
			h.CloseIdleConnections()
		}
	}
}
