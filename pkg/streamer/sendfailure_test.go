package streamer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// failingSender fails every send with err.
type failingSender struct{ err error }

func (f *failingSender) Send(context.Context, string, any) error { return f.err }

// lines is a slog handler that keeps what was logged at ERROR.
type lines struct {
	mu  sync.Mutex
	got []slog.Record
}

func (l *lines) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, r)
	return nil
}
func (l *lines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lines) WithGroup(string) slog.Handler      { return l }

func (l *lines) attr(i int, key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v string
	l.got[i].Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
		}
		return true
	})
	return v
}

func (l *lines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got)
}

// TestSendFailuresAreLoggedOncePerCausePerMinute: replies that cannot be
// sent for want of credentials give one ERROR line that says how to fix
// it, then nothing more for a minute of the router's clock, then one line
// again with the count of failures it stands for.
func TestSendFailuresAreLoggedOncePerCausePerMinute(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := memory.New()
	sender := &failingSender{err: fmt.Errorf("connection: send to c1: %w: no EC2 IMDS role found", connection.ErrNoCredentials)}
	log := &lines{}
	r := streamer.NewRouter(st, sender, streamer.WithLogger(slog.New(log)), streamer.WithClock(clock))
	ping := func() {
		t.Helper()
		if err := r.HandleMessage(t.Context(), streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"ping"}`)}); err == nil {
			t.Fatal("a failed reply reported no error")
		}
	}
	ping()
	if log.count() != 1 || log.attr(0, "cause") != "no_credentials" || !strings.Contains(log.got[0].Message, "AWS_ACCESS_KEY_ID") {
		t.Fatalf("after the first failure: %d lines %+v", log.count(), log.got)
	}
	for range 5 {
		now = now.Add(10 * time.Second)
		ping()
	}
	if log.count() != 1 {
		t.Fatalf("%d lines within the minute, want 1", log.count())
	}
	// Another cause is its own line at once.
	sender.err = fmt.Errorf("send: %w", connection.ErrConnectionStale)
	ping() // a gone connection is normal: no line
	if log.count() != 1 {
		t.Fatalf("a gone connection was logged at ERROR: %+v", log.got)
	}
	sender.err = fmt.Errorf("connection: send to c1: %w", connection.ErrNoCredentials)
	now = now.Add(11 * time.Second) // a minute and a second after the first line
	ping()
	if log.count() != 2 || log.attr(1, "failures") != "6" {
		t.Fatalf("after the minute: %d lines, failures %q; want 2 lines, the second standing for 6", log.count(), log.attr(1, "failures"))
	}
}

// TestMissingCredentialsThroughTheRealManager: the connection Manager
// with its FastClient and a credentials chain that finds nothing (a
// newcomer's machine): the router's reply fails before any HTTP call and
// the ERROR line names the cause.
func TestMissingCredentialsThroughTheRealManager(t *testing.T) {
	st := memory.New()
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials in the environment, no profile, no IMDS")
	})}
	endpoint := "http://127.0.0.1:9/dev"
	mgr := connection.NewManager(st, connection.NewFastClient(cfg, endpoint), endpoint)
	t.Cleanup(func() { mgr.Shutdown(context.WithoutCancel(t.Context())) })
	log := &lines{}
	r := streamer.NewRouter(st, mgr, streamer.WithLogger(slog.New(log)))
	err := r.HandleMessage(t.Context(), streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"ping"}`), DomainName: "127.0.0.1:9", Stage: "dev"})
	if !errors.Is(err, connection.ErrNoCredentials) {
		t.Fatalf("reply error %v, want ErrNoCredentials", err)
	}
	if log.count() != 1 || log.attr(0, "cause") != "no_credentials" {
		t.Fatalf("lines %+v", log.got)
	}
}
