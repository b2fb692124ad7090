package local

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzSignature feeds hostile query strings and Authorization headers to
// the signature check an AWS_IAM $connect and the management API use: it
// never panics, and anything it does not accept is a refusal with API
// Gateway's error type (errSignature), never another error.
func FuzzSignature(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261205%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20261205T040413Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00", "", "")
	f.Add("X-Amz-Signature=&X-Amz-Expires=-1", "", "20261205T040413Z")
	f.Add("", "AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20261205T040413Z")
	f.Add("a=%zz", "AWS4-HMAC-SHA256 Credential=////, SignedHeaders=;;;content-length, Signature==", "")
	f.Add("X-Amz-Signature=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a/b/c/d/e&X-Amz-Date=20261205T040413Z&X-Amz-SignedHeaders=host&X-Amz-Expires=99999999999999999999", "Bearer x", "")
	now, _ := time.Parse("20060102T150405Z", "20261205T040500Z")
	sc := signatureChecks(Config{VerifySignatures: true})
	f.Fuzz(func(t *testing.T, query, auth, date string) {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/dev", nil)
		r.URL.RawQuery = query
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		if _, err := sc.check(context.Background(), r, nil, now); err != nil && !errors.Is(err, errSignature) {
			t.Fatalf("query %q, Authorization %q: %v is not a refusal", query, auth, err)
		}
	})
}
