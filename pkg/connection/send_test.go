package connection_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
)

func TestSendPutsMessagesOnTheWireAsIs(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	ctx := context.Background()
	type greeting struct {
		Text string `json:"text"`
	}
	msgs := []any{
		[]byte{0x00, 0xff, 'h', 'i'},
		json.RawMessage(`{"raw":true}`),
		"plain text",
		greeting{Text: "hello"},
		map[string]int{"n": 1},
	}
	want := [][]byte{
		{0x00, 0xff, 'h', 'i'},
		[]byte(`{"raw":true}`),
		[]byte("plain text"),
		[]byte(`{"text":"hello"}`),
		[]byte(`{"n":1}`),
	}
	for _, msg := range msgs {
		if err := f.m.Send(ctx, "c1", msg); err != nil {
			t.Fatalf("Send(%T): %v", msg, err)
		}
	}
	got := f.srv.Received("c1")
	if len(got) != len(want) {
		t.Fatalf("received %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestSendRoundTripsURLEncodedIDs(t *testing.T) {
	f := newFixture(t)
	f.srv.RecordPaths()
	ids := []string{"L0SM9cOFvHcCIhw=", "a/b+c=", "with space", "ü?#%"}
	f.connect(t, ids...)
	for _, id := range ids {
		if err := f.m.Send(context.Background(), id, "hi "+id); err != nil {
			t.Fatalf("Send(%q): %v", id, err)
		}
		if got := f.srv.Received(id); len(got) != 1 || string(got[0]) != "hi "+id {
			t.Errorf("server got %q for %q", got, id)
		}
	}
	// On the wire every reserved character is percent-encoded.
	want := []string{
		"/@connections/L0SM9cOFvHcCIhw%3D",
		"/@connections/a%2Fb%2Bc%3D",
		"/@connections/with%20space",
		"/@connections/%C3%BC%3F%23%25",
	}
	got := f.srv.RawPaths()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("raw paths = %q, want %q", got, want)
	}
}

// TestSendAttemptsPerStatus counts the HTTP attempts the server sees for
// each answer, with the client NewAPIGatewayClient builds and with an SDK
// client left at its defaults (3 attempts of its own): the manager must
// turn SDK retries off per call, or attempts multiply.
func TestSendAttemptsPerStatus(t *testing.T) {
	cases := []struct {
		name      string
		script    []int
		attempts  int
		delivered bool
		is        error
	}{
		{"ok", nil, 1, true, nil},
		{"500 always", []int{500, 500, 500, 500, 500}, 4, false, nil},
		{"503 then ok", []int{503}, 2, true, nil},
		{"429 always", []int{429, 429, 429, 429, 429}, 4, false, nil},
		{"429 twice then ok", []int{429, 429}, 3, true, nil},
		{"network drop then ok", []int{connectiontest.StatusDrop}, 2, true, nil},
		{"network drop always", []int{-1, -1, -1, -1, -1}, 4, false, nil},
		{"400", []int{400}, 1, false, nil},
		{"403", []int{403}, 1, false, nil},
		{"413", []int{413}, 1, false, connection.ErrMessageTooLarge},
		{"410", []int{410}, 1, false, connection.ErrConnectionStale},
	}
	clients := map[string]func(string) connection.APIGatewayClient{
		"NewAPIGatewayClient": nil,
		"default SDK client":  defaultSDKClient,
	}
	for cname, mk := range clients {
		for _, tc := range cases {
			t.Run(cname+"/"+tc.name, func(t *testing.T) {
				f := newFixtureWithClient(t, mk)
				f.connect(t, "c1")
				f.srv.Script("c1", tc.script...)
				err := f.m.Send(context.Background(), "c1", "m")
				if got := f.srv.Attempts("c1"); got != tc.attempts {
					t.Errorf("attempts = %d, want %d", got, tc.attempts)
				}
				if got := len(f.srv.Received("c1")) == 1; got != tc.delivered {
					t.Errorf("delivered = %v, want %v (err %v)", got, tc.delivered, err)
				}
				if (err == nil) != tc.delivered {
					t.Errorf("err = %v, delivered %v", err, tc.delivered)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("err = %v, want errors.Is %v", err, tc.is)
				}
				// One backoff sleep between attempts, none after the last.
				if got := len(f.clock.Sleeps()); got != tc.attempts-1 {
					t.Errorf("slept %d times for %d attempts", got, tc.attempts)
				}
			})
		}
	}
}

func TestSendClassifiesWithSDKTypes(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "gone", "throttled", "forbidden")
	f.srv.Disconnect("gone")
	f.srv.Script("throttled", 429, 429, 429, 429)
	f.srv.Script("forbidden", 403)
	ctx := context.Background()

	err := f.m.Send(ctx, "gone", "m")
	var goneErr *types.GoneException
	if !errors.Is(err, connection.ErrConnectionStale) || !errors.As(err, &goneErr) {
		t.Errorf("gone: err = %v, want ErrConnectionStale wrapping *types.GoneException", err)
	}
	var limit *types.LimitExceededException
	if err := f.m.Send(ctx, "throttled", "m"); !errors.As(err, &limit) {
		t.Errorf("throttled: err = %v, want *types.LimitExceededException", err)
	}
	var forbidden *types.ForbiddenException
	if err := f.m.Send(ctx, "forbidden", "m"); !errors.As(err, &forbidden) {
		t.Errorf("forbidden: err = %v, want *types.ForbiddenException", err)
	}
	byType := f.m.Stats().ErrorsByType
	if byType["gone"] != 1 || byType["throttled"] != 1 || byType["forbidden"] != 1 {
		t.Errorf("errors_by_type = %v", byType)
	}
}

