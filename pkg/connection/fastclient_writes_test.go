package connection_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
)

// countingConn counts the writes the transport makes on a socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A POST goes out in one write, headers and body together: net/http
// flushes the headers on their own first for a body it does not know is
// in memory, which costs a syscall and a TCP segment per call on both
// sides, and a fan-out makes one call per subscriber.
func TestFastClientPostIsOneWrite(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	var writes atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}}
	defer tr.CloseIdleConnections()
	fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDWRITES", "secret", "")}, srv.URL, connection.WithFastHTTPClient(&http.Client{Transport: tr}))
	ctx := context.Background()
	for i := range 3 {
		before := writes.Load()
		_, err := fc.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String("abc"), Data: []byte(`{"type":"publication","offset":1}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("post %d took %d writes, want 1", i, n)
		}
	}
	if got := srv.Received("abc"); len(got) != 3 {
		t.Errorf("server received %d messages, want 3", len(got))
	}
}
