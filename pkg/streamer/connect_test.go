package streamer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func testVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"HS256"},
		Audience:   "streamer-test",
		Keys:       auth.Keys{HMACSecrets: [][]byte{testSecret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func signToken(t *testing.T, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(user string) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": user, "tenant_id": "acme", "permissions": []string{"reports:run"},
		"aud": "streamer-test", "exp": time.Now().Add(time.Hour).Unix(),
	}
}

func TestConnectStoresVerifiedIdentity(t *testing.T) {
	st := memory.New()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	h := streamer.NewConnectHandler(st, streamer.WithVerifier(testVerifier(t)))
	err := h.Connect(t.Context(), streamer.ConnectRequest{
		ConnectionID: "c1",
		Headers:      map[string]string{"authorization": "Bearer " + signToken(t, validClaims("alice"), testSecret)},
		DomainName:   "abc.execute-api.eu-west-1.amazonaws.com", Stage: "prod",
		ConnectedAt: at, SourceIP: "1.2.3.4",
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Get(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "alice" || c.TenantID != "acme" || len(c.Permissions) != 1 || c.Permissions[0] != "reports:run" {
		t.Fatalf("stored identity %+v", c)
	}
	if c.Endpoint != "https://abc.execute-api.eu-west-1.amazonaws.com/prod" {
		t.Fatalf("endpoint %q", c.Endpoint)
	}
	if want := at.Add(streamer.DefaultConnectionTTL).Unix(); c.TTL != want {
		t.Fatalf("TTL %d, want %d", c.TTL, want)
	}
	// The query parameter works too (browsers cannot set headers).
	err = h.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "c2",
		Query: map[string]string{"token": signToken(t, validClaims("bob"), testSecret)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Disconnect(t.Context(), streamer.DisconnectRequest{ConnectionID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after disconnect: %v", err)
	}
}

func TestConnectRefusesBadTokensAndStoresNothing(t *testing.T) {
	noneToken := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims("eve")).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := validClaims("eve")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	wrongAud := validClaims("eve")
	wrongAud["aud"] = "someone-else"
	cases := map[string]map[string]string{
		"no token":       {},
		"garbage":        {"token": "not-a-jwt"},
		"expired":        {"token": signToken(t, expired, testSecret)},
		"wrong key":      {"token": signToken(t, validClaims("eve"), []byte("another-secret-another-secret-another"))},
		"wrong audience": {"token": signToken(t, wrongAud, testSecret)},
		"alg none":       {"token": noneToken()},
	}
	st := memory.New()
	h := streamer.NewConnectHandler(st, streamer.WithVerifier(testVerifier(t)))
	for name, q := range cases {
		err := h.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "x", Query: q})
		if !errors.Is(err, streamer.ErrUnauthorized) {
			t.Errorf("%s: err = %v, want ErrUnauthorized", name, err)
		}
		if tok := q["token"]; tok != "" && err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("%s: error text contains the token", name)
		}
	}
	if list, _ := st.ListByUser(t.Context(), "eve"); len(list) != 0 {
		t.Fatalf("stored %d connections", len(list))
	}
	if _, err := st.Get(t.Context(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused connection was stored: %v", err)
	}
}

func TestConnectWithoutVerifierIsAnonymousPerConnection(t *testing.T) {
	st := memory.New()
	h := streamer.NewConnectHandler(st)
	for _, id := range []string{"a", "b"} {
		if err := h.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: id, Query: map[string]string{"user": "spoofed"}}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := st.Get(t.Context(), "a")
	b, _ := st.Get(t.Context(), "b")
	if a.UserID == b.UserID || a.UserID == "spoofed" || a.UserID == "" {
		t.Fatalf("anonymous identities %q and %q", a.UserID, b.UserID)
	}
	h = streamer.NewConnectHandler(st, streamer.WithAnonymousIdentity(func(streamer.ConnectRequest) streamer.Identity {
		return streamer.Identity{UserID: "dev"}
	}))
	if err := h.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "c"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Get(t.Context(), "c"); c.UserID != "dev" {
		t.Fatalf("custom anonymous identity: %+v", c)
	}
}

type failingConns struct{ store.ConnectionStore }

func (failingConns) Save(context.Context, *store.Connection) error { return errors.New("disk on fire") }

func TestConnectStoreFailureIsNotUnauthorized(t *testing.T) {
	h := streamer.NewConnectHandler(failingConns{memory.New()})
	err := h.Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "c"})
	if err == nil || errors.Is(err, streamer.ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
}
