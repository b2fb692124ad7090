package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
)

// BenchmarkDevChannelFanOut measures publish → delivered latency through
// `streamer dev` (memory store, in process) for 1, 100 and 1,000
// subscribers on loopback WebSockets: the server's Publish stores the
// publication and returns; the fan-out posts it through the
// ConnectionManager and the SDK to the local gateway's @connections, which
// writes it to every socket. One publication at a time: p50/p99 of the
// time to the last subscriber's delivery ("last-ms"), and of every
// delivery ("each-ms").
//
//	go test -run '^$' -bench DevChannelFanOut -benchtime 100x ./cmd/streamer/
func BenchmarkDevChannelFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchFanOut(b, n) })
	}
}

func benchFanOut(b *testing.B, subscribers int) {
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0", "--log-level", "error"}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.shutdown(sctx); err != nil {
			b.Error(err)
		}
	}()
	const channel = "bench"
	// arrivals[offset] collects each delivery's time.
	var (
		mu       sync.Mutex
		arrivals = map[uint64][]time.Time{}
		got      = make(chan uint64, 1<<16)
		readers  sync.WaitGroup
	)
	conns := make([]*websocket.Conn, subscribers)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, s.wsURL, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		sub := fmt.Sprintf(`{"type":"subscribe","id":"s","channel":%q}`, channel)
		if err := c.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
			b.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || !json.Valid(msg) {
			b.Fatalf("subscribe: %v %s", err, msg)
		}
		readers.Go(func() {
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				at := time.Now()
				// A real subscriber is on another machine: read only the
				// offset, so the clients sharing these 2 cores with the
				// server cost as little as they can.
				off, ok := publicationOffset(msg)
				if !ok {
					continue
				}
				mu.Lock()
				arrivals[off] = append(arrivals[off], at)
				done := len(arrivals[off]) == subscribers
				mu.Unlock()
				if done {
					got <- off
				}
			}
		})
	}
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
		readers.Wait()
	}()
	pub := s.channels.svc.In(demo.DefaultTenant)
	var last, each []float64
	cpu0 := cpuTime(b)
	for b.Loop() {
		start := time.Now()
		off, err := pub.Publish(ctx, channel, map[string]any{"t": start.UnixNano()})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case o := <-got:
			if o != off {
				b.Fatalf("completed offset %d, published %d", o, off)
			}
		case <-ctx.Done():
			b.Fatal("deliveries did not complete")
		}
		mu.Lock()
		times := arrivals[off]
		delete(arrivals, off)
		mu.Unlock()
		for _, at := range times {
			each = append(each, at.Sub(start).Seconds()*1000)
		}
		last = append(last, slices.Max(each[len(each)-len(times):]))
	}
	// CPU of the whole process (server and clients) per publication: what
	// the latency would cost on an idle machine, whatever the load.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	st := s.mgr.Stats()
	b.ReportMetric(float64(st.RetriesTotal), "retries")
	b.ReportMetric(float64(st.ThrottledTotal), "throttled")
	b.ReportMetric(percentile(last, 50), "last-p50-ms")
	b.ReportMetric(percentile(last, 99), "last-p99-ms")
	b.ReportMetric(percentile(each, 50), "each-p50-ms")
	b.ReportMetric(percentile(each, 99), "each-p99-ms")
}

// percentile returns the p-th percentile of xs (nearest rank).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// publicationOffset returns the offset of a publication message as the
// server encodes it ({"v":1,"type":"publication","channel":...,"offset":N,...}).
func publicationOffset(msg []byte) (uint64, bool) {
	if !bytes.HasPrefix(msg, []byte(`{"v":1,"type":"publication",`)) {
		return 0, false
	}
	i := bytes.Index(msg, []byte(`"offset":`))
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(`"offset":`):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n, err == nil
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
