package auth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// provider is an identity provider's JWKS endpoint on a real TLS server.
type provider struct {
	srv      *httptest.Server
	mu       sync.Mutex
	doc      []byte
	status   int    // when non-zero, answered instead of the document
	hangUp   bool   // drop the connection without an answer
	etag     string // sent, and honoured in If-None-Match, when set
	cacheCtl string
	requests atomic.Int64
	cond     atomic.Int64 // requests carrying If-None-Match
}

func newProvider(t *testing.T, doc []byte) *provider {
	t.Helper()
	p := &provider{doc: doc}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		doc, status, hangUp, etag, cc := p.doc, p.status, p.hangUp, p.etag, p.cacheCtl
		p.mu.Unlock()
		if r.Header.Get("If-None-Match") != "" {
			p.cond.Add(1)
		}
		switch {
		case hangUp:
			panic(http.ErrAbortHandler)
		case status != 0:
			http.Error(w, "provider trouble", status)
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *provider) url() string { return p.srv.URL + "/.well-known/jwks.json" }

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fetch fetches p's set with a long scheduled interval (tests trigger
// refreshes through unknown kids) unless opts says otherwise.
func fetch(t *testing.T, p *provider, opts auth.FetchOptions) (*auth.JWKS, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.HTTPClient = p.srv.Client()
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = time.Hour
	}
	if opts.UnknownKIDInterval == 0 {
		opts.UnknownKIDInterval = time.Hour
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	set, err := auth.FetchJWKS(t.Context(), p.url(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set, logs
}

func remoteVerifier(t *testing.T, set *auth.JWKS, algs ...string) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Algorithms: algs, Keys: auth.Keys{JWKS: set}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustVerify(t *testing.T, v *auth.Verifier, tok string) {
	t.Helper()
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func mustRefuse(t *testing.T, v *auth.Verifier, tok string, want error) {
	t.Helper()
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, want) || !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify: %v, want %v", err, want)
	}
}

// A rotation (old kid removed, new kid added) is picked up without a
// restart: the first token with the new kid triggers a refresh, and the
// removed kid stops verifying.
func TestFetchJWKSRotationOnUnknownKID(t *testing.T) {
	k := keys()
	p := newProvider(t, jwksJSON(t, jwk{kid: "k1", alg: "RS256", pub: k.rsa.Public()}))
	set, _ := fetch(t, p, auth.FetchOptions{})
	v := remoteVerifier(t, set, "RS256")
	old := sign(t, jwt.SigningMethodRS256, k.rsa, "k1", claims())
	mustVerify(t, v, old)

	p.set(func(p *provider) { p.doc = jwksJSON(t, jwk{kid: "k2", alg: "RS256", pub: k.rsaOther.Public()}) })
	mustVerify(t, v, sign(t, jwt.SigningMethodRS256, k.rsaOther, "k2", claims()))
	if got := p.requests.Load(); got != 2 {
		t.Errorf("provider saw %d requests, want 2 (start, unknown kid)", got)
	}
	mustRefuse(t, v, old, auth.ErrUnknownKey)
	if set.Len() != 1 {
		t.Errorf("Len = %d, want 1", set.Len())
	}
}

// The scheduled refresh picks up a rotation on its own.
func TestFetchJWKSScheduledRefresh(t *testing.T) {
	k := keys()
	p := newProvider(t, jwksJSON(t, jwk{kid: "k1", pub: k.rsa.Public()}))
	set, logs := fetch(t, p, auth.FetchOptions{RefreshInterval: 10 * time.Millisecond})
	v := remoteVerifier(t, set, "RS256")
	p.set(func(p *provider) { p.doc = jwksJSON(t, jwk{kid: "k2", pub: k.rsaOther.Public()}) })
	waitFor(t, func() bool { return strings.Contains(logs.String(), "removed_kids=[k1]") })
	// The unknown-kid limiter was never used, so this refusal costs one
	// more (futile) request, and no more.
	mustRefuse(t, v, sign(t, jwt.SigningMethodRS256, k.rsa, "k1", claims()), auth.ErrUnknownKey)
	mustVerify(t, v, sign(t, jwt.SigningMethodRS256, k.rsaOther, "k2", claims()))
}

// waitFor polls cond; it bounds a wait, it measures nothing.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A flood of tokens with bogus kids causes at most the configured refresh
// rate: with one refresh allowed per hour, 200 concurrent bogus tokens
// make exactly one request, and none of them waits for a slot.
func TestFetchJWKSUnknownKIDFloodIsRateLimited(t *testing.T) {
	k := keys()
	p := newProvider(t, jwksJSON(t, jwk{kid: "k1", pub: k.rsa.Public()}))
	set, _ := fetch(t, p, auth.FetchOptions{})
	v := remoteVerifier(t, set, "RS256")
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tok := sign(t, jwt.SigningMethodRS256, k.rsaStranger, fmt.Sprintf("bogus-%d", i), claims())
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrUnknownKey) {
				t.Errorf("bogus kid: %v, want ErrUnknownKey", err)
			}
		})
	}
	wg.Wait()
	if got := p.requests.Load(); got != 2 {
		t.Errorf("provider saw %d requests, want 2 (start + one rate-limited refresh)", got)
	}
	mustVerify(t, v, sign(t, jwt.SigningMethodRS256, k.rsa, "k1", claims()))
}

