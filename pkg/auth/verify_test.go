package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// verifierFromFiles builds a verifier the way cmd/streamer will: PEM and JWKS
// files on disk, an HMAC secret, issuer and audience.
func verifierFromFiles(t testing.TB, algs ...string) *auth.Verifier {
	t.Helper()
	k := keys()
	pubs, err := auth.LoadPEMFile(writePEM(t, k.rsa.Public(), k.ec.Public(), k.ed.Public()))
	if err != nil {
		t.Fatal(err)
	}
	set, err := auth.LoadJWKSFile(writeJWKS(t,
		jwk{kid: "rsa-1", alg: "RS256", pub: k.rsaOther.Public()},
		jwk{kid: "ec-1", pub: k.ecOther.Public()},
		jwk{kid: "ed-1", pub: k.edOther.Public()},
	))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{
		Algorithms: algs,
		Issuer:     "https://issuer.example",
		Audience:   "streamer",
		Keys:       auth.Keys{HMACSecrets: [][]byte{k.hmac}, PublicKeys: pubs, JWKS: set},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var allAlgs = []string{"RS256", "ES256", "EdDSA", "HS256"}

func TestVerifyValidTokens(t *testing.T) {
	k := keys()
	v := verifierFromFiles(t, allAlgs...)
	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256 PEM", jwt.SigningMethodRS256, k.rsa, ""},
		{"ES256 PEM", jwt.SigningMethodES256, k.ec, ""},
		{"EdDSA PEM", jwt.SigningMethodEdDSA, k.ed, ""},
		{"HS256 secret", jwt.SigningMethodHS256, k.hmac, ""},
		{"RS256 JWKS kid", jwt.SigningMethodRS256, k.rsaOther, "rsa-1"},
		{"ES256 JWKS kid", jwt.SigningMethodES256, k.ecOther, "ec-1"},
		{"EdDSA JWKS kid", jwt.SigningMethodEdDSA, k.edOther, "ed-1"},
		{"ES256 JWKS without kid", jwt.SigningMethodES256, k.ecOther, ""},
		{"RS256 PEM with kid unknown to JWKS", jwt.SigningMethodRS256, k.rsa, "static"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims()
			id, err := v.Verify(t.Context(), sign(t, tt.method, tt.key, tt.kid, c))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.UserID != "u-1" || id.TenantID != "t-1" || id.Subject != "u-1" {
				t.Errorf("identity = %+v", id)
			}
			if !reflect.DeepEqual(id.Permissions, []string{"report:run", "echo"}) {
				t.Errorf("permissions = %q", id.Permissions)
			}
			if want := time.Unix(c["exp"].(int64), 0); !id.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", id.ExpiresAt, want)
			}
			if id.Claims["iss"] != "https://issuer.example" {
				t.Errorf("Claims = %v", id.Claims)
			}
			if !id.HasPermission("echo") || id.HasPermission("admin") {
				t.Errorf("HasPermission wrong for %q", id.Permissions)
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	k := keys()
	v := verifierFromFiles(t, allAlgs...)
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := claims()
		mod(c)
		return c
	}
	rsaPEM, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsaPEMBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPEM})
	none := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := sign(t, jwt.SigningMethodRS256, k.rsa, "", claims())

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), auth.ErrTokenExpired},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), auth.ErrTokenNotYetValid},
		{"issued in the future", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })), auth.ErrTokenNotYetValid},
		{"wrong RSA key", sign(t, jwt.SigningMethodRS256, k.rsaStranger, "", claims()), auth.ErrSignatureInvalid},
		{"wrong ECDSA key", sign(t, jwt.SigningMethodES256, mustECKey(t), "", claims()), auth.ErrSignatureInvalid},
		{"wrong HMAC secret", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", claims()), auth.ErrSignatureInvalid},
		{"JWKS kid with another key", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims()), auth.ErrSignatureInvalid},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["aud"] = "other" })), auth.ErrInvalidAudience},
		{"missing audience", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { delete(c, "aud") })), auth.ErrMissingClaim},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), auth.ErrInvalidIssuer},
		{"missing issuer", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { delete(c, "iss") })), auth.ErrMissingClaim},
		{"missing exp", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { delete(c, "exp") })), auth.ErrMissingClaim},
		{"missing sub", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { delete(c, "sub") })), auth.ErrMissingClaim},
		{"empty sub", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["sub"] = "" })), auth.ErrMissingClaim},
		{"numeric tenant", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["tenant_id"] = 7 })), auth.ErrInvalidClaim},
		{"permissions object", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["permissions"] = map[string]any{"a": 1} })), auth.ErrInvalidClaim},
		{"permissions array of numbers", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c jwt.MapClaims) { c["permissions"] = []int{1} })), auth.ErrInvalidClaim},
		{"alg none", none(claims()), auth.ErrAlgorithmNotAllowed},
		{"alg not configured", sign(t, jwt.SigningMethodES384, mustECKeyCurve(t, elliptic.P384()), "", claims()), auth.ErrAlgorithmNotAllowed},
		// The classic confusion attack: HS256 "signed" with the RSA public
		// key's PEM bytes. Only HMAC secrets are ever tried for HS256.
		{"HS256 with RSA public key bytes", sign(t, jwt.SigningMethodHS256, rsaPEMBytes, "", claims()), auth.ErrSignatureInvalid},
		{"HS256 with RSA public key bytes and its JWKS kid", sign(t, jwt.SigningMethodHS256, rsaPEMBytes, "rsa-1", claims()), auth.ErrUnknownKey},
		{"HS256 with JWKS kid of key without alg", sign(t, jwt.SigningMethodHS256, rsaPEMBytes, "ec-1", claims()), auth.ErrUnknownKey},
		{"kid not in JWKS falls back to static keys, none matches", sign(t, jwt.SigningMethodEdDSA, k.edOther, "nope", claims()), auth.ErrSignatureInvalid},
		{"malformed: one segment", "abc", auth.ErrMalformedToken},
		{"malformed: bad base64", "a.b.c", auth.ErrMalformedToken},
		{"malformed: empty", "", auth.ErrMalformedToken},
		{"malformed: too long", valid + strings.Repeat("A", auth.MaxTokenLen), auth.ErrMalformedToken},
		{"tampered payload", tamper(t, valid), auth.ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", id)
			}
			if !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want ErrInvalidToken and %v", err, tt.want)
			}
			if len(tt.token) > 8 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error text carries the token: %v", err)
			}
			if id != nil {
				t.Errorf("identity %+v returned with an error", id)
			}
		})
	}
}

