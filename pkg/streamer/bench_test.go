package streamer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// benchBackends runs a benchmark on the memory store, and on DynamoDB when
// STREAMER_DYNAMODB_ENDPOINT names one (dynalite under `make bench`);
// without one the DynamoDB sub-benchmark is skipped, or fails under
// STREAMER_REQUIRE_DYNAMODB=1.
func benchBackends(b *testing.B, fn func(b *testing.B, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore))) {
	b.Run("memory", func(b *testing.B) { fn(b, memoryStores) })
	b.Run("dynamodb", func(b *testing.B) {
		dynamotest.Endpoint(b)
		fn(b, func(tb testing.TB) (store.ConnectionStore, store.RequestStore) {
			st := dynamoStore(tb)
			return st, st
		})
	})
}

// BenchmarkE2ESyncRoundTrip measures sync echo round trips through the
// whole path: WebSocket client → local gateway → $default adapter → router
// → Manager → SDK POST @connections → gateway → client.
func BenchmarkE2ESyncRoundTrip(b *testing.B) {
	benchBackends(b, func(b *testing.B, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
				s := startStack(b, newStores)
				cs := make([]*wsClient, clients)
				for i := range cs {
					cs[i] = s.dial(b, e2eToken(b, fmt.Sprintf("bench-%d", i), "acme"))
				}
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for i, c := range cs {
					n := b.N / clients
					if i < b.N%clients {
						n++
					}
					wg.Go(func() {
						for j := range n {
							w := c.roundTrip(b, fmt.Sprintf(`{"type":"request","id":"%d","action":"echo","payload":{"text":"x"}}`, j))
							if w.Type != "response" {
								b.Errorf("reply %+v", w)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "roundtrips/s")
			})
		}
	})
}

// BenchmarkE2EAsyncLatency measures the time from sending an async request
// to receiving its complete message (ack, queue, claim, handler with one
// progress report, persisted result, complete), one request at a time.
func BenchmarkE2EAsyncLatency(b *testing.B) {
	benchBackends(b, func(b *testing.B, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(b, newStores)
		c := s.dial(b, e2eToken(b, "bench", "acme"))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			c.send(b, fmt.Sprintf(`{"type":"request","id":"a%d","action":"report","payload":{"steps":1}}`, i))
			c.until(b, isTypeW("complete"))
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	})
}

// BenchmarkHandleMessage measures the router alone (memory store, a Sender
// that only encodes): parse, validate, identity (cached), handler, reply.
func BenchmarkHandleMessage(b *testing.B) {
	st := memoryStoreForBench(b)
	r := streamer.NewRouter(st, discardSender{}, streamer.WithConnectionStore(st))
	r.Handle("echo", echoHandler())
	for name, body := range map[string]string{
		"sync-echo": `{"v":1,"type":"request","id":"1","action":"echo","payload":{"text":"hello"}}`,
		"ping":      `{"type":"ping"}`,
		"invalid":   `{"type":"request","id":"1"}`,
	} {
		b.Run(name, func(b *testing.B) {
			msg := streamer.Message{ConnectionID: "c1", Body: []byte(body)}
			b.ReportAllocs()
			for b.Loop() {
				if err := r.HandleMessage(b.Context(), msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discardSender struct{}

func (discardSender) Send(_ context.Context, _ string, message any) error {
	_, err := connection.Encode(message)
	return err
}

func memoryStoreForBench(b *testing.B) *memory.Store {
	st := memory.New()
	if err := st.Save(b.Context(), &store.Connection{ConnectionID: "c1", UserID: "alice", TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
		b.Fatal(err)
	}
	return st
}