func TestSendRetryDelaysAreFullJitterWithinBounds(t *testing.T) {
	ceilings := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for _, tc := range []struct {
		name string
		rnd  func(int64) int64
		want func(ceiling time.Duration) time.Duration
	}{
		{"lowest", func(int64) int64 { return 1 }, func(time.Duration) time.Duration { return 1 }},
		{"highest", func(n int64) int64 { return n - 1 }, func(c time.Duration) time.Duration { return c }},
		{"middle", func(n int64) int64 { return n / 2 }, func(c time.Duration) time.Duration { return c / 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, connection.WithRand(tc.rnd))
			f.connect(t, "c1")
			f.srv.Script("c1", 500, 500, 500, 500)
			_ = f.m.Send(context.Background(), "c1", "m")
			sleeps := f.clock.Sleeps()
			if len(sleeps) != len(ceilings) {
				t.Fatalf("sleeps = %v", sleeps)
			}
			for i, c := range ceilings {
				if sleeps[i] != tc.want(c) {
					t.Errorf("sleep %d = %v, want %v", i, sleeps[i], tc.want(c))
				}
			}
		})
	}
}

func TestSendRetryCapIsReachable(t *testing.T) {
	f := newFixture(t,
		connection.WithRand(func(n int64) int64 { return n - 1 }),
		connection.WithRetry(connection.RetryPolicy{MaxRetries: 8}))
	f.connect(t, "c1")
	f.srv.Script("c1", 500, 500, 500, 500, 500, 500, 500, 500, 500)
	_ = f.m.Send(context.Background(), "c1", "m")
	sleeps := f.clock.Sleeps()
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	if len(sleeps) != len(want) {
		t.Fatalf("sleeps = %v", sleeps)
	}
	for i, w := range want {
		if sleeps[i] != w*time.Millisecond {
			t.Errorf("sleep %d = %v, want %v", i, sleeps[i], w*time.Millisecond)
		}
	}
	if got := f.srv.Attempts("c1"); got != 9 {
		t.Errorf("attempts = %d, want 9", got)
	}
}