// Provider down: the last good keys keep working and a clear line is
// logged, for an error status and for a dropped connection alike.
func TestFetchJWKSProviderDownKeepsLastGoodKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(p *provider)
		want string
	}{
		{"503", func(p *provider) { p.status = http.StatusServiceUnavailable }, "answered 503"},
		{"hang up", func(p *provider) { p.hangUp = true }, "EOF"},
		{"oversize", func(p *provider) { p.doc = bytes.Repeat([]byte(" "), 2<<20) }, "exceeds the limit"},
		{"malformed", func(p *provider) { p.doc = []byte(`{"keys":[{"kty":`) }, "not a JSON Web Key Set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := keys()
			p := newProvider(t, jwksJSON(t, jwk{kid: "k1", pub: k.rsa.Public()}))
			set, logs := fetch(t, p, auth.FetchOptions{UnknownKIDInterval: time.Millisecond})
			v := remoteVerifier(t, set, "RS256")
			p.set(tc.down)
			mustRefuse(t, v, sign(t, jwt.SigningMethodRS256, k.rsaOther, "k2", claims()), auth.ErrUnknownKey)
			mustVerify(t, v, sign(t, jwt.SigningMethodRS256, k.rsa, "k1", claims()))
			out := logs.String()
			if !strings.Contains(out, "JWKS refresh failed; still verifying with the last good keys") || !strings.Contains(out, tc.want) {
				t.Errorf("log lacks the refresh failure (%q):\n%s", tc.want, out)
			}
			if st := set.Stats(); st.Failures != 1 || st.LastSuccess.IsZero() {
				t.Errorf("Stats = %+v, want 1 failure after a success", st)
			}
		})
	}
}

