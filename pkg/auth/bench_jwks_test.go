package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// BenchmarkVerifyFetchedJWKS: a token whose kid names a key of a set
// from FetchJWKS, as for every Cognito $connect; no request is made per
// verification.
func BenchmarkVerifyFetchedJWKS(b *testing.B) {
	k := keys()
	doc := jwksJSON(b, jwk{kid: "k1", alg: "RS256", pub: k.rsa.Public()}, jwk{kid: "k2", alg: "RS256", pub: k.rsaOther.Public()})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) }))
	defer srv.Close()
	set, err := auth.FetchJWKS(b.Context(), srv.URL, &auth.FetchOptions{HTTPClient: srv.Client(), RefreshInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	v, err := auth.NewVerifier(auth.Config{Algorithms: []string{"RS256"}, Keys: auth.Keys{JWKS: set}})
	if err != nil {
		b.Fatal(err)
	}
	token := sign(b, jwt.SigningMethodRS256, k.rsaOther, "k2", claims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
	if st := set.Stats(); st.Requests != 1 {
		b.Fatalf("%d requests to the provider, want 1", st.Requests)
	}
}
