package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// ErrExpression is wrapped by the errors of Parse.
var ErrExpression = errors.New("schedule: invalid schedule expression")

// Schedule is a parsed schedule expression.
type Schedule struct {
	expr  string
	every time.Duration // rate(...)
	cron  *cronSpec
}

// String is the expression as written.
func (s *Schedule) String() string { return s.expr }

// Parse reads rate(N unit) or cron(minutes hours day-of-month month
// day-of-week year). The cron fields take *, ?, numbers, names
// (JAN-DEC, SUN-SAT), ranges, lists and /steps; L, W and # are refused.
func Parse(expr string) (*Schedule, error) {
	e := strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(e, "rate(") && strings.HasSuffix(e, ")"):
		f := strings.Fields(e[5 : len(e)-1])
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: %q: want rate(N unit)", ErrExpression, expr)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: %q: N must be a positive integer", ErrExpression, expr)
		}
		units := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}
		u, ok := units[f[1]]
		if !ok || (n == 1) != !strings.HasSuffix(f[1], "s") {
			return nil, fmt.Errorf("%w: %q: unit must be minute(s), hour(s) or day(s), singular for 1", ErrExpression, expr)
		}
		return &Schedule{expr: expr, every: time.Duration(n) * u}, nil
	case strings.HasPrefix(e, "cron(") && strings.HasSuffix(e, ")"):
		c, err := parseCron(e[5 : len(e)-1])
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrExpression, expr, err)
		}
		return &Schedule{expr: expr, cron: c}, nil
	}
	return nil, fmt.Errorf("%w: %q: want rate(...) or cron(...)", ErrExpression, expr)
}

// Next is the first run time after t. A rate schedule runs every period
// from t; a cron schedule at its matching minutes, in UTC. The zero time
// means never (a cron that matches nothing in the next five years).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Add(s.every)
	}
	return s.cron.next(t.UTC())
}

// Event is the scheduled event EventBridge sends a rule's target.
func Event(ruleARN, region, account string, at time.Time) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	ev := map[string]any{
		"version":     "0",
		"id":          h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     account,
		"time":        at.UTC().Format(time.RFC3339),
		"region":      region,
		"resources":   []string{ruleARN},
		"detail":      map[string]any{},
	}
	out, _ := json.Marshal(ev)
	return out
}

// Run calls fn at every run time of s until ctx ends, then returns
// ctx.Err(). payload gives each call's event. Calls do not overlap: a run
// time that passes during a call is skipped, and an error is logged.
func Run(ctx context.Context, s *Schedule, payload func(at time.Time) []byte, fn func(ctx context.Context, payload []byte) ([]byte, error), log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	next := s.Next(time.Now())
	for {
		if next.IsZero() {
			<-ctx.Done()
			return ctx.Err()
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case at := <-t.C:
			if _, err := fn(ctx, payload(at)); err != nil && ctx.Err() == nil {
				log.Error("schedule: invocation failed", "schedule", s.expr, "err", err)
			}
			next = s.Next(next)
			if now := time.Now(); next.Before(now) {
				next = s.Next(now)
			}
		}
	}
}
