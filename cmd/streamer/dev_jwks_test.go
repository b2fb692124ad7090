package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
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
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
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
	v, set, err := o.jwt.verifier(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
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

	// /metrics reports the set's refreshes: one request so far, one key;
	// then the provider fails a refresh (an unknown kid asks for one).
	st := memory.New()
	cs := connectiontest.NewServer()
	defer cs.Close()
	mgr := connection.NewManager(st, cs.Client(), cs.URL)
	defer mgr.Shutdown(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m, err := newDevMetrics("", ln, mgr, streamer.NewProcessor(st, mgr, streamer.NewActions()), set)
	if err != nil {
		t.Fatal(err)
	}
	gauge := func(name string) float64 {
		fams, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == name {
				if c := f.Metric[0].GetCounter(); c != nil {
					return c.GetValue()
				}
				return f.Metric[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	if gauge("streamer_auth_jwks_requests_total") != 1 || gauge("streamer_auth_jwks_keys") != 1 || gauge("streamer_auth_jwks_last_success_timestamp_seconds") <= 0 {
		t.Error("JWKS metrics after the first fetch")
	}
	failing.Store(true)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "rotated"
	bogus, _ := tok.SignedString(key)
	if _, err := v.Verify(context.Background(), bogus); !errors.Is(err, auth.ErrUnknownKey) {
		t.Errorf("unknown kid: %v", err)
	}
	if gauge("streamer_auth_jwks_refresh_failures_total") != 1 || gauge("streamer_auth_jwks_keys") != 1 {
		t.Error("JWKS metrics after a failed refresh")
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
