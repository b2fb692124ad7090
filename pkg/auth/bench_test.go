package auth_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures one full verification (parse, key selection,
// signature, claims, identity) per algorithm, as on every $connect.
func BenchmarkVerify(b *testing.B) {
	k := keys()
	v := verifierFromFiles(b, allAlgs...)
	for _, bc := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa, ""},
		{"RS256-JWKS-kid", jwt.SigningMethodRS256, k.rsaOther, "rsa-1"},
		{"ES256", jwt.SigningMethodES256, k.ec, ""},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, ""},
		{"HS256", jwt.SigningMethodHS256, k.hmac, ""},
	} {
		token := sign(b, bc.method, bc.key, bc.kid, claims())
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
