package auth_test

import (
	"errors"
	"testing"

	"github.com/streamer-go/streamer/pkg/auth"
)

// FuzzParseJWKS: whatever a provider (or an attacker between it and us)
// sends, parsing a JWKS document never panics, and it either fails with
// a config error or yields at least one key.
func FuzzParseJWKS(f *testing.F) {
	k := keys()
	f.Add(jwksJSON(f, jwk{kid: "k1", alg: "RS256", pub: k.rsa.Public()}, jwk{kid: "e1", pub: k.ec.Public()}))
	f.Add(jwksJSON(f, jwk{kid: "k1", alg: "ES256", pub: k.rsa.Public()}))
	f.Add(jwksJSON(f, jwk{kid: "ed", pub: k.ed.Public()}))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"RSA-OAEP"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := auth.ParseJWKS(data)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		if set.Len() == 0 {
			t.Fatal("a parsed set without keys")
		}
	})
}