// With only a JWKS configured, a kid that is not in it finds no key.
func TestVerifyUnknownKIDWithJWKSOnly(t *testing.T) {
	k := keys()
	set, err := auth.ParseJWKS(jwksJSON(t, jwk{kid: "rsa-1", pub: k.rsa.Public()}))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Algorithms: []string{"RS256"}, Keys: auth.Keys{JWKS: set}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims())); err != nil {
		t.Fatalf("known kid: %v", err)
	}
	_, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-2", claims()))
	if !errors.Is(err, auth.ErrUnknownKey) || !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("unknown kid: %v, want ErrUnknownKey", err)
	}
}

// Only the listed algorithms pass, even when a key for another is present.
func TestVerifyOnlyConfiguredAlgorithms(t *testing.T) {
	k := keys()
	v := verifierFromFiles(t, "RS256")
	_, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, k.hmac, "", claims()))
	if !errors.Is(err, auth.ErrAlgorithmNotAllowed) {
		t.Errorf("HS256 with RS256 configured: %v, want ErrAlgorithmNotAllowed", err)
	}
	_, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, k.ec, "", claims()))
	if !errors.Is(err, auth.ErrAlgorithmNotAllowed) {
		t.Errorf("ES256 with RS256 configured: %v, want ErrAlgorithmNotAllowed", err)
	}
}

