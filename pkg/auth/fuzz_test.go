package auth_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// Fixed keys so the committed seed corpus (testdata/fuzz/FuzzVerify) holds
// validly signed tokens the fuzzer can mutate from.
var (
	fuzzSecret = []byte("fuzz-secret-fuzz-secret-fuzz-secret!")
	fuzzEdKey  = ed25519.NewKeyFromSeed([]byte("streamer-auth-fuzz-ed25519-seed!"))
)

func fuzzVerifier(tb testing.TB) *auth.Verifier {
	tb.Helper()
	v, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"HS256", "EdDSA"},
		Audience:   "streamer",
		Keys: auth.Keys{
			HMACSecrets: [][]byte{fuzzSecret},
			PublicKeys:  []crypto.PublicKey{fuzzEdKey.Public()},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// FuzzVerify feeds arbitrary Authorization header values and token query
// parameters through TokenFromRequest and Verify: nothing panics, every
// failure is one of the package's typed errors, no error text repeats the
// token, and an accepted token always yields a user.
func FuzzVerify(f *testing.F) {
	exp := time.Now().Add(time.Hour).Unix()
	hs := sign(f, jwt.SigningMethodHS256, fuzzSecret, "", jwt.MapClaims{"sub": "u", "aud": "streamer", "exp": exp, "permissions": "a b"})
	ed := sign(f, jwt.SigningMethodEdDSA, fuzzEdKey, "k1", jwt.MapClaims{"sub": "u", "aud": []string{"x", "streamer"}, "exp": exp, "tenant_id": "t"})
	f.Add("Bearer "+hs, "")
	f.Add("", ed)
	f.Add("bearer "+ed, hs)
	f.Add("Basic Zm9vOmJhcg==", "")
	f.Add("Bearer a.b.c", "")
	f.Add("", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")

	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, authorization, queryToken string) {
		headers := map[string]string{"Authorization": authorization}
		query := map[string]string{"token": queryToken}
		token, err := auth.TokenFromRequest(headers, query)
		if err != nil {
			if !errors.Is(err, auth.ErrNoToken) {
				t.Fatalf("TokenFromRequest error %v is not ErrNoToken", err)
			}
			return
		}
		if token == "" || token != strings.TrimSpace(token) ||
			(!strings.Contains(authorization, token) && !strings.Contains(queryToken, token)) {
			t.Fatalf("TokenFromRequest returned %q, not taken from the request", token)
		}
		id, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidToken", err)
			}
			if len(token) >= 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("Verify error repeats the token: %v", err)
			}
			return
		}
		if id.UserID == "" || id.ExpiresAt.IsZero() {
			t.Fatalf("accepted token without user or expiry: %+v", id)
		}
	})
}

// The committed seeds named valid-* must stay accepted, so the fuzzer keeps
// starting from the success path (they expire in 2100).
func TestFuzzSeedCorpusHasValidTokens(t *testing.T) {
	v := fuzzVerifier(t)
	for _, name := range []string{"valid-hs256-header", "valid-eddsa-query"} {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "string("), ")"))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			args = append(args, s)
		}
		token, err := auth.TokenFromRequest(map[string]string{"Authorization": args[0]}, map[string]string{"token": args[1]})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := v.Verify(t.Context(), token); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
