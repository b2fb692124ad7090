package tlsmux_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/runtime/tlsmux"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPlainAndTLSOnOnePort(t *testing.T) {
	ca, err := tlsmux.NewCA("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsmux.Listen(inner, ca.ServerConfig())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			io.WriteString(w, "tls")
			return
		}
		io.WriteString(w, "plain")
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	defer func() { srv.Close(); <-done; ln.Wait() }()

	_, port, _ := net.SplitHostPort(inner.Addr().String())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for url, want := range map[string]string{
		"http://127.0.0.1:" + port + "/":  "plain",
		"https://localhost:" + port + "/": "tls",
		"https://127.0.0.1:" + port + "/": "tls",
	} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s answered %q, want %q", url, b, want)
		}
	}
	// A client that does not trust the CA is refused.
	if _, err := http.Get("https://localhost:" + port + "/"); err == nil {
		t.Fatal("an untrusted client connected")
	}
	if len(ca.CertPEM()) == 0 {
		t.Fatal("no PEM")
	}
}

func TestCloseDropsSilentClients(t *testing.T) {
	ca, err := tlsmux.NewCA("localhost")
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsmux.Listen(inner, ca.ServerConfig())
	silent, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ln.Close()
	// Wait returns once the silent client's sniffer is closed, not after
	// the 10 s sniff timeout (half of it is the bound here).
	waited := make(chan struct{})
	go func() { ln.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait is held by a client that sent nothing")
	}
	buf := make([]byte, 1)
	if _, err := silent.Read(buf); err == nil {
		t.Fatal("the silent client's connection is still open")
	}
}
