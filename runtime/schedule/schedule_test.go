package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	s, err := Parse("rate(5 minutes)")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	if got := s.Next(base); !got.Equal(base.Add(5 * time.Minute)) {
		t.Fatalf("next = %v", got)
	}
	for _, bad := range []string{"rate(1 minutes)", "rate(2 minute)", "rate(0 hours)", "rate(x days)", "rate(5 weeks)", "every 5m", "rate(5)"} {
		if _, err := Parse(bad); !errors.Is(err, ErrExpression) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestCron(t *testing.T) {
	base := time.Date(2026, 1, 1, 10, 7, 0, 0, time.UTC) // a Thursday
	for expr, want := range map[string]time.Time{
		"cron(0/15 * * * ? *)":     time.Date(2026, 1, 1, 10, 15, 0, 0, time.UTC),
		"cron(0 12 * * ? *)":       time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		"cron(30 9 ? * MON-FRI *)": time.Date(2026, 1, 2, 9, 30, 0, 0, time.UTC),
		"cron(0 0 1 FEB ? 2026)":   time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		"cron(0 8 ? * 1 *)":        time.Date(2026, 1, 4, 8, 0, 0, 0, time.UTC), // 1 = Sunday
	} {
		s, err := Parse(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := s.Next(base); !got.Equal(want) {
			t.Errorf("%s: next = %v, want %v", expr, got, want)
		}
	}
	for _, bad := range []string{"cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "cron(0 12 L * ? *)", "cron(61 * * * ? *)", "cron(0 12 * *)"} {
		if _, err := Parse(bad); !errors.Is(err, ErrExpression) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	s, _ := Parse("cron(0 0 1 1 ? 1999)")
	if got := s.Next(base); !got.IsZero() {
		t.Errorf("past year: next = %v", got)
	}
}

func TestRunCallsOnTheSchedule(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan []byte, 3)
	s := &Schedule{expr: "test", every: 5 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, s, func(at time.Time) []byte { return Event("arn:aws:events:us-east-1:1:rule/r", "us-east-1", "1", at) },
			func(_ context.Context, p []byte) ([]byte, error) {
				select {
				case calls <- p:
				default:
				}
				return nil, nil
			}, nil)
	}()
	for range 3 {
		select {
		case p := <-calls:
			var ev map[string]any
			if err := json.Unmarshal(p, &ev); err != nil || ev["detail-type"] != "Scheduled Event" || ev["source"] != "aws.events" {
				t.Fatalf("event %s (%v)", p, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no call")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := Parse("rate(1 minute)")
	err := Run(ctx, s, func(time.Time) []byte { return nil }, func(context.Context, []byte) ([]byte, error) {
		t.Error("called")
		return nil, nil
	}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if ev := Event("arn:rule", "us-east-1", "1", time.Unix(0, 0)); len(ev) == 0 {
		t.Fatal("no event")
	}
}
