package local_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/streamer-go/streamer/runtime/local"
)

// onlyReader hides a reader's type, so net/http sends it chunked, with
// no Content-Length.
type onlyReader struct{ io.Reader }

// A POST body read by announced length and one sent chunked (no
// Content-Length) reach the client intact, and a chunked body over the
// limit is refused with 413 like an announced one.
func TestPostBodiesWithAndWithoutLength(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	target := gw.ManagementEndpoint() + "/@connections/" + url.PathEscape(id)
	post := func(body io.Reader) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, target, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name string
		body func([]byte) io.Reader
	}{
		{"announced", func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"chunked", func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }},
	} {
		msg := bytes.Repeat([]byte(tc.name), 1000)
		if status := post(tc.body(msg)); status != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", tc.name, status)
		}
		_, got, err := c.Read(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("%s: client got %d bytes, want the %d posted", tc.name, len(got), len(msg))
		}
	}
	if status := post(onlyReader{bytes.NewReader(make([]byte, local.MaxMessageBytes+1))}); status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: status %d, want 413", status)
	}
}
