package connection_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamer-go/streamer/pkg/connection"
)

func TestMetricsCountOutcomes(t *testing.T) {
	f := newFixture(t, oneAttempt)
	f.connect(t, "ok", "gone", "busy", "boom")
	f.srv.Disconnect("gone")
	f.srv.Script("busy", 429)
	f.srv.Script("boom", 500)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		_ = f.m.Send(ctx, "ok", "m")
	}
	_ = f.m.Send(ctx, "gone", "m")
	_ = f.m.Send(ctx, "busy", "m")
	_ = f.m.Send(ctx, "boom", "m")
	_ = f.m.Send(ctx, "missing", "m")
	_ = f.m.Broadcast(ctx, []string{"ok", "x1", "x2"}, "m")

	got := f.m.GetMetrics()
	want := map[string]any{
		"sends_total":         uint64(17),
		"send_failures_total": uint64(4),
		"broadcasts_total":    uint64(1),
		"active_sends":        int64(0),
		"active_broadcasts":   int64(0),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], v)
		}
	}
	byType := got["errors_by_type"].(map[string]uint64)
	for typ, n := range map[string]uint64{"gone": 1, "throttled": 1, "server_error": 1, "not_found": 1, "forbidden": 0, "payload_too_large": 0, "network": 0, "circuit_open": 0} {
		if byType[typ] != n {
			t.Errorf("errors_by_type[%s] = %d, want %d", typ, byType[typ], n)
		}
	}
	for _, k := range []string{"send_latency_p50_ms", "send_latency_p99_ms", "broadcast_latency_p50_ms", "broadcast_latency_p99_ms"} {
		if _, ok := got[k].(float64); !ok {
			t.Errorf("%s = %v, want a float64", k, got[k])
		}
	}
	cb := got["circuit_breakers"].(map[string]int64)
	// Remembered: busy and boom (one failure each) and ok (its LastPing
	// write time); gone was forgotten; Broadcast successes add nothing.
	if cb["closed"] != 3 || cb["open"] != 0 || cb["half_open"] != 0 {
		t.Errorf("circuit_breakers = %v", cb)
	}
}

func TestMetricsLatencyPercentiles(t *testing.T) {
	// The auto clock moves only when the manager sleeps, so a Send that
	// retried twice with 100 ms + 200 ms backoff took exactly 300 ms of
	// manager time, and a first-time success 0.
	f := newFixture(t, connection.WithRand(func(n int64) int64 { return n - 1 }))
	f.connect(t, "fast", "slow")
	ctx := context.Background()
	for i := 0; i < 98; i++ {
		_ = f.m.Send(ctx, "fast", "m")
	}
	for i := 0; i < 2; i++ {
		f.srv.Script("slow", 500, 500)
		if err := f.m.Send(ctx, "slow", "m"); err != nil {
			t.Fatal(err)
		}
	}
	s := f.m.Stats()
	if s.SendLatencyP50 != 0 {
		t.Errorf("p50 = %v, want 0", s.SendLatencyP50)
	}
	if p99 := s.SendLatencyP99.Milliseconds(); p99 < 290 || p99 > 310 {
		t.Errorf("p99 = %v, want ~300ms", s.SendLatencyP99)
	}
	if s.RetriesTotal != 4 {
		t.Errorf("retries = %d, want 4", s.RetriesTotal)
	}
}

func TestPrometheusCollector(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	_ = f.m.Send(context.Background(), "c1", "m")
	_ = f.m.Send(context.Background(), "nobody", "m")
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(f.m.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	byName := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "/" + l.GetValue()
				}
				byName[key] = m.GetCounter().GetValue()
			case m.GetSummary() != nil:
				byName[mf.GetName()+"/count"] = float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	for k, v := range map[string]float64{
		"streamer_connection_sends_total":                 2,
		"streamer_connection_send_failures_total":         1,
		"streamer_connection_errors_total/not_found":      1,
		"streamer_connection_send_duration_seconds/count": 2,
	} {
		if byName[k] != v {
			t.Errorf("%s = %v, want %v", k, byName[k], v)
		}
	}
}

// TestPrometheusScrape registers the collector in a real registry, serves
// it with promhttp and scrapes it over HTTP, as Prometheus would: every
// metric has the right type, the values match the manager's, and a
// second registration of the same manager's metrics is refused rather
// than producing duplicate series.
func TestPrometheusScrape(t *testing.T) {
	f := newFixture(t, oneAttempt, connection.WithBreaker(connection.BreakerSettings{Threshold: 1}))
	f.connect(t, "c1", "bad")
	ctx := context.Background()
	_ = f.m.Send(ctx, "c1", "m")
	_ = f.m.Send(ctx, "nobody", "m")
	f.srv.Script("bad", 500)
	_ = f.m.Send(ctx, "bad", "m") // opens its breaker (threshold 1)
	_ = f.m.Broadcast(ctx, []string{"c1", "x"}, "m")

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(f.m.Collector()); err != nil {
		t.Fatal(err)
	}
	var already prometheus.AlreadyRegisteredError
	if err := reg.Register(f.m.Collector()); !errors.As(err, &already) {
		t.Errorf("second registration: %v, want AlreadyRegisteredError", err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}

	types := map[string]string{}
	values := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if _, dup := types[name]; dup {
				t.Errorf("%s described twice", name)
			}
			types[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		if _, dup := values[line[:i]]; dup {
			t.Errorf("series %s exposed twice", line[:i])
		}
		values[line[:i]] = v
	}
	const p = "streamer_connection_"
	for name, typ := range map[string]string{
		"active_sends": "gauge", "active_broadcasts": "gauge", "circuit_breakers": "gauge",
		"sends_total": "counter", "send_failures_total": "counter", "retries_total": "counter",
		"broadcasts_total": "counter", "errors_total": "counter",
		"send_duration_seconds": "summary", "broadcast_duration_seconds": "summary",
	} {
		if types[p+name] != typ {
			t.Errorf("%s%s has type %q, want %s", p, name, types[p+name], typ)
		}
	}
	for series, want := range map[string]float64{
		p + "sends_total":                         5,
		p + "send_failures_total":                 2,
		p + "broadcasts_total":                    1,
		p + "active_sends":                        0,
		p + `errors_total{type="not_found"}`:      1,
		p + `errors_total{type="server_error"}`:   1,
		p + `errors_total{type="gone"}`:           0,
		p + `circuit_breakers{state="open"}`:      1,
		p + `circuit_breakers{state="half_open"}`: 0,
		p + "send_duration_seconds_count":         3,
		p + "broadcast_duration_seconds_count":    1,
	} {
		got, ok := values[series]
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if _, ok := values[p+`send_duration_seconds{quantile="0.99"}`]; !ok {
		t.Error("send duration p99 not exposed")
	}
}
