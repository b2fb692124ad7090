package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// --jwt-jwks-url fetches the provider's set, and --jwt-audience-claim and
// --jwt-token-use give Cognito's access-token conventions.
func TestDevJWKSURL(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "pool-1", ALG: "RS256", USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	// Plain http is accepted for a loopback provider only.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	defer srv.Close()
	issuer := "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test"
	o, err := parseDevFlags([]string{"--jwt-algorithms", "RS256", "--jwt-jwks-url", srv.URL + "/.well-known/jwks.json",
		"--jwt-issuer", issuer, "--jwt-audience", "app-1", "--jwt-audience-claim", "client_id", "--jwt-token-use", "access",
		"--jwt-permissions-claim", "scope"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	v, stop, err := o.jwt.verifier(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	mint := func(use, client string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "carol", "iss": issuer, "client_id": client,
			"token_use": use, "scope": "echo", "exp": time.Now().Add(time.Minute).Unix()})
		tok.Header["kid"] = "pool-1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if id, err := v.Verify(context.Background(), mint("access", "app-1")); err != nil || id.UserID != "carol" || !id.HasPermission("echo") {
		t.Errorf("access token: %+v, %v", id, err)
	}
	if _, err := v.Verify(context.Background(), mint("id", "app-1")); !errors.Is(err, auth.ErrClaimMismatch) {
		t.Errorf("ID token: %v, want ErrClaimMismatch", err)
	}
	if _, err := v.Verify(context.Background(), mint("access", "app-2")); !errors.Is(err, auth.ErrInvalidAudience) {
		t.Errorf("other client: %v, want ErrInvalidAudience", err)
	}

	// An unreachable provider at start is a usage error naming the flag.
	o.jwt.jwksURL = "http://127.0.0.1:1/jwks.json"
	if _, _, err := o.jwt.verifier(context.Background(), slog.New(slog.DiscardHandler)); !errors.Is(err, auth.ErrJWKSFetch) {
		t.Errorf("unreachable provider: %v", err)
	}
	if _, err := parseDevFlags([]string{"--jwt-jwks-url", srv.URL}, io.Discard); err == nil {
		t.Error("--jwt-jwks-url without --jwt-algorithms accepted")
	}
}
