package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestParseDevRecoveryFlags(t *testing.T) {
	o, err := parseDevFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := recoveryOptions{lease: streamer.DefaultLease, sweepInterval: streamer.DefaultSweepInterval, pendingGrace: streamer.DefaultPendingGrace}
	if o.recovery != want {
		t.Errorf("defaults %+v, want %+v", o.recovery, want)
	}
	o, err = parseDevFlags([]string{"--lease", "5s", "--sweep-interval", "0", "--pending-grace", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (recoveryOptions{lease: 5 * time.Second, pendingGrace: 2 * time.Second}); o.recovery != want {
		t.Errorf("parsed %+v, want %+v", o.recovery, want)
	}
	for _, args := range [][]string{{"--lease", "0s"}, {"--lease", "-1s"}, {"--sweep-interval", "-1s"}, {"--pending-grace", "-1s"}, {"--lease", "soon"}} {
		var u usageError
		if _, err := parseDevFlags(args, io.Discard); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestDevShutdownLetsRunningReportsFinish: on shutdown the processor claims
// nothing new, but a report already running goes on, and its progress and
// complete still reach the client before its socket is closed with 1001
// (the gateway closes after the processor, not before).
func TestDevShutdownLetsRunningReportsFinish(t *testing.T) {
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0", "--shutdown-timeout", "20s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := startDev(ctx, o, logger, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := dialDev(ctx, t, s.wsURL, nil)
	c.send(ctx, `{"type":"request","id":"short","action":"report","payload":{"seconds":1}}`)
	ack := c.read(ctx)
	if ack.Type != protocol.TypeAck {
		t.Fatalf("ack %+v", ack)
	}
	if m := c.read(ctx); m.Type != protocol.TypeProgress {
		t.Fatalf("progress %+v", m)
	}
	got := make(chan []serverMessage, 1)
	go func() {
		var ms []serverMessage
		for {
			_, b, err := c.c.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) != websocket.StatusGoingAway {
					t.Errorf("client read %v, want close 1001", err)
				}
				got <- ms
				return
			}
			var m serverMessage
			_ = json.Unmarshal(b, &m)
			ms = append(ms, m)
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, o.shutdownTimeout)
	defer scancel()
	if err := s.shutdown(sctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	ms := <-got
	if len(ms) == 0 || ms[len(ms)-1].Type != protocol.TypeComplete || ms[len(ms)-1].RequestID != ack.RequestID {
		t.Fatalf("messages during shutdown %+v, want the report's complete last", ms)
	}
	if l := logs.String(); strings.Contains(l, "cut short") {
		t.Errorf("a request was cut although it ended within the timeout:\n%s", l)
	}
}

// At the shutdown deadline, each request still running is put back in the
// queue with one log line naming it.
func TestDevShutdownRequeuesAtTheDeadlineWithOneLinePerRequest(t *testing.T) {
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0", "--shutdown-timeout", "1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := startDev(ctx, o, logger, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := dialDev(ctx, t, s.wsURL, nil)
	var ids []string
	for _, id := range []string{"one", "two"} {
		c.send(ctx, `{"type":"request","id":"`+id+`","action":"report","payload":{"seconds":60}}`)
		var ack string
		// Wait until it runs: one only queued when shutdown begins is not
		// claimed at all (and stays queued without a log line).
		for {
			m := c.read(ctx)
			if m.Type == protocol.TypeAck {
				ack = m.RequestID
			}
			if m.Type == protocol.TypeProgress && m.RequestID == ack {
				ids = append(ids, ack)
				break
			}
		}
	}
	go func() {
		for {
			if _, _, err := c.c.Read(ctx); err != nil {
				return
			}
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, o.shutdownTimeout)
	defer scancel()
	if err := s.shutdown(sctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	l := logs.String()
	for _, id := range ids {
		n := 0
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(line, "request_id="+id) && strings.Contains(line, "put back in the queue") && strings.Contains(line, "reason=shutdown") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d requeue lines, want 1:\n%s", id, n, l)
		}
	}
}
