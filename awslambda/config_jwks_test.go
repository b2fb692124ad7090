package awslambda

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// STREAMER_JWT_JWKS_URL and the Cognito settings give a verifier that
// fetches the provider's keys and checks client_id and token_use.
func TestConfigJWKSURLAndCognitoSettings(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: "RS256", USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	// A loopback provider may use plain http (auth.FetchJWKS).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) }))
	defer srv.Close()
	c, err := configFrom(env(map[string]string{
		EnvJWTAlgorithms: "RS256", EnvJWKSURL: srv.URL + "/.well-known/jwks.json", EnvJWTIssuer: "https://cognito-idp.eu-west-1.amazonaws.com/pool",
		EnvJWTAudience: "app-1", EnvJWTAudienceClaim: "client_id", EnvJWTTokenUse: "access", EnvJWTPermissionsClaim: "scope",
		EnvMetricsNamespace: "off",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.MetricsOff || c.MetricsNamespace != "" {
		t.Errorf("metrics off: %+v", c)
	}
	v, err := c.Verifier(t.Context(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(use string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u", "iss": c.JWTIssuer, "client_id": "app-1",
			"token_use": use, "scope": "a b", "exp": time.Now().Add(time.Minute).Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if id, err := v.Verify(t.Context(), mint("access")); err != nil || !id.HasPermission("b") {
		t.Errorf("access token: %+v %v", id, err)
	}
	if _, err := v.Verify(t.Context(), mint("id")); !errors.Is(err, auth.ErrClaimMismatch) {
		t.Errorf("id token: %v", err)
	}

	for name, m := range map[string]map[string]string{
		"file and url": {EnvJWTAlgorithms: "RS256", EnvJWKSFile: "/k.json", EnvJWKSURL: srv.URL},
	} {
		if _, err := configFrom(env(m)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad, err := configFrom(env(map[string]string{EnvJWTAlgorithms: "RS256", EnvJWKSURL: "http://idp.example/jwks.json"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Verifier(t.Context(), nil); !errors.Is(err, ErrConfig) || !errors.Is(err, auth.ErrInvalidConfig) {
		t.Errorf("plain http provider: %v", err)
	}
}
