package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

func init() {
	register(command{name: "token", summary: "mint a signed dev token that `streamer dev` accepts", run: runToken})
}

// tokenOptions is `streamer token`'s command line.
type tokenOptions struct {
	sub         string
	tenant      string
	permissions []string
	ttl         time.Duration
	issuer      string
	audience    string
	// Exactly one of the two key sources.
	hmacSecretFile string // HS256; created when missing
	privateKeyFile string // EdDSA/ES256/RS256 by key type; an Ed25519 pair is created when missing
	tenantClaim    string
	permsClaim     string
}

func parseTokenFlags(args []string, stderr io.Writer) (tokenOptions, error) {
	var o tokenOptions
	fs := flag.NewFlagSet("streamer token", flag.ContinueOnError)
	fs.StringVar(&o.sub, "sub", "dev-user", "subject (sub): the user ID")
	fs.StringVar(&o.tenant, "tenant", "default", "tenant ID (empty leaves the claim out)")
	perms := fs.String("permissions", "", "comma-separated permissions")
	fs.DurationVar(&o.ttl, "ttl", time.Hour, "lifetime: exp = now + ttl")
	fs.StringVar(&o.issuer, "issuer", "", "iss claim, when set (match streamer dev --jwt-issuer)")
	fs.StringVar(&o.audience, "audience", "", "aud claim, when set (match streamer dev --jwt-audience)")
	fs.StringVar(&o.hmacSecretFile, "hmac-secret-file", "", "sign HS256 with this secret file, the one given to streamer dev --jwt-hmac-secret-file; created (32 random bytes, hex) when missing")
	fs.StringVar(&o.privateKeyFile, "private-key", "", "sign with this PEM private key (Ed25519: EdDSA, P-256: ES256, RSA: RS256); when missing, an Ed25519 pair is created: the key here, its public half in FILE.pub for streamer dev --jwt-public-key")
	fs.StringVar(&o.tenantClaim, "tenant-claim", "tenant_id", "claim carrying --tenant (match streamer dev --jwt-tenant-claim)")
	fs.StringVar(&o.permsClaim, "permissions-claim", "permissions", "claim carrying --permissions (match streamer dev --jwt-permissions-claim)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
	}
	for _, p := range strings.Split(*perms, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.permissions = append(o.permissions, p)
		}
	}
	switch {
	case (o.hmacSecretFile == "") == (o.privateKeyFile == ""):
		return o, usageError{errors.New("give one key: --hmac-secret-file or --private-key")}
	case o.sub == "":
		return o, usageError{errors.New("--sub must not be empty")}
	case o.ttl <= 0:
		return o, usageError{errors.New("--ttl must be positive")}
	case o.tenantClaim == "" || o.permsClaim == "":
		return o, usageError{errors.New("--tenant-claim and --permissions-claim must not be empty")}
	}
	return o, nil
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseTokenFlags(args, stderr)
	if err != nil {
		return err
	}
	tok, err := mintToken(o, time.Now(), stderr)
	if err != nil {
		return err
	}
	// Only the token on stdout, so $(streamer token ...) is the token.
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// mintToken signs o's claims; notes about created key files go to notes.
func mintToken(o tokenOptions, now time.Time, notes io.Writer) (string, error) {
	claims := jwt.MapClaims{
		"sub": o.sub,
		"iat": now.Unix(),
		"exp": now.Add(o.ttl).Unix(),
	}
	if o.tenant != "" {
		claims[o.tenantClaim] = o.tenant
	}
	if len(o.permissions) > 0 {
		claims[o.permsClaim] = o.permissions
	}
	if o.issuer != "" {
		claims["iss"] = o.issuer
	}
	if o.audience != "" {
		claims["aud"] = o.audience
	}
	if o.hmacSecretFile != "" {
		secret, err := loadOrCreateSecret(o.hmacSecretFile, notes)
		if err != nil {
			return "", err
		}
		return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	}
	key, err := loadOrCreatePrivateKey(o.privateKeyFile, notes)
	if err != nil {
		return "", err
	}
	var method jwt.SigningMethod
	switch k := key.(type) {
	case ed25519.PrivateKey:
		method = jwt.SigningMethodEdDSA
	case *ecdsa.PrivateKey:
		if k.Curve.Params().BitSize != 256 {
			return "", fmt.Errorf("--private-key: ECDSA keys must be P-256 (ES256), not %s", k.Curve.Params().Name)
		}
		method = jwt.SigningMethodES256
	case *rsa.PrivateKey:
		if k.N.BitLen() < auth.MinRSABits {
			return "", fmt.Errorf("--private-key: RSA key of %d bits is below streamer dev's minimum of %d", k.N.BitLen(), auth.MinRSABits)
		}
		method = jwt.SigningMethodRS256
	default:
		return "", fmt.Errorf("--private-key: unsupported key type %T", key)
	}
	return jwt.NewWithClaims(method, claims).SignedString(key)
}

// loadOrCreateSecret reads the secret file the way streamer dev does
// (trailing newline dropped), creating a random one when it is missing.
func loadOrCreateSecret(path string, notes io.Writer) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		data = []byte(hex.EncodeToString(raw) + "\n")
		if err := writeNew(path, data); err != nil {
			return nil, fmt.Errorf("--hmac-secret-file: %w", err)
		}
		fmt.Fprintf(notes, "streamer token: created %s; run: streamer dev --jwt-algorithms HS256 --jwt-hmac-secret-file %s\n", path, path)
	} else if err != nil {
		return nil, fmt.Errorf("--hmac-secret-file: %w", err)
	}
	secret := bytes.TrimRight(data, "\r\n")
	if len(secret) < auth.MinHMACSecretLen {
		return nil, fmt.Errorf("--hmac-secret-file: secret of %d bytes is below the minimum of %d", len(secret), auth.MinHMACSecretLen)
	}
	return secret, nil
}

// loadOrCreatePrivateKey reads a PEM private key, creating an Ed25519
// pair (PATH and PATH.pub) when PATH is missing.
func loadOrCreatePrivateKey(path string, notes io.Writer) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		privDER, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		pubDER, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})); err != nil {
			return nil, fmt.Errorf("--private-key: %w", err)
		}
		if err := os.WriteFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
			return nil, fmt.Errorf("--private-key: %w", err)
		}
		fmt.Fprintf(notes, "streamer token: created %s and %s.pub; run: streamer dev --jwt-algorithms EdDSA --jwt-public-key %s.pub\n", path, path, path)
		return priv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--private-key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("--private-key: %s holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("--private-key: %s holds a %q block, want a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("--private-key: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("--private-key: unsupported key type %T", key)
	}
	return signer, nil
}

// writeNew creates path with mode 0600, never overwriting a file.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
