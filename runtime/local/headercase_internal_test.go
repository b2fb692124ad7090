package local

import (
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
)

// readAll feeds wire to a spellingConn in reads of size n, as a slow or
// fast client's bytes may arrive.
func feedIn(c *spellingConn, wire string, n int) {
	for len(wire) > 0 {
		k := min(n, len(wire))
		c.feed([]byte(wire[:k]))
		wire = wire[k:]
	}
}

// TestSpellingConnFollowsRequests: the header names of each request on a
// connection are kept as sent, whatever the read sizes, across bodies,
// pipelining and blank lines between requests; an upgrade ends the
// following so WebSocket frames are never parsed.
func TestSpellingConnFollowsRequests(t *testing.T) {
	wire := "POST /dev/@connections/a HTTP/1.1\r\nhost: x\r\ncontent-length: 12\r\nX-Amz-date: 1\r\n\r\nGET / HTTP/1\r\n" +
		"\r\n" +
		"GET /dev?x=1 HTTP/1.1\r\nHost: x\r\ntoken: abc\r\nsec-websocket-key: k\r\n folded\r\nUPGRADE: websocket\r\nheaderName: v\r\n\r\n" +
		"\x81\x85GET / HTTP/1.1\r\nz: 1\r\n\r\n"
	for _, n := range []int{1, 2, 3, 7, 64, len(wire)} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := &spellingConn{}
			feedIn(c, wire, n)
			if c.state.Load() != paused {
				t.Error("still following after the upgrade request")
			}
			post, ok := c.take("POST", "/dev/@connections/a")
			if !ok || !reflect.DeepEqual(post.names, []string{"host", "content-length", "X-Amz-date"}) {
				t.Errorf("POST block %v %v", post, ok)
			}
			up, ok := c.take("GET", "/dev?x=1")
			want := []string{"Host", "token", "sec-websocket-key", "UPGRADE", "headerName"}
			if !ok || !reflect.DeepEqual(up.names, want) {
				t.Errorf("upgrade block %q %v, want names %q", up, ok, want)
			}
			if _, ok := c.take("GET", "/"); ok {
				t.Error("a block was parsed from the body or from the frames after the upgrade")
			}
		})
	}
}

// TestSpellingConnGivesUp: a chunked body or an oversized header block
// ends the following (the names fall back to canonical), and blocks no
// handler takes stay bounded.
func TestSpellingConnGivesUp(t *testing.T) {
	c := &spellingConn{}
	c.feed([]byte("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /b HTTP/1.1\r\n\r\n"))
	if c.state.Load() != off {
		t.Error("chunked body: still following")
	}
	if _, ok := c.take("GET", "/b"); ok {
		t.Error("chunked body parsed as a request")
	}

	c = &spellingConn{}
	c.feed([]byte("GET / HTTP/1.1\r\nBig: " + strings.Repeat("x", maxSpelledHeaderBytes)))
	if c.state.Load() != off || c.pending != nil {
		t.Error("oversized block: still following or still held")
	}

	c = &spellingConn{}
	for i := range 10 {
		c.feed(fmt.Appendf(nil, "GET /%d HTTP/1.1\r\nA: b\r\n\r\n", i))
	}
	if len(c.blocks) != maxSpelledBlocks {
		t.Errorf("%d blocks kept, want %d", len(c.blocks), maxSpelledBlocks)
	}
	if _, ok := c.take("GET", "/9"); !ok {
		t.Error("the newest block is gone")
	}
}

// TestSpellingConnAfterAnUpgrade: a refused upgrade resumes the following
// for the next request on the connection; a 101 ends it.
func TestSpellingConnAfterAnUpgrade(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() {
		buf := make([]byte, 256)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	c := &spellingConn{Conn: server}
	c.feed([]byte("GET /dev HTTP/1.1\r\nUpgrade: websocket\r\ntoken: a\r\n\r\n"))
	if _, err := c.Write([]byte("HTTP/1.1 403 Forbidden\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if c.state.Load() != following {
		t.Fatal("a refused upgrade did not resume the following")
	}
	c.feed([]byte("GET /dev HTTP/1.1\r\nUpgrade: websocket\r\nTOKEN: b\r\n\r\n"))
	if _, err := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if c.state.Load() != off {
		t.Fatal("a 101 did not end the following")
	}
	first, _ := c.take("GET", "/dev")
	second, _ := c.take("GET", "/dev")
	if first.names[1] != "token" || second.names[1] != "TOKEN" {
		t.Errorf("blocks %q then %q", first.names, second.names)
	}
}

func TestQueryParameters(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want map[string][]string
	}{
		{"", nil},
		{"name=me", map[string][]string{"name": {"me"}}},
		{"a=1&b=x+y&a=2&a=%2B", map[string][]string{"a": {"1", "2", "+"}, "b": {"x y"}}},
		{"flag&&=v&k=", map[string][]string{"flag": {""}, "": {"v"}, "k": {""}}},
		{"bad=%zz&semi=a;b", map[string][]string{"bad": {"%zz"}, "semi": {"a;b"}}},
	} {
		if got := queryParameters(tc.raw); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("queryParameters(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

var _ net.Conn = (*spellingConn)(nil)
