package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// testKeys are real key pairs, generated once per test binary (RSA key
// generation is slow under -race).
type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	rsaStranger   *rsa.PrivateKey // in no key set
	ec, ecOther   *ecdsa.PrivateKey
	ed, edOther   ed25519.PrivateKey
	hmac          []byte
}

var keys = sync.OnceValue(func() testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k testKeys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaStranger, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.edOther, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	k.hmac = make([]byte, 32)
	_, err = rand.Read(k.hmac)
	must(err)
	return k
})

// writePEM writes the public halves of keys as PKIX "PUBLIC KEY" blocks.
func writePEM(t testing.TB, pubs ...crypto.PublicKey) string {
	t.Helper()
	var out []byte
	for _, pub := range pubs {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	path := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jwk is one key of a test JWKS.
type jwk struct {
	kid string
	alg string // optional "alg" member
	pub crypto.PublicKey
}

// jwksJSON marshals public keys as a JWKS document with jwkset.
func jwksJSON(t testing.TB, ks ...jwk) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range ks {
		j, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeJWKS(t testing.TB, ks ...jwk) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, ks...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// claims returns valid claims for user "u-1" that tests then modify.
func claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub":         "u-1",
		"tenant_id":   "t-1",
		"permissions": []string{"report:run", "echo"},
		"iss":         "https://issuer.example",
		"aud":         "streamer",
		"iat":         now.Unix(),
		"exp":         now.Add(time.Hour).Unix(),
	}
}

// sign signs c with method and key, setting kid when non-empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