func TestSendCancelAbortsBackoffAtOnce(t *testing.T) {
	clock := newManualClock()
	f := newFixture(t, connection.WithClock(clock))
	f.connect(t, "c1")
	f.srv.Script("c1", 500, 500)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.m.Send(ctx, "c1", "m") }()
	<-clock.after // the Send is now waiting for its first backoff
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := f.srv.Attempts("c1"); got != 1 {
		t.Errorf("attempts = %d, want 1 (no attempt after cancel)", got)
	}
	if got := f.m.Stats().ErrorsByType["canceled"]; got != 1 {
		t.Errorf("canceled count = %d", got)
	}
}

func TestSendUnknownConnectionMakesNoCall(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"nobody", ""} {
		err := f.m.Send(context.Background(), id, "m")
		if !errors.Is(err, connection.ErrConnectionNotFound) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Send(%q) = %v, want ErrConnectionNotFound and store.ErrNotFound", id, err)
		}
	}
	if n := f.srv.TotalAttempts(); n != 0 {
		t.Errorf("%d HTTP calls for unknown connections", n)
	}
	if got := f.m.Stats().ErrorsByType["not_found"]; got != 2 {
		t.Errorf("not_found = %d, want 2", got)
	}
}

func TestSendGoneRemovesRecordAndBreaker(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	f.srv.Disconnect("c1")
	err := f.m.Send(context.Background(), "c1", "m")
	if !errors.Is(err, connection.ErrConnectionStale) {
		t.Fatalf("err = %v, want ErrConnectionStale", err)
	}
	if f.exists(t, "c1") {
		t.Error("gone connection still in the store")
	}
	// The next Send does not reach the gateway: the record is gone.
	if err := f.m.Send(context.Background(), "c1", "m"); !errors.Is(err, connection.ErrConnectionNotFound) {
		t.Errorf("second Send = %v, want ErrConnectionNotFound", err)
	}
	if got := f.srv.Attempts("c1"); got != 1 {
		t.Errorf("attempts = %d, want 1", got)
	}
}

func TestSendSizeLimitsAndInvalidMessages(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	ctx := context.Background()
	exact := bytes.Repeat([]byte("x"), connection.MaxMessageBytes)
	if err := f.m.Send(ctx, "c1", exact); err != nil {
		t.Fatalf("Send of exactly %d bytes: %v", len(exact), err)
	}
	if got := f.srv.Received("c1"); len(got) != 1 || len(got[0]) != connection.MaxMessageBytes {
		t.Fatalf("server did not get the %d-byte message", connection.MaxMessageBytes)
	}
	before := f.srv.TotalAttempts()
	for _, msg := range []any{
		append(exact, 'y'),
		strings.Repeat("y", connection.MaxMessageBytes+1),
		map[string]string{"big": strings.Repeat("z", connection.MaxMessageBytes)},
	} {
		if err := f.m.Send(ctx, "c1", msg); !errors.Is(err, connection.ErrMessageTooLarge) {
			t.Errorf("oversize %T: err = %v, want ErrMessageTooLarge", msg, err)
		}
	}
	for _, msg := range []any{make(chan int), func() {}, map[string]any{"f": 1.0 / zero()}} {
		if err := f.m.Send(ctx, "c1", msg); !errors.Is(err, connection.ErrInvalidMessage) {
			t.Errorf("%T: err = %v, want ErrInvalidMessage", msg, err)
		}
	}
	if err := f.m.Broadcast(ctx, []string{"c1"}, make(chan int)); !errors.Is(err, connection.ErrInvalidMessage) {
		t.Errorf("Broadcast invalid: %v", err)
	}
	if err := f.m.Broadcast(ctx, []string{"c1"}, append(exact, 'y')); !errors.Is(err, connection.ErrMessageTooLarge) {
		t.Errorf("Broadcast too large: %v", err)
	}
	if got := f.srv.TotalAttempts(); got != before {
		t.Errorf("%d HTTP calls for refused messages", got-before)
	}
}

func zero() float64 { return 0 }

