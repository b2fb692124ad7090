package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/streamer-go/streamer/runtime/local"
)

// scrape fetches and parses /metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// value is the sample of family name whose labels include all of want
// (pairs), or -1 when there is none; counters, gauges and untyped alike.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	total, found := 0.0, false
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Summary != nil:
			total += float64(m.Summary.GetSampleCount())
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return total
}

// documentedMetrics are the streamer_* names docs/OPERATING.md lists.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/OPERATING.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("`(streamer_[a-z0-9_]+)").FindAllStringSubmatch(string(doc), -1) {
		// Only with --jwt-jwks-url, TestDevJWKSURL checks those; only with
		// --quotas or --faults, TestDevDemoUnderQuotasAndFaults does.
		if !strings.HasPrefix(m[1], "streamer_auth_jwks_") && !limitMetric(m[1]) {
			seen[m[1]] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 15 {
		t.Fatalf("docs/OPERATING.md names only %d metrics: %v", len(names), names)
	}
	return names
}

// TestDevMetrics scrapes `streamer dev`'s /metrics during a workload:
// every metric the Operating page names is present, and the counters move
// by exactly what the workload did (the 410 counter by the number of
// posts to gone connections).
func TestDevMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	t.Run("shared port", func(t *testing.T) {
		p := startDevProcess(t, bin)
		devMetricsWorkload(t, p, strings.TrimSuffix(p.endpoint, "/dev")+"/metrics")
		p.stop(t)
	})
	t.Run("metrics-addr", func(t *testing.T) {
		p := startDevProcess(t, bin, "--metrics-addr", "127.0.0.1:0")
		var url string
		for url == "" {
			select {
			case l := <-p.lines:
				p.stdout = append(p.stdout, l)
				if v, ok := strings.CutPrefix(l, "Metrics:"); ok {
					url = strings.TrimSpace(v)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no Metrics line")
			}
		}
		if strings.HasPrefix(url, strings.TrimSuffix(p.endpoint, "/dev")) {
			t.Fatalf("--metrics-addr ignored: %s", url)
		}
		// The gateway's port no longer answers /metrics.
		resp, err := http.Get(strings.TrimSuffix(p.endpoint, "/dev") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the gateway's port serves /metrics with --metrics-addr set")
		}
		devMetricsWorkload(t, p, url)
		p.stop(t)
	})
}

func devMetricsWorkload(t *testing.T, p *devProcess, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := scrape(t, url)
	for _, name := range documentedMetrics(t) {
		if _, ok := before[name]; !ok {
			t.Errorf("documented metric %s missing from /metrics", name)
		}
	}

	a := dialDev(ctx, t, p.wsURL, nil)
	b := dialDev(ctx, t, p.wsURL, nil)
	a.whoami(ctx)
	b.whoami(ctx)
	if res := a.runReport(ctx, "m1", 0.1); res.Steps == 0 {
		t.Errorf("report %+v", res)
	}
	const gone = 3
	for i := range gone {
		resp, err := http.Post(p.endpoint+"/@connections/"+fmt.Sprintf("bm9ib2R5LSVk%d", i), "application/octet-stream", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone {
			t.Fatalf("post to a gone connection: %s", resp.Status)
		}
	}
	b.c.Close(websocket.StatusNormalClosure, "bye")
	var after map[string]*dto.MetricFamily
	delta := func(name string, labels ...string) float64 {
		return value(after, name, labels...) - max(value(before, name, labels...), 0)
	}
	// $disconnect runs after the close handshake, and the gateway counts
	// a POST once it has answered it, which the manager may see first:
	// wait until both have settled (this bounds a wait, it times nothing).
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = scrape(t, url)
		if delta("streamer_gateway_connections_closed_total", "code", "1000") >= 1 &&
			delta("streamer_gateway_management_calls_total", "method", "POST", "status", "200") == delta("streamer_connection_sends_total") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the close and the replies were never all counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"streamer_gateway_management_calls_total", []string{"method", "POST", "status", "410"}, gone},
		{"streamer_gateway_connections_opened_total", nil, 2},
		{"streamer_gateway_connections_open", nil, 1},
		{"streamer_gateway_route_invocations_total", []string{"route", "$connect"}, 2},
		{"streamer_gateway_route_invocations_total", []string{"route", "$disconnect"}, 1},
		{"streamer_gateway_route_invocations_total", []string{"route", "$default"}, 3}, // 2 whoami, 1 report
		{"streamer_gateway_messages_in_total", nil, 3},
		{"streamer_gateway_route_errors_total", nil, 0},
		{"streamer_processor_requests_total", []string{"outcome", "completed"}, 1},
		{"streamer_processor_requests_total", []string{"outcome", "failed"}, 0},
		{"streamer_processor_running", nil, 0},
		{"streamer_processor_queue_depth", nil, 0},
		{"streamer_connection_errors_total", []string{"type", "gone"}, 0},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v rose by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Replies: 2 whoami responses, the report's ack, progress and
	// complete; every one a 200 POST through the manager.
	posts := delta("streamer_gateway_management_calls_total", "method", "POST", "status", "200")
	if out := delta("streamer_gateway_messages_out_total"); out != posts || out < 5 {
		t.Errorf("messages_out rose by %v, 200 POSTs by %v; want equal and at least 5", out, posts)
	}
	if sends := delta("streamer_connection_sends_total"); sends != posts {
		t.Errorf("manager sends rose by %v, 200 POSTs by %v", sends, posts)
	}
	if v := value(after, "streamer_processor_queue_capacity"); v <= 0 {
		t.Errorf("queue capacity %v", v)
	}
	if v := value(after, "streamer_gateway_route_duration_seconds", "route", "$default"); v < 3 {
		t.Errorf("route duration samples %v, want at least 3", v)
	}
	a.c.Close(websocket.StatusNormalClosure, "")
}

// BenchmarkGatewayMetricsObserver is what /metrics costs the gateway per
// echoed message: one route invocation and one @connections POST.
func BenchmarkGatewayMetricsObserver(b *testing.B) {
	g := newGatewayMetrics(local.RouteConnect, local.RouteDisconnect, local.RouteDefault)
	ri := local.RouteInvocation{RouteKey: local.RouteDefault, Status: 200, Duration: time.Millisecond, Bytes: 64}
	mc := local.ManagementCall{Method: http.MethodPost, Status: 200, Bytes: 64}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.RouteInvoked(ri)
			g.ManagementCalled(mc)
		}
	})
}