func TestVerifyClaimNamesAndLeeway(t *testing.T) {
	k := keys()
	v, err := auth.NewVerifier(auth.Config{
		Algorithms:       []string{"HS256"},
		UserClaim:        "email",
		TenantClaim:      "org",
		PermissionsClaim: "scope",
		Leeway:           time.Minute,
		Keys:             auth.Keys{HMACSecrets: [][]byte{k.hmac}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{
		"sub":   "auth0|42",
		"email": "ada@example.com",
		"org":   "acme",
		"scope": "read  write\tadmin",
		"exp":   time.Now().Add(-30 * time.Second).Unix(), // within leeway
	}
	id, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, k.hmac, "", c))
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "ada@example.com" || id.TenantID != "acme" || id.Subject != "auth0|42" {
		t.Errorf("identity = %+v", id)
	}
	if !reflect.DeepEqual(id.Permissions, []string{"read", "write", "admin"}) {
		t.Errorf("permissions from scope = %q", id.Permissions)
	}
	c["exp"] = time.Now().Add(-2 * time.Minute).Unix()
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, k.hmac, "", c)); !errors.Is(err, auth.ErrTokenExpired) {
		t.Errorf("expired beyond leeway: %v", err)
	}
	delete(c, "email")
	c["exp"] = time.Now().Add(time.Hour).Unix()
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, k.hmac, "", c)); !errors.Is(err, auth.ErrMissingClaim) {
		t.Errorf("without the user claim (sub present): %v, want ErrMissingClaim", err)
	}
	// No tenant and no permissions are fine.
	c = jwt.MapClaims{"email": "bo@example.com", "exp": time.Now().Add(time.Hour).Unix()}
	id, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, k.hmac, "", c))
	if err != nil || id.TenantID != "" || len(id.Permissions) != 0 {
		t.Errorf("minimal token: %+v, %v", id, err)
	}
}

func TestVerifyCancelledContext(t *testing.T) {
	k := keys()
	v := verifierFromFiles(t, allAlgs...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, k.hmac, "", claims()))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with cancelled context = %v", err)
	}
}

func TestVerifierIsSafeForConcurrentUse(t *testing.T) {
	k := keys()
	v := verifierFromFiles(t, allAlgs...)
	tokens := []string{
		sign(t, jwt.SigningMethodRS256, k.rsaOther, "rsa-1", claims()),
		sign(t, jwt.SigningMethodES256, k.ec, "", claims()),
		sign(t, jwt.SigningMethodHS256, k.hmac, "", claims()),
	}
	errs := make(chan error, 30)
	for i := range 30 {
		go func() {
			_, err := v.Verify(context.Background(), tokens[i%len(tokens)])
			errs <- err
		}()
	}
	for range 30 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	k := keys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	secret := [][]byte{k.hmac}
	tests := []struct {
		name string
		cfg  auth.Config
	}{
		{"no algorithms", auth.Config{Keys: auth.Keys{HMACSecrets: secret}}},
		{"none", auth.Config{Algorithms: []string{"HS256", "none"}, Keys: auth.Keys{HMACSecrets: secret}}},
		{"NONE", auth.Config{Algorithms: []string{"NONE"}, Keys: auth.Keys{HMACSecrets: secret}}},
		{"unknown algorithm", auth.Config{Algorithms: []string{"HS257"}, Keys: auth.Keys{HMACSecrets: secret}}},
		{"short secret", auth.Config{Algorithms: []string{"HS256"}, Keys: auth.Keys{HMACSecrets: [][]byte{[]byte("secret")}}}},
		{"algorithm without key", auth.Config{Algorithms: []string{"HS256", "RS256"}, Keys: auth.Keys{HMACSecrets: secret}}},
		{"ES384 with a P-256 key only", auth.Config{Algorithms: []string{"ES384"}, Keys: auth.Keys{PublicKeys: []crypto.PublicKey{k.ec.Public()}}}},
		{"small RSA key", auth.Config{Algorithms: []string{"RS256"}, Keys: auth.Keys{PublicKeys: []crypto.PublicKey{small.Public()}}}},
		{"unsupported key type", auth.Config{Algorithms: []string{"RS256"}, Keys: auth.Keys{PublicKeys: []crypto.PublicKey{"not a key"}}}},
		{"negative leeway", auth.Config{Algorithms: []string{"HS256"}, Leeway: -time.Second, Keys: auth.Keys{HMACSecrets: secret}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := auth.NewVerifier(tt.cfg)
			var ce *auth.ConfigError
			if !errors.Is(err, auth.ErrInvalidConfig) || !errors.As(err, &ce) || v != nil {
				t.Fatalf("NewVerifier = %v, %v; want a *ConfigError", v, err)
			}
		})
	}
}