func TestSendThroughPerConnectionEndpoint(t *testing.T) {
	f := newFixture(t)
	other := connectiontest.NewServer()
	defer other.Close()
	ctx := context.Background()
	if err := f.store.Save(ctx, &store.Connection{ConnectionID: "elsewhere", Endpoint: other.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	f.connect(t, "here")
	for i := 0; i < 3; i++ {
		if err := f.m.Send(ctx, "elsewhere", "to other stage"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.m.Send(ctx, "here", "to own stage"); err != nil {
		t.Fatal(err)
	}
	if got := len(other.Received("elsewhere")); got != 3 {
		t.Errorf("other endpoint got %d messages, want 3", got)
	}
	if got := f.srv.Attempts("elsewhere"); got != 0 {
		t.Errorf("manager's endpoint got %d requests for the other endpoint's connection", got)
	}
	if got := len(f.srv.Received("here")); got != 1 {
		t.Errorf("own endpoint got %d, want 1", got)
	}
	// That the derived client shares the pooled transport, and so has its
	// idle connections closed at Shutdown, is proven in idle_test.go.
}

func TestSendRefreshesLastPingAtMostOncePerMinute(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	ctx := context.Background()
	lastPing := func() time.Time {
		c, err := f.store.Get(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		return c.LastPing
	}
	send := func() {
		t.Helper()
		if err := f.m.Send(ctx, "c1", "m"); err != nil {
			t.Fatal(err)
		}
		if err := f.m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t0 := f.clock.Now()
	send()
	if got := lastPing(); !got.Equal(t0) {
		t.Fatalf("LastPing = %v, want %v", got, t0)
	}
	f.clock.Advance(30 * time.Second)
	send()
	if got := lastPing(); !got.Equal(t0) {
		t.Errorf("LastPing rewritten after 30 s: %v", got)
	}
	f.clock.Advance(31 * time.Second)
	send()
	if got, want := lastPing(), t0.Add(61*time.Second); !got.Equal(want) {
		t.Errorf("LastPing = %v, want %v", got, want)
	}
}

func TestSendLogsCarryCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	logger := newJSONLogger(&buf)
	f := newFixture(t, connection.WithLogger(logger))
	f.connect(t, "c1")
	f.srv.Script("c1", 500, 410)
	ctx := connection.WithCorrelationID(context.Background(), "req-42")
	if got := connection.CorrelationID(ctx); got != "req-42" {
		t.Fatalf("CorrelationID = %q", got)
	}
	_ = f.m.Send(ctx, "c1", "secret body")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 3 { // retry, removal, failure
		t.Fatalf("only %d log lines: %s", len(lines), buf.String())
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("bad log line %q", l)
		}
		if rec["correlation_id"] != "req-42" {
			t.Errorf("line without correlation_id: %s", l)
		}
		if strings.Contains(l, "secret body") {
			t.Errorf("message body logged: %s", l)
		}
	}
}

func TestIsActive(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "live", "gone", "L0SM9cOFvHcCIhw=")
	f.srv.Disconnect("gone")
	ctx := context.Background()
	if !f.m.IsActive(ctx, "live") || !f.m.IsActive(ctx, "L0SM9cOFvHcCIhw=") {
		t.Error("live connection reported inactive")
	}
	if f.m.IsActive(ctx, "gone") {
		t.Error("gone connection reported active")
	}
	if f.exists(t, "gone") {
		t.Error("gone connection not removed")
	}
	if f.m.IsActive(ctx, "never-saved") {
		t.Error("unknown connection reported active")
	}
	if got := f.srv.Attempts("never-saved"); got != 0 {
		t.Errorf("IsActive made %d calls for an unknown connection", got)
	}
	// A health check never sends anything to the client.
	if got := f.srv.ReceivedBy(); len(got) != 0 {
		t.Errorf("IsActive delivered messages: %v", got)
	}
}

// TestEveryLogLineCarriesCorrelationID covers the lines written outside
// Send: Broadcast (a gone ID removed, the summary), IsActive (a failed
// check) and Shutdown.
func TestEveryLogLineCarriesCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	f := newFixture(t, connection.WithLogger(newJSONLogger(&buf)))
	f.connect(t, "gone", "flaky")
	f.srv.Disconnect("gone")
	f.srv.Script("flaky", 500, 500, 500, 500)
	ctx := connection.WithCorrelationID(context.Background(), "req-7")
	_ = f.m.Broadcast(ctx, []string{"gone", "ok"}, "secret body")
	_ = f.m.IsActive(ctx, "flaky")
	if err := f.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	msgs := map[string]bool{}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("bad log line %q", l)
		}
		msgs[rec["msg"].(string)] = true
		if rec["correlation_id"] != "req-7" {
			t.Errorf("line without correlation_id: %s", l)
		}
		if strings.Contains(l, "secret body") {
			t.Errorf("message body logged: %s", l)
		}
	}
	for _, m := range []string{"connection: removed gone connection", "connection: broadcast done",
		"connection: IsActive check failed", "connection: shutting down"} {
		if !msgs[m] {
			t.Errorf("no %q line in %d lines", m, len(lines))
		}
	}
}

