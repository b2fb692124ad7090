package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
)

// CentrifugoEnv names a Centrifugo v6 binary for
// BenchmarkChannelLatencyVsCentrifugo (installed outside the repository,
// e.g. GOBIN=/tmp/cf go install github.com/centrifugal/centrifugo/v6@v6.9.1).
const CentrifugoEnv = "CENTRIFUGO_BIN"

// BenchmarkChannelLatencyVsCentrifugo: the same 1,000 WebSocket
// subscribers (the same reader code) on a channel of an in-process
// `streamer dev` (memory store, default @connections budget) and of a
// Centrifugo v6 process, with history and recovery on in both; each
// iteration publishes once to each, 150 ms apart, so each server gets a
// publication every 300 ms. It reports publish → last subscriber p50 and
// p99 for both and their ratio. Streamer publishes with the channel
// service's Publish; Centrifugo with its HTTP API (one loopback round
// trip more). Skipped unless CENTRIFUGO_BIN names the binary.
func BenchmarkChannelLatencyVsCentrifugo(b *testing.B) {
	bin := os.Getenv(CentrifugoEnv)
	if bin == "" {
		b.Skipf("set %s to a centrifugo v6 binary", CentrifugoEnv)
	}
	const subscribers = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfURL, publishCF := startCentrifugo(b, ctx, bin)
	s := loadDev(b, ctx)

	var readers sync.WaitGroup
	ours := make([]*loadSubscriber, subscribers)
	theirs := make([]*loadSubscriber, subscribers)
	for i := range subscribers {
		ours[i] = dialSubscriber(b, ctx, s.wsURL, "bench", &readers)
		theirs[i] = dialCentrifugo(b, ctx, cfURL, "bench", &readers)
	}
	defer func() {
		for i := range subscribers {
			ours[i].c.CloseNow()
			theirs[i].c.CloseNow()
		}
		readers.Wait()
	}()
	// Wait for every subscription: one publication each, reaching all.
	pub := s.channels.svc.In(demo.DefaultTenant)
	if _, err := pub.Publish(ctx, "bench", map[string]int{"warmup": 1}); err != nil {
		b.Fatal(err)
	}
	publishCF(map[string]int{"warmup": 1})
	waitAll(b, ctx, ours, 1)
	waitAll(b, ctx, theirs, 1)

	var oursMs, theirsMs []float64
	next := time.Now()
	for n := 2; b.Loop(); n++ {
		time.Sleep(time.Until(next))
		start := time.Now()
		if _, err := pub.Publish(ctx, "bench", map[string]int{"n": n}); err != nil {
			b.Fatal(err)
		}
		oursMs = append(oursMs, waitAll(b, ctx, ours, n).Sub(start).Seconds()*1000)
		time.Sleep(time.Until(next.Add(150 * time.Millisecond)))
		start = time.Now()
		publishCF(map[string]int{"n": n})
		theirsMs = append(theirsMs, waitAll(b, ctx, theirs, n).Sub(start).Seconds()*1000)
		next = next.Add(300 * time.Millisecond)
	}
	b.ReportMetric(percentile(oursMs, 50), "streamer-p50-ms")
	b.ReportMetric(percentile(oursMs, 99), "streamer-p99-ms")
	b.ReportMetric(percentile(theirsMs, 50), "centrifugo-p50-ms")
	b.ReportMetric(percentile(theirsMs, 99), "centrifugo-p99-ms")
	b.ReportMetric(percentile(oursMs, 50)/percentile(theirsMs, 50), "ratio-p50")
	b.ReportMetric(percentile(oursMs, 99)/percentile(theirsMs, 99), "ratio-p99")
}

// waitAll waits until every subscriber has offset and returns when the
// last of them received it.
func waitAll(b *testing.B, ctx context.Context, subs []*loadSubscriber, offset int) time.Time {
	var last time.Time
	for _, sub := range subs {
		for !sub.has(offset) {
			if ctx.Err() != nil {
				b.Fatalf("offset %d did not reach every subscriber", offset)
			}
			time.Sleep(200 * time.Microsecond)
		}
		sub.mu.Lock()
		if sub.last.After(last) {
			last = sub.last
		}
		sub.mu.Unlock()
	}
	return last
}

// startCentrifugo runs Centrifugo on a free port with anonymous
// subscribers, history and recovery, and returns its WebSocket URL and a
// publish function (HTTP API).
func startCentrifugo(b *testing.B, ctx context.Context, bin string) (string, func(data any)) {
	port := freePort(b)
	dir := b.TempDir()
	cfg := fmt.Sprintf(`{"http_server":{"address":"127.0.0.1","port":%d},
"log":{"level":"error"},
"client":{"allow_anonymous_connect_without_token":true,"allowed_origins":["*"]},
"http_api":{"key":"bench"},
"channel":{"without_namespace":{"allow_subscribe_for_anonymous":true,"allow_subscribe_for_client":true,"history_size":100,"history_ttl":"600s","force_recovery":true}}}`, port)
	file := filepath.Join(dir, "config.json")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", file)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	publish := func(data any) {
		body := fmt.Sprintf(`{"channel":"bench","data":%s}`, mustJSON(b, data))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/publish", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("X-API-Key", "bench")
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			b.Fatalf("centrifugo publish: %v\n%s", err, out.String())
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("centrifugo publish: %s", res.Status)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/health")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("centrifugo did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", port), publish
}

var centrifugoPub = []byte(`"pub":`)

// dialCentrifugo connects a Centrifugo client (JSON protocol) and
// subscribes it to channel.
func dialCentrifugo(b *testing.B, ctx context.Context, url, channel string, readers *sync.WaitGroup) *loadSubscriber {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	cmds := fmt.Sprintf("{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":%q}}", channel)
	if err := c.Write(ctx, websocket.MessageText, []byte(cmds)); err != nil {
		b.Fatal(err)
	}
	// The connect and subscribe replies come first.
	got := 0
	for got < 2 {
		_, msg, err := c.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if bytes.Contains(msg, []byte(`"error"`)) {
			b.Fatalf("centrifugo refused: %s", msg)
		}
		got += bytes.Count(msg, []byte(`"id":`))
	}
	s := &loadSubscriber{c: c, marker: centrifugoPub}
	readers.Go(func() { s.read(context.WithoutCancel(ctx)) })
	return s
}

func mustJSON(b *testing.B, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
