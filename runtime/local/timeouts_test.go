package local_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/local"
)

// slowPost sends a POST that announces 100 bytes and then sends one byte
// every 50 ms (5 s for the whole body), and returns the response the
// server gives and how many body bytes had gone out by then.
func slowPost(t *testing.T, addr, path string) (*http.Response, int64) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n", path, addr)
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range 100 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := nc.Write([]byte("x")); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response to the slow body: %v", err)
	}
	n := sent.Load()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The server closes the connection: the next read ends.
	if _, err := br.ReadByte(); err == nil {
		t.Error("the connection stays open after the slow body was cut off")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the server did not close the connection within 20 s")
	}
	return resp, n
}

func TestSlowManagementBodyIsCutOff(t *testing.T) {
	var logs syncBuffer
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), BodyTimeout: 300 * time.Millisecond, Logger: newTextLogger(&logs)})
	c, id := connect(t, gw, rec)
	resp, sent := slowPost(t, gw.Addr(), "/dev/@connections/"+id)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow body: %d, want 408", resp.StatusCode)
	}
	if sent >= 100 {
		t.Errorf("the whole body (%d bytes) went out before the answer: nothing was cut off", sent)
	}
	if logs.count("body not received in time") != 1 {
		t.Errorf("want one log line:\n%s", logs.String())
	}
	// Nothing was delivered; the connection still takes a normal post.
	if got, _ := rawPost(t, gw, id, "", nil, "after"); got != http.StatusOK {
		t.Fatalf("post after: %d", got)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "after" {
		t.Fatalf("read %q %v, want only the later post", b, err)
	}
}

func TestGuardCutsOffSlowBodies(t *testing.T) {
	gw, err := local.New(local.Config{BodyTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	h := gw.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if err != nil {
			w.Header().Set("Connection", "close")
			http.Error(w, "slow", http.StatusRequestTimeout)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := local.ServerTimeouts(&http.Server{Handler: h})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	resp, sent := slowPost(t, ln.Addr().String(), "/_console/api/connections/x")
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the handler read %v, want a deadline error", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || sent >= 100 {
		t.Errorf("status %d after %d of 100 bytes", resp.StatusCode, sent)
	}
}

func TestServerTimeouts(t *testing.T) {
	srv := local.ServerTimeouts(&http.Server{})
	if srv.ReadHeaderTimeout != local.HeaderTimeout || srv.IdleTimeout != local.KeepAliveTimeout {
		t.Errorf("header %v idle %v", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	// Clients drop idle pooled connections at 90 s: the server must wait
	// longer, so it never closes one under a request just sent.
	if local.KeepAliveTimeout <= 90*time.Second {
		t.Errorf("KeepAliveTimeout %v is not longer than the clients' 90 s", local.KeepAliveTimeout)
	}
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
