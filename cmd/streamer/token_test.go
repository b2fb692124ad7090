package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParseTokenFlags(t *testing.T) {
	o, err := parseTokenFlags([]string{"--hmac-secret-file", "s", "--sub", "alice", "--tenant", "acme",
		"--permissions", "reports:read, echo,", "--ttl", "10m", "--issuer", "https://dev", "--audience", "app"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := tokenOptions{sub: "alice", tenant: "acme", permissions: []string{"reports:read", "echo"}, ttl: 10 * time.Minute,
		issuer: "https://dev", audience: "app", hmacSecretFile: "s", tenantClaim: "tenant_id", permsClaim: "permissions"}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("parsed %+v, want %+v", o, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give one key"},
		{[]string{"--hmac-secret-file", "s", "--private-key", "k"}, "give one key"},
		{[]string{"--hmac-secret-file", "s", "--ttl", "0s"}, "--ttl"},
		{[]string{"--hmac-secret-file", "s", "--sub", ""}, "--sub"},
		{[]string{"--hmac-secret-file", "s", "extra"}, "unexpected arguments"},
	} {
		_, err := parseTokenFlags(tc.args, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error about %s", tc.args, err, tc.want)
		}
	}
	if _, err := parseTokenFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// The token carries exactly the asked claims, and a created secret file is
// the one reused next time (never overwritten).
func TestMintTokenClaims(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	now := time.Unix(1_800_000_000, 0)
	o := tokenOptions{sub: "alice", tenant: "acme", permissions: []string{"a", "b"}, ttl: 90 * time.Second,
		audience: "app", hmacSecretFile: secret, tenantClaim: "org", permsClaim: "scope"}
	var notes bytes.Buffer
	tok, err := mintToken(o, now, &notes)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes.String(), "created "+secret) {
		t.Errorf("notes %q", notes.String())
	}
	first, _ := os.ReadFile(secret)
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: %v %v", fi.Mode(), err)
	}
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	want := jwt.MapClaims{"sub": "alice", "org": "acme", "scope": []any{"a", "b"}, "aud": "app",
		"iat": float64(now.Unix()), "exp": float64(now.Unix() + 90)}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("claims %v, want %v", c, want)
	}
	notes.Reset()
	if _, err := mintToken(o, now, &notes); err != nil || notes.Len() != 0 {
		t.Errorf("second mint: %v, notes %q", err, notes.String())
	}
	if again, _ := os.ReadFile(secret); !bytes.Equal(first, again) {
		t.Error("the secret file changed")
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	if _, err := mintToken(tokenOptions{sub: "a", ttl: time.Minute, hmacSecretFile: short}, now, io.Discard); err == nil || !strings.Contains(err.Error(), "below the minimum") {
		t.Errorf("short secret: %v", err)
	}
	pub := filepath.Join(dir, "pub.pem")
	os.WriteFile(pub, []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"), 0o600)
	if _, err := mintToken(tokenOptions{sub: "a", ttl: time.Minute, privateKeyFile: pub}, now, io.Discard); err == nil || !strings.Contains(err.Error(), "want a private key") {
		t.Errorf("public key as --private-key: %v", err)
	}
}

// `streamer token` → `streamer dev` with auth on: the tokens it prints
// (HS256 with a shared secret file, EdDSA with a generated key pair whose
// public half dev reads) connect, and whoami shows their claims.
func TestTokenDevRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "dev-secret")
	key := filepath.Join(dir, "dev-key.pem")
	mint := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, append([]string{"token"}, args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("streamer token %v: %v\n%s", args, err, stderr.String())
		}
		out := stdout.String()
		tok := strings.TrimSuffix(out, "\n")
		if strings.Count(out, "\n") != 1 || strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \t") {
			t.Fatalf("stdout is not just a token: %q", out)
		}
		return tok
	}
	hsTok := mint("--hmac-secret-file", secret, "--sub", "alice", "--tenant", "acme", "--permissions", "reports:read,echo", "--ttl", "10m")
	edTok := mint("--private-key", key, "--sub", "bob", "--tenant", "globex", "--permissions", "echo")
	if _, err := os.Stat(key + ".pub"); err != nil {
		t.Fatal(err)
	}

	p := startDevProcess(t, bin, "--jwt-algorithms", "HS256,EdDSA", "--jwt-hmac-secret-file", secret, "--jwt-public-key", key+".pub")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		tok, user, tenant string
		perms             []string
	}{
		{hsTok, "alice", "acme", []string{"reports:read", "echo"}},
		{edTok, "bob", "globex", []string{"echo"}},
	} {
		c := dialDev(ctx, t, p.wsURL+"?token="+url.QueryEscape(tc.tok), nil)
		who := c.whoami(ctx)
		if who.UserID != tc.user || who.TenantID != tc.tenant || !reflect.DeepEqual(who.Permissions, tc.perms) {
			t.Errorf("whoami %+v, want %s/%s %v", who, tc.user, tc.tenant, tc.perms)
		}
		c.c.CloseNow()
	}
	p.stop(t)
	if out := p.stderr.String(); strings.Contains(out, hsTok) || strings.Contains(out, edTok) {
		t.Error("a token appears in streamer dev's log")
	}
}
