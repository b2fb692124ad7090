package connection

import (
	"testing"

	"github.com/aws/smithy-go/encoding/httpbinding"
)

// escapedPath must encode IDs exactly as the SDK does, or the two
// clients would put different paths on the wire (and in the signature).
func TestEscapedPathMatchesTheSDK(t *testing.T) {
	for _, id := range []string{"L0SM9cOFvHcCIhw=", "a/b+c=", "with space", "ü?#%", "-._~AZaz09", "\x00\xff", ""} {
		got := escapedPath("/prod", id)
		want := "/prod/@connections/" + httpbinding.EscapePath(id, true)
		if got != want {
			t.Errorf("escapedPath(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestParseFastEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, path, rawPath string
		ok                bool
	}{
		{"https://abc.execute-api.eu-west-1.amazonaws.com/prod", "/prod", "/prod", true},
		{"https://example.com/my%20stage/", "/my stage", "/my%20stage", true},
		{"http://127.0.0.1:8080", "", "", true},
		{"", "", "", false},
		{"ftp://x/y", "", "", false},
		{"not a url", "", "", false},
		{"https://x/prod?q=1", "", "", false},
	} {
		ep := parseFastEndpoint(tc.in)
		if (ep.err == nil) != tc.ok || (tc.ok && (ep.path != tc.path || ep.rawPath != tc.rawPath)) {
			t.Errorf("parseFastEndpoint(%q) = path %q raw %q err %v", tc.in, ep.path, ep.rawPath, ep.err)
		}
	}
}
