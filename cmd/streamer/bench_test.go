package main

import (
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseBenchFlags(t *testing.T) {
	o, err := parseBenchFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.connections != 10000 || o.workers != 64 || o.payload != 100 || o.rounds != 3 || o.timeout != 5*time.Minute || o.check {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseBenchFlags([]string{"--connections", "50", "--workers", "8", "--payload", "1000", "--rounds", "1", "--timeout", "30s", "--check"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.connections != 50 || o.workers != 8 || o.payload != 1000 || o.rounds != 1 || o.timeout != 30*time.Second || !o.check {
		t.Errorf("parsed %+v", o)
	}
	for _, args := range [][]string{{"--connections", "0"}, {"--connections", "20000"}, {"--payload", "200000"}, {"--rounds", "0"}, {"--timeout", "0s"}, {"--workers", "-1"}} {
		var u usageError
		if _, err := parseBenchFlags(args, io.Discard); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestBenchSmall runs a tiny bench end to end, as processes: every
// message must be delivered in every round, and the report must carry the
// gateway's RSS and every driver's figures (raw, SDK manager, lean
// manager).
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, "bench", "--connections", "50", "--workers", "8", "--rounds", "2", "--timeout", "60s")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	rss := regexp.MustCompile(`holding 50 connections ([0-9.]+) MB`).FindStringSubmatch(out)
	if rss == nil {
		t.Fatalf("no RSS line:\n%s", out)
	}
	if v, _ := strconv.ParseFloat(rss[1], 64); v <= 1 {
		t.Errorf("gateway RSS %s MB", rss[1])
	}
	rounds := regexp.MustCompile(`(?m)^round \d .*raw +([0-9]+) msg/s .*sdk manager +([0-9]+) msg/s .*lean manager +([0-9]+) msg/s`).FindAllStringSubmatch(out, -1)
	if len(rounds) != 2 {
		t.Fatalf("want 2 rounds:\n%s", out)
	}
	for _, r := range rounds {
		if r[1] == "0" || r[2] == "0" || r[3] == "0" {
			t.Errorf("a driver delivered nothing: %s", r[0])
		}
	}
	if !strings.Contains(out, "floor          gateway RSS < 400 MB at 10,000 connections: not measured (this run held 50;") {
		t.Errorf("the verdict claims an RSS floor a 50-connection run cannot measure:\n%s", out)
	}
	if strings.Contains(out, "delivered raw") || strings.Contains(out, "not every message") || strings.Contains(out, "every message delivered: MISSED") {
		t.Errorf("messages lost:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "stopping the gateway process") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}

func TestBenchVerdictsSayWhatWasMeasured(t *testing.T) {
	round := benchRound{
		noopElapsed: time.Second, noopRequests: 10000,
		raw:     fanout{delivered: 10000, elapsed: 1500 * time.Millisecond},
		manager: fanout{delivered: 10000, elapsed: 3 * time.Second},
		lean:    fanout{delivered: 10000, elapsed: 2 * time.Second},
	}
	r := benchResult{rssConnected: 240 << 20, rounds: []benchRound{round}}
	got := strings.Join(r.verdicts(benchOptions{connections: 10000}), "\n")
	for _, want := range []string{
		"gateway RSS < 400 MB at 10,000 connections: met (240.0 MB at 10000)",
		"raw fan-out ≥ 0.5× the no-op POST rate: met (0.67×, median of 1 rounds at 10000 connections)",
		"every message delivered: met",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("verdicts lack %q:\n%s", want, got)
		}
	}
	r.rssConnected = 500 << 20
	if got := r.verdicts(benchOptions{connections: 10000})[0]; !strings.Contains(got, "MISSED (500.0 MB") {
		t.Errorf("500 MB at 10,000: %s", got)
	}
	if got := r.verdicts(benchOptions{connections: 200})[0]; !strings.Contains(got, "not measured (this run held 200;") {
		t.Errorf("200 connections: %s", got)
	}
}
