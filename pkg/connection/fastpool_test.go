package connection_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
)

// poolServer is a @connections endpoint that counts the TCP connections
// it accepted and records each POST's body.
type poolServer struct {
	*httptest.Server
	conns atomic.Int64
	mu    sync.Mutex
	got   []string
}

func newPoolServer(t *testing.T, tlsOn bool, h func(w http.ResponseWriter, r *http.Request)) *poolServer {
	t.Helper()
	ps := &poolServer{}
	ps.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") == "" {
			http.Error(w, `{"message":"unsigned"}`, http.StatusForbidden)
			return
		}
		ps.mu.Lock()
		ps.got = append(ps.got, string(body))
		ps.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	ps.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ps.conns.Add(1)
		}
	}
	if tlsOn {
		ps.StartTLS()
	} else {
		ps.Start()
	}
	t.Cleanup(ps.Close)
	return ps
}

func (ps *poolServer) received() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]string(nil), ps.got...)
}

// TestFastClientKeepsConnectionsAliveOverTLS: three calls to an https
// endpoint (a private CA, given with WithFastTLSConfig) are signed,
// arrive in order and share one TLS connection.
func TestFastClientKeepsConnectionsAliveOverTLS(t *testing.T) {
	ps := newPoolServer(t, true, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ps.Certificate())
	c := connection.NewFastClient(testCreds, ps.URL+"/prod", connection.WithFastTLSConfig(&tls.Config{RootCAs: roots}))
	defer c.CloseIdleConnections()
	for _, m := range []string{"a", "b", "c"} {
		if err := post(context.Background(), c, "c1", []byte(m)); err != nil {
			t.Fatalf("post %s: %v", m, err)
		}
	}
	if got := ps.received(); len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("received %q", got)
	}
	if n := ps.conns.Load(); n != 1 {
		t.Errorf("%d TLS connections for 3 sequential calls, want 1", n)
	}
}

// TestFastClientRejectsAnUnknownCertificate: without the CA, the
// handshake fails as a network error and nothing is delivered.
func TestFastClientRejectsAnUnknownCertificate(t *testing.T) {
	ps := newPoolServer(t, true, nil)
	c := connection.NewFastClient(testCreds, ps.URL)
	err := post(context.Background(), c, "c1", []byte("a"))
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) {
		t.Fatalf("err = %v, want a certificate verification error", err)
	}
	if got := ps.received(); len(got) != 0 {
		t.Fatalf("delivered %q over an unverified connection", got)
	}
}

// TestFastClientResendsOnAConnectionTheServerClosed: the server drops its
// idle keep-alive connections between two calls (as API Gateway does
// after its idle timeout); the second call finds its pooled connection
// closed, resends on a new one and succeeds, and each message arrives
// once.
func TestFastClientResendsOnAConnectionTheServerClosed(t *testing.T) {
	ps := newPoolServer(t, false, nil)
	c := connection.NewFastClient(testCreds, ps.URL)
	defer c.CloseIdleConnections()
	if err := post(context.Background(), c, "c1", []byte("first")); err != nil {
		t.Fatal(err)
	}
	ps.CloseClientConnections()
	if err := post(context.Background(), c, "c1", []byte("second")); err != nil {
		t.Fatalf("post on a closed pooled connection: %v", err)
	}
	if got := ps.received(); len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Fatalf("received %q, want each message once", got)
	}
}

// TestFastClientHonoursConnectionClose: an answer with Connection: close
// is not followed by another request on that connection.
func TestFastClientHonoursConnectionClose(t *testing.T) {
	ps := newPoolServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
	})
	c := connection.NewFastClient(testCreds, ps.URL)
	for i := range 3 {
		if err := post(context.Background(), c, "c1", []byte("m")); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if n := ps.conns.Load(); n != 3 {
		t.Errorf("%d connections for 3 answers with Connection: close, want 3", n)
	}
}

// TestFastClientCancelAbortsARequestInFlight: cancelling the context of a
// call the server is sitting on returns at once with the context's
// error, and the next call works on a new connection.
func TestFastClientCancelAbortsARequestInFlight(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	ps := newPoolServer(t, false, func(http.ResponseWriter, *http.Request) {
		if first.CompareAndSwap(false, true) {
			close(arrived)
			<-release
		}
	})
	defer close(release)
	c := connection.NewFastClient(testCreds, ps.URL)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- post(ctx, c, "c1", []byte("held")) }()
	<-arrived
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled call did not return")
	}
	if err := post(context.Background(), c, "c1", []byte("next")); err != nil {
		t.Fatalf("call after a cancelled one: %v", err)
	}
}