// TestSendRetriesAnAttemptThatTimedOut: the first attempt is held by the
// server until the per-attempt timeout gives up on it (the outcome does
// not depend on how long that takes); the manager classifies it as a
// network failure and retries, and the second attempt delivers.
func TestSendRetriesAnAttemptThatTimedOut(t *testing.T) {
	f := newFixture(t, connection.WithRetry(connection.RetryPolicy{AttemptTimeout: 250 * time.Millisecond}))
	f.connect(t, "c1")
	arrived, release := f.srv.Hold("c1")
	defer release()
	if err := f.m.Send(context.Background(), "c1", "m"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	<-arrived
	if got := f.srv.Attempts("c1"); got != 2 {
		t.Errorf("attempts = %d, want 2", got)
	}
	if got := len(f.srv.Received("c1")); got != 1 {
		t.Errorf("delivered %d times, want 1", got)
	}
	if s := f.m.Stats(); s.RetriesTotal != 1 || s.SendFailuresTotal != 0 {
		t.Errorf("retries %d, failures %d", s.RetriesTotal, s.SendFailuresTotal)
	}
}

// TestBroadcastRetriesAnAttemptThatTimedOut: one ID's first attempt is
// held past the attempt timeout; only that attempt is given up (the
// Broadcast and the other IDs' attempts go on), it is retried, and every
// ID is delivered once.
func TestBroadcastRetriesAnAttemptThatTimedOut(t *testing.T) {
	f := newFixture(t, connection.WithRetry(connection.RetryPolicy{AttemptTimeout: 250 * time.Millisecond}))
	ids := []string{"c1", "c2", "c3"}
	f.connect(t, ids...)
	arrived, release := f.srv.Hold("c2")
	defer release()
	if err := f.m.Broadcast(context.Background(), ids, "m"); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	<-arrived
	for _, id := range ids {
		if got := len(f.srv.Received(id)); got != 1 {
			t.Errorf("%s delivered %d times, want 1", id, got)
		}
	}
	if got := f.srv.Attempts("c2"); got != 2 {
		t.Errorf("c2 attempts = %d, want 2", got)
	}
	if s := f.m.Stats(); s.RetriesTotal != 1 {
		t.Errorf("retries %d, want 1", s.RetriesTotal)
	}
}

// TestIsActiveRetriesAnAttemptThatTimedOut: a GetConnection held past the
// attempt timeout is retried, and the second answer decides.
func TestIsActiveRetriesAnAttemptThatTimedOut(t *testing.T) {
	f := newFixture(t, connection.WithRetry(connection.RetryPolicy{AttemptTimeout: 250 * time.Millisecond}))
	f.connect(t, "c1")
	arrived, release := f.srv.Hold("c1")
	defer release()
	if !f.m.IsActive(context.Background(), "c1") {
		t.Fatal("IsActive = false after a timed-out attempt and a good one")
	}
	<-arrived
	if got := f.srv.Attempts("c1"); got != 2 {
		t.Errorf("attempts = %d, want 2", got)
	}
}
