package awslambda_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/awslambda"
)

func TestConfigVerifierLoadsThePEMKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(awslambda.EnvJWTAlgorithms, "ES256")
	t.Setenv(awslambda.EnvJWTKeyFile, path)
	t.Setenv(awslambda.EnvJWTAudience, "app")
	cfg, err := awslambda.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	v, err := cfg.Verifier(t.Context(), nil)
	if err != nil || v == nil {
		t.Fatalf("Verifier: %v %v", v, err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice", "aud": "app", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), tok)
	if err != nil || id.UserID != "alice" {
		t.Fatalf("Verify: %+v %v", id, err)
	}

	t.Setenv(awslambda.EnvJWTKeyFile, filepath.Join(t.TempDir(), "missing.pem"))
	cfg, err = awslambda.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Verifier(t.Context(), nil); !errors.Is(err, awslambda.ErrConfig) {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestAnonymousConfigHasNoVerifier(t *testing.T) {
	t.Setenv(awslambda.EnvJWTAlgorithms, "")
	t.Setenv(awslambda.EnvAllowAnonymous, "true")
	cfg, err := awslambda.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfg.Verifier(t.Context(), nil); v != nil || err != nil {
		t.Fatalf("Verifier = %v, %v", v, err)
	}
}
