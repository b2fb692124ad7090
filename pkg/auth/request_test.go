package auth_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		query   map[string]string
		want    string
		err     error
	}{
		{"bearer header", map[string]string{"Authorization": "Bearer abc.def.ghi"}, nil, "abc.def.ghi", nil},
		{"lower-case header and scheme", map[string]string{"authorization": "bearer abc"}, nil, "abc", nil},
		{"upper-case header", map[string]string{"AUTHORIZATION": "BEARER  abc  "}, nil, "abc", nil},
		{"query parameter", nil, map[string]string{"token": "q.r.s"}, "q.r.s", nil},
		{"header wins over query", map[string]string{"Authorization": "Bearer h"}, map[string]string{"token": "q"}, "h", nil},
		{"basic auth ignored, query used", map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, map[string]string{"token": "q"}, "q", nil},
		{"same token twice", map[string]string{"Authorization": "Bearer x", "authorization": "Bearer x"}, nil, "x", nil},
		{"nothing", map[string]string{"Host": "example"}, map[string]string{"other": "1"}, "", auth.ErrNoToken},
		{"nil maps", nil, nil, "", auth.ErrNoToken},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, nil, "", auth.ErrNoToken},
		{"bare scheme", map[string]string{"Authorization": "Bearer"}, nil, "", auth.ErrNoToken},
		{"empty query token", nil, map[string]string{"token": "  "}, "", auth.ErrNoToken},
		{"basic auth only", map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, nil, "", auth.ErrNoToken},
		{"conflicting headers", map[string]string{"Authorization": "Bearer x", "authorization": "Bearer y"}, nil, "", auth.ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.TokenFromRequest(tt.headers, tt.query)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("TokenFromRequest = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	const secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"
	tests := []struct{ in, want string }{
		{"wss://api.example/prod?token=" + secret + "&room=7", "wss://api.example/prod?room=7&token=REDACTED"},
		{"/ws?Token=" + secret, "/ws?Token=REDACTED"},
		{"/ws?access_token=" + secret + "&id_token=" + secret + "&jwt=" + secret, "/ws?access_token=REDACTED&id_token=REDACTED&jwt=REDACTED"},
		{"/ws?token=a&token=b", "/ws?token=REDACTED&token=REDACTED"},
		{"https://user:" + secret + "@host/x", "https://user:xxxxx@host/x"},
		{"/ws?room=7", "/ws?room=7"},
		{"/ws", "/ws"},
		{"/ws?token=%zz" + secret, "/ws?REDACTED"},
		{"%zz?token=" + secret, "[unparseable URL REDACTED]"},
	}
	for _, tt := range tests {
		got := auth.RedactURL(tt.in)
		if got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, secret) {
			t.Errorf("RedactURL(%q) leaks the token", tt.in)
		}
	}
}

func TestRedactQueryAndHeaders(t *testing.T) {
	q := map[string]string{"token": "secret", "room": "7"}
	got := auth.RedactQuery(q)
	if got["token"] != auth.Redacted || got["room"] != "7" || q["token"] != "secret" {
		t.Errorf("RedactQuery = %v (input now %v)", got, q)
	}
	h := map[string]string{"authorization": "Bearer secret", "Cookie": "s=secret", "Sec-WebSocket-Protocol": "secret", "User-Agent": "wscat"}
	gotH := auth.RedactHeaders(h)
	for name, v := range gotH {
		if strings.Contains(v, "secret") {
			t.Errorf("RedactHeaders kept %s: %q", name, v)
		}
	}
	if gotH["User-Agent"] != "wscat" || h["authorization"] != "Bearer secret" {
		t.Errorf("RedactHeaders = %v (input now %v)", gotH, h)
	}
	if auth.RedactQuery(nil) != nil || auth.RedactHeaders(nil) != nil {
		t.Error("redacting nil maps should give nil")
	}
	// Redacted values stay valid query syntax for url.ParseQuery users.
	if _, err := url.ParseQuery(strings.TrimPrefix(auth.RedactURL("/x?token=a"), "/x?")); err != nil {
		t.Error(err)
	}
}
