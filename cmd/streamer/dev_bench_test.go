package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// BenchmarkDev measures the demo through a real `streamer dev` process on
// loopback: sync echo round trips and async report (seconds 0: one
// progress report, then complete) request → complete latency, with 1 and
// 16 clients each keeping one request in flight. The whole path is the
// production one: WebSocket → gateway → awslambda adapter → Router →
// Manager → SDK PostToConnection → gateway → WebSocket, plus the
// processor pool and the store for async requests. With
// STREAMER_DYNAMODB_ENDPOINT set, a second run keeps everything in
// DynamoDB; without it that sub-benchmark is skipped (or fails under
// STREAMER_REQUIRE_DYNAMODB=1).
//
//	go test -run '^$' -bench Dev -benchtime 3s ./cmd/streamer/
func BenchmarkDev(b *testing.B) {
	bin := buildBinary(b)
	b.Run("store=memory", func(b *testing.B) { benchDev(b, bin) })
	// One prefix for every run of the sub-benchmark: the process creates
	// the tables on the first and finds them on the next.
	prefix := dynamotest.Prefix("devbench")
	b.Run("store=dynamodb", func(b *testing.B) {
		endpoint := dynamotest.Endpoint(b)
		benchDev(b, bin, "--dynamodb-endpoint", endpoint, "--table-prefix", prefix)
	})
}

func benchDev(b *testing.B, bin string, extra ...string) {
	// Later flags win: the bench wants no debug logging.
	p := startDevProcess(b, bin, append(extra, "--log-level", "warn")...)
	defer p.stop(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	const maxClients = 16
	clients := make([]*client, maxClients)
	for i := range clients {
		clients[i] = dialDev(ctx, b, p.wsURL, nil)
	}
	var seq sync.Mutex
	next := 0
	// Every request id is new: all anonymous clients are one user, and
	// async ids are idempotency keys per user.
	newID := func() string {
		seq.Lock()
		defer seq.Unlock()
		next++
		return "b" + strconv.Itoa(next)
	}

	sync := func(ctx context.Context, c *client) {
		id := newID()
		c.send(ctx, `{"type":"request","id":"`+id+`","action":"echo","payload":{"n":1}}`)
		if m := c.read(ctx); m.Type != protocol.TypeResponse || m.RequestID != id {
			b.Fatalf("echo reply %+v", m)
		}
	}
	async := func(ctx context.Context, c *client) {
		c.send(ctx, `{"type":"request","id":"`+newID()+`","action":"report","payload":{"seconds":0}}`)
		for {
			m := c.read(ctx)
			if m.Type == protocol.TypeComplete {
				return
			}
			if m.Type != protocol.TypeAck && m.Type != protocol.TypeProgress {
				b.Fatalf("report: %+v", m)
			}
		}
	}
	for _, mode := range []struct {
		name string
		op   func(context.Context, *client)
	}{{"sync-echo", sync}, {"async-report", async}} {
		for _, n := range []int{1, maxClients} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode.name, n), func(b *testing.B) {
				runDevLoad(ctx, b, clients[:n], mode.op)
			})
		}
	}
}

// runDevLoad spreads b.N operations over the clients, each running one at
// a time, and reports operations per second and the latency quantiles.
func runDevLoad(ctx context.Context, b *testing.B, clients []*client, op func(context.Context, *client)) {
	lat := make([][]time.Duration, len(clients))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, c := range clients {
		n := b.N / len(clients)
		if i < b.N%len(clients) {
			n++
		}
		wg.Go(func() {
			for range n {
				t0 := time.Now()
				op(ctx, c)
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(f float64) float64 {
		return float64(all[min(len(all)-1, int(f*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
