package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// BenchmarkTakeoverAfterKill measures the issue-13 scenario: `streamer dev`
// on DynamoDB (dynalite) is killed with SIGKILL mid-request and restarted
// on the same tables; the client reconnects and resumes. takeover-s is the
// time from the kill to the first progress of attempt 2 (the restarted
// process running the request), complete-s to its complete. The periodic
// sweep is left at its 1-minute default: the take-over comes from the
// resumed request's lease end. Run with -benchtime=1x (each iteration
// lasts about a lease).
func BenchmarkTakeoverAfterKill(b *testing.B) {
	for _, lease := range []time.Duration{5 * time.Second, streamer.DefaultLease} {
		b.Run("lease="+lease.String(), func(b *testing.B) {
			bin := buildBinary(b)
			endpoint := dynamotest.Endpoint(b)
			var takeover, complete time.Duration
			for i := 0; b.Loop(); i++ {
				t1, t2 := takeoverOnce(b, bin, endpoint, lease)
				takeover += t1
				complete += t2
			}
			b.ReportMetric(takeover.Seconds()/float64(b.N), "takeover-s")
			b.ReportMetric(complete.Seconds()/float64(b.N), "complete-s")
			b.ReportMetric(lease.Seconds(), "lease-s")
		})
	}
}

func takeoverOnce(b *testing.B, bin, endpoint string, lease time.Duration) (takeover, complete time.Duration) {
	prefix := dynamotest.Prefix("takeover")
	args := []string{"--dynamodb-endpoint", endpoint, "--table-prefix", prefix, "--lease", lease.String()}
	a := startDevProcess(b, bin, args...)
	ctx, cancel := context.WithTimeout(b.Context(), lease+2*time.Minute)
	defer cancel()
	read := func(c *websocket.Conn) chaosMessage {
		_, data, err := c.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var m chaosMessage
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
		return m
	}
	c, _, err := websocket.Dial(ctx, a.wsURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"request","id":"job","action":"report","payload":{"seconds":3}}`)); err != nil {
		b.Fatal(err)
	}
	ack := read(c)
	if ack.Type != protocol.TypeAck {
		b.Fatalf("ack %+v", ack)
	}
	for m := read(c); m.Type != protocol.TypeProgress; m = read(c) {
	}
	if err := a.cmd.Process.Kill(); err != nil {
		b.Fatal(err)
	}
	killed := time.Now()
	for range a.lines {
	}
	<-a.exited

	restarted := startDevProcess(b, bin, args...)
	c2, _, err := websocket.Dial(ctx, restarted.wsURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c2.CloseNow()
	if err := c2.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"type":"resume","request_id":%q}`, ack.RequestID))); err != nil {
		b.Fatal(err)
	}
	for {
		m := read(c2)
		switch {
		case m.Type == protocol.TypeProgress && m.Attempt >= 2 && takeover == 0:
			takeover = time.Since(killed)
		case m.Type == protocol.TypeComplete:
			complete = time.Since(killed)
			if takeover == 0 {
				b.Fatalf("complete without a progress of attempt 2")
			}
			restarted.stop(b)
			return takeover, complete
		case m.Type == protocol.TypeError:
			b.Fatalf("error %+v", m)
		}
	}
}