func TestKeyLoaders(t *testing.T) {
	k := keys()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k.rsa)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	if pubs, err := auth.LoadPEMFile(write("pkcs1.pem", pkcs1)); err != nil || len(pubs) != 1 {
		t.Errorf("PKCS #1 public key: %v, %v", pubs, err)
	}
	for name, data := range map[string][]byte{
		"private.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"empty.pem":   []byte("no pem here"),
		"broken.pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
		"other.pem":   pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}),
	} {
		if _, err := auth.LoadPEMFile(write(name, data)); !errors.Is(err, auth.ErrInvalidConfig) {
			t.Errorf("LoadPEMFile(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := auth.LoadPEMFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, auth.ErrInvalidConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing PEM file: %v", err)
	}

	set, err := auth.LoadJWKSFile(writeJWKS(t, jwk{kid: "a", pub: k.rsa.Public()}, jwk{kid: "b", pub: k.ed.Public()}))
	if err != nil || set.Len() != 2 {
		t.Fatalf("LoadJWKSFile: %v, %v", set, err)
	}
	encOnly := strings.Replace(string(jwksJSON(t, jwk{kid: "e", pub: k.rsa.Public()})), `"use":"sig"`, `"use":"enc"`, 1)
	if !strings.Contains(encOnly, `"use":"enc"`) {
		t.Fatalf("test JWKS has no use member: %s", encOnly)
	}
	mixed := strings.Replace(string(jwksJSON(t, jwk{kid: "e", pub: k.rsa.Public()}, jwk{kid: "s", pub: k.ec.Public()})), `"use":"sig"`, `"use":"enc"`, 1)
	set, err = auth.ParseJWKS([]byte(mixed))
	if err != nil || set.Len() != 1 {
		t.Fatalf("JWKS with one enc and one sig key: %v keys, %v", set, err)
	}
	v, err := auth.NewVerifier(auth.Config{Algorithms: []string{"RS256", "ES256"}, Keys: auth.Keys{JWKS: set, PublicKeys: []crypto.PublicKey{k.rsaStranger.Public()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, "e", claims())); !errors.Is(err, auth.ErrSignatureInvalid) {
		t.Errorf("token signed with the enc key: %v, want ErrSignatureInvalid", err)
	}
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, k.ec, "s", claims())); err != nil {
		t.Errorf("token signed with the sig key: %v", err)
	}
	for name, data := range map[string]string{
		"not json":  "{",
		"no keys":   `{"keys":[]}`,
		"enc only":  string(encOnly),
		"oct key":   `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI"}]}`,
		"bad rsa":   `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`,
		"wrong kty": `{"keys":[{"kty":"XYZ","kid":"x"}]}`,
	} {
		if _, err := auth.ParseJWKS([]byte(data)); !errors.Is(err, auth.ErrInvalidConfig) {
			t.Errorf("ParseJWKS(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := auth.LoadJWKSFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing JWKS file: %v", err)
	}
}

func mustECKey(t testing.TB) *ecdsa.PrivateKey { return mustECKeyCurve(t, elliptic.P256()) }

func mustECKeyCurve(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// tamper changes the payload of a signed token, keeping its signature.
func tamper(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	c := claims()
	c["sub"] = "admin"
	forged := sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 32)), "", c)
	parts[1] = strings.Split(forged, ".")[1]
	return strings.Join(parts, ".")
}
