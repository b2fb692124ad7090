package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
)

func TestParseDevPacingFlags(t *testing.T) {
	o, err := parseDevFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.pacing.rate != connection.DefaultRate || o.pacing.burst != connection.DefaultBurst {
		t.Errorf("defaults %+v", o.pacing)
	}
	o, err = parseDevFlags([]string{"--pacing-rate", "250.5", "--pacing-burst", "10"}, io.Discard)
	if err != nil || o.pacing.rate != 250.5 || o.pacing.burst != 10 {
		t.Errorf("parsed %+v, %v", o.pacing, err)
	}
	for _, args := range [][]string{{"--pacing-rate", "-1"}, {"--pacing-burst", "-3"}, {"--pacing-rate", "fast"}} {
		var u usageError
		if _, err := parseDevFlags(args, io.Discard); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// The flags set the budget of the manager `streamer dev` sends through;
// 0 leaves it unpaced.
func TestDevPacingSetsTheManagersBudget(t *testing.T) {
	for _, c := range []struct {
		args       []string
		rate       float64
		burst      int
		wantPacing bool
	}{
		{nil, connection.DefaultRate, connection.DefaultBurst, true},
		{[]string{"--pacing-rate", "50", "--pacing-burst", "5"}, 50, 5, true},
		{[]string{"--pacing-rate", "0"}, 0, 0, false},
	} {
		o, err := parseDevFlags(append([]string{"--addr", "127.0.0.1:0"}, c.args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		s, err := startDev(t.Context(), o, slog.New(slog.DiscardHandler), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		p := s.mgr.Stats().Pacing
		if p.MaxRate != c.rate || (c.wantPacing && int(p.Burst) != c.burst) {
			t.Errorf("%v: pacing %+v, want rate %v burst %d", c.args, p, c.rate, c.burst)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}