// The first fetch must succeed, and a document that is too big,
// malformed, carries a secret or mislabels a key is refused.
func TestFetchJWKSRefusesBadDocuments(t *testing.T) {
	k := keys()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		doc  []byte
		opts auth.FetchOptions
	}{
		{"oversize", append(jwksJSON(t, jwk{kid: "k1", pub: k.rsa.Public()}), bytes.Repeat([]byte(" "), 600)...), auth.FetchOptions{MaxBytes: 1000}},
		{"malformed", []byte(`{"keys": [`), auth.FetchOptions{}},
		{"not a set", []byte(`"hello"`), auth.FetchOptions{}},
		{"empty", []byte(`{"keys":[]}`), auth.FetchOptions{}},
		{"symmetric", []byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`), auth.FetchOptions{}},
		{"RSA key marked ES256", jwksJSON(t, jwk{kid: "k1", alg: "ES256", pub: k.rsa.Public()}), auth.FetchOptions{}},
		{"weak RSA", jwksJSON(t, jwk{kid: "k1", pub: weak.Public()}), auth.FetchOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, tc.doc)
			tc.opts.HTTPClient = p.srv.Client()
			set, err := auth.FetchJWKS(t.Context(), p.url(), &tc.opts)
			if !errors.Is(err, auth.ErrJWKSFetch) {
				set.Close()
				t.Fatalf("FetchJWKS: %v, want ErrJWKSFetch", err)
			}
		})
	}
	p := newProvider(t, nil)
	p.set(func(p *provider) { p.status = http.StatusNotFound })
	if _, err := auth.FetchJWKS(t.Context(), p.url(), &auth.FetchOptions{HTTPClient: p.srv.Client()}); !errors.Is(err, auth.ErrJWKSFetch) || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}

func TestFetchJWKSRefusesInsecureURLs(t *testing.T) {
	for _, u := range []string{"http://idp.example/jwks.json", "ftp://idp.example/jwks.json", "jwks.json", "https://"} {
		if _, err := auth.FetchJWKS(t.Context(), u, nil); !errors.Is(err, auth.ErrInvalidConfig) {
			t.Errorf("%q: %v, want ErrInvalidConfig", u, err)
		}
	}
}

// A token's alg must fit the type of the key its kid names, and the key's
// own "alg" when it has one.
func TestFetchJWKSAlgKeyMismatchRefused(t *testing.T) {
	k := keys()
	p := newProvider(t, jwksJSON(t,
		jwk{kid: "rsa", alg: "RS256", pub: k.rsa.Public()},
		jwk{kid: "ec", pub: k.ec.Public()},
	))
	set, _ := fetch(t, p, auth.FetchOptions{})
	v := remoteVerifier(t, set, "RS256", "PS256", "ES256")
	mustVerify(t, v, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa", claims()))
	mustVerify(t, v, sign(t, jwt.SigningMethodES256, k.ec, "ec", claims()))
	mustRefuse(t, v, sign(t, jwt.SigningMethodPS256, k.rsa, "rsa", claims()), auth.ErrUnknownKey)
	mustRefuse(t, v, sign(t, jwt.SigningMethodES256, k.ec, "rsa", claims()), auth.ErrUnknownKey)
	mustRefuse(t, v, sign(t, jwt.SigningMethodRS256, k.rsa, "ec", claims()), auth.ErrUnknownKey)

	// A key marked with an algorithm that signs nothing here (an
	// encryption key published without "use") is left out, not fatal.
	p.set(func(p *provider) {
		p.doc = jwksJSON(t, jwk{kid: "rsa", alg: "RS256", pub: k.rsa.Public()}, jwk{kid: "oaep", alg: "RSA-OAEP", pub: k.rsaOther.Public()})
	})
	set2, _ := fetch(t, p, auth.FetchOptions{})
	if set2.Len() != 1 {
		t.Errorf("set with an RSA-OAEP key: Len = %d, want 1", set2.Len())
	}
	mustRefuse(t, remoteVerifier(t, set2, "RS256"), sign(t, jwt.SigningMethodRS256, k.rsaOther, "oaep", claims()), auth.ErrUnknownKey)
}

// ETag makes refreshes conditional (a 304 keeps the set), and a fresh
// Cache-Control max-age spares scheduled refreshes the request, while an
// unknown kid still asks the provider.
func TestFetchJWKSHonoursCachingHeaders(t *testing.T) {
	k := keys()
	p := newProvider(t, jwksJSON(t, jwk{kid: "k1", pub: k.rsa.Public()}))
	p.set(func(p *provider) { p.etag, p.cacheCtl = `"v1"`, "public, max-age=3600" })
	set, _ := fetch(t, p, auth.FetchOptions{RefreshInterval: 5 * time.Millisecond, UnknownKIDInterval: time.Millisecond})
	v := remoteVerifier(t, set, "RS256")
	// The first tick may race the first fetch; once a refresh has been
	// answered from the cache, no more reach the provider.
	waitFor(t, func() bool { return set.Stats().Fresh >= 1 })
	before := p.requests.Load()
	fresh := set.Stats().Fresh
	waitFor(t, func() bool { return set.Stats().Fresh >= fresh+3 })
	if got := p.requests.Load(); got != before {
		t.Errorf("provider saw %d more requests while the set was fresh, want 0", got-before)
	}
	mustRefuse(t, v, sign(t, jwt.SigningMethodRS256, k.rsaOther, "k2", claims()), auth.ErrUnknownKey)
	if got, cond := p.requests.Load(), p.cond.Load(); got != before+1 || cond != 1 {
		t.Errorf("requests = %d (was %d), conditional = %d, want one more, conditional", got, before, cond)
	}
	if st := set.Stats(); st.NotModified != 1 || st.Failures != 0 {
		t.Errorf("Stats = %+v, want 1 not-modified, 0 failures", st)
	}
	mustVerify(t, v, sign(t, jwt.SigningMethodRS256, k.rsa, "k1", claims()))
	set.Close()
	set.Close() // twice is safe
}

// Cognito's conventions: iss of the user pool, token_use, and the app
// client in client_id (access tokens) or aud (ID tokens).
func TestCognitoConfig(t *testing.T) {
	k := keys()
	p := newProvider(t, jwksJSON(t, jwk{kid: "cog-1", alg: "RS256", pub: k.rsa.Public()}))
	set, _ := fetch(t, p, auth.FetchOptions{})
	iss := auth.CognitoIssuer("eu-west-1", "eu-west-1_AbC123")
	if want := "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"; iss != want {
		t.Fatalf("issuer %q, want %q", iss, want)
	}
	if got := auth.CognitoJWKSURL("eu-west-1", "eu-west-1_AbC123"); got != iss+"/.well-known/jwks.json" {
		t.Errorf("JWKS URL %q", got)
	}
	access := func(mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{
			"sub": "u-1", "iss": iss, "client_id": "app-1", "token_use": "access",
			"scope": "streamer/echo streamer/report", "custom:tenant_id": "t-9",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		}
		mod(c)
		return sign(t, jwt.SigningMethodRS256, k.rsa, "cog-1", c)
	}
	cfg := auth.CognitoConfig("eu-west-1", "eu-west-1_AbC123", "app-1", auth.CognitoAccessToken)
	cfg.Keys.JWKS = set
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), access(func(jwt.MapClaims) {}))
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "u-1" || id.TenantID != "t-9" || !id.HasPermission("streamer/report") {
		t.Errorf("identity %+v", id)
	}
	mustRefuse(t, v, access(func(c jwt.MapClaims) { c["token_use"] = "id" }), auth.ErrClaimMismatch)
	mustRefuse(t, v, access(func(c jwt.MapClaims) { delete(c, "token_use") }), auth.ErrMissingClaim)
	mustRefuse(t, v, access(func(c jwt.MapClaims) { c["client_id"] = "other-app" }), auth.ErrInvalidAudience)
	mustRefuse(t, v, access(func(c jwt.MapClaims) { delete(c, "client_id") }), auth.ErrMissingClaim)
	mustRefuse(t, v, access(func(c jwt.MapClaims) { c["iss"] = auth.CognitoIssuer("eu-west-1", "other") }), auth.ErrInvalidIssuer)

	idCfg := auth.CognitoConfig("eu-west-1", "eu-west-1_AbC123", "app-1", auth.CognitoIDToken)
	idCfg.Keys.JWKS = set
	iv, err := auth.NewVerifier(idCfg)
	if err != nil {
		t.Fatal(err)
	}
	idTok := access(func(c jwt.MapClaims) {
		delete(c, "client_id")
		c["aud"], c["token_use"], c["cognito:groups"] = "app-1", "id", []string{"admins"}
	})
	got, err := iv.Verify(t.Context(), idTok)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasPermission("admins") {
		t.Errorf("ID token permissions %v, want the groups", got.Permissions)
	}
	mustRefuse(t, iv, access(func(jwt.MapClaims) {}), auth.ErrMissingClaim) // an access token has no aud
}
