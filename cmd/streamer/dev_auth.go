package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/streamer-go/streamer/pkg/auth"
)

// jwtOptions are `streamer dev`'s --jwt-* flags. Auth is on when
// algorithms is non-empty.
type jwtOptions struct {
	algorithms       []string
	issuer           string
	audience         string
	publicKeyFile    string
	jwksFile         string
	jwksURL          string
	audienceClaim    string
	tokenUse         string
	hmacSecretFile   string
	userClaim        string
	tenantClaim      string
	permissionsClaim string
	leeway           time.Duration
}

// jwtFlags registers the --jwt-* flags on fs; finish turns what was parsed
// into o, refusing combinations that cannot work.
func jwtFlags(fs *flag.FlagSet, o *jwtOptions) (finish func() error) {
	algs := fs.String("jwt-algorithms", "", "comma-separated JWT signing algorithms to accept (RS256, ES256, EdDSA, HS256, ...); setting it turns auth on, and $connect then needs a token (Authorization: Bearer, or ?token=)")
	fs.StringVar(&o.issuer, "jwt-issuer", "", "required token issuer (iss), when set")
	fs.StringVar(&o.audience, "jwt-audience", "", "required token audience (aud), when set")
	fs.StringVar(&o.publicKeyFile, "jwt-public-key", "", "PEM file of public keys or certificates (RSA, ECDSA, Ed25519)")
	fs.StringVar(&o.jwksFile, "jwt-jwks", "", "JSON Web Key Set file of public keys")
	fs.StringVar(&o.jwksURL, "jwt-jwks-url", "", "HTTPS URL of an identity provider's JSON Web Key Set (its jwks_uri, e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID/.well-known/jwks.json); fetched at start, refreshed hourly and on an unknown kid")
	fs.StringVar(&o.audienceClaim, "jwt-audience-claim", "aud", "claim --jwt-audience is checked against (client_id for Cognito access tokens)")
	fs.StringVar(&o.tokenUse, "jwt-token-use", "", "required token_use claim (Cognito: access or id), when set")
	fs.StringVar(&o.hmacSecretFile, "jwt-hmac-secret-file", "", "file holding the HS256/384/512 shared secret (at least 32 bytes; a trailing newline is dropped)")
	fs.StringVar(&o.userClaim, "jwt-user-claim", "sub", "claim holding the user ID")
	fs.StringVar(&o.tenantClaim, "jwt-tenant-claim", "tenant_id", "claim holding the tenant ID")
	fs.StringVar(&o.permissionsClaim, "jwt-permissions-claim", "permissions", "claim holding the permissions (array, or space-separated string)")
	fs.DurationVar(&o.leeway, "jwt-leeway", 0, "clock skew tolerated on exp, nbf and iat")
	return func() error {
		for _, a := range strings.Split(*algs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				o.algorithms = append(o.algorithms, a)
			}
		}
		var set []string
		fs.Visit(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "jwt-") && f.Name != "jwt-algorithms" {
				set = append(set, "--"+f.Name)
			}
		})
		sort.Strings(set)
		if len(o.algorithms) == 0 {
			if len(set) > 0 {
				return fmt.Errorf("%s given without --jwt-algorithms, which turns auth on", strings.Join(set, ", "))
			}
			return nil
		}
		if o.publicKeyFile == "" && o.jwksFile == "" && o.jwksURL == "" && o.hmacSecretFile == "" {
			return errors.New("--jwt-algorithms needs a key: --jwt-public-key, --jwt-jwks, --jwt-jwks-url or --jwt-hmac-secret-file")
		}
		if o.leeway < 0 {
			return errors.New("--jwt-leeway must not be negative")
		}
		if o.userClaim == "" || o.tenantClaim == "" || o.permissionsClaim == "" || o.audienceClaim == "" {
			return errors.New("--jwt-user-claim, --jwt-tenant-claim, --jwt-permissions-claim and --jwt-audience-claim must not be empty")
		}
		return nil
	}
}

// enabled reports whether auth is on.
func (o jwtOptions) enabled() bool { return len(o.algorithms) > 0 }

// verifier loads the key files, fetches --jwt-jwks-url, and builds the
// token verifier; nil when auth is off. The fetched set, if any, is
// returned for its metrics; Close stops its refreshes (nil-safe). Every
// error is a configuration mistake of the command line or an unreachable
// identity provider.
func (o jwtOptions) verifier(ctx context.Context, logger *slog.Logger) (*auth.Verifier, *auth.JWKS, error) {
	if !o.enabled() {
		return nil, nil, nil
	}
	v, set, err := o.buildVerifier(ctx, logger)
	if err != nil {
		set.Close()
		return nil, nil, err
	}
	return v, set, nil
}

// buildVerifier is verifier's work; the fetched set, if any, is returned
// even on error so the caller stops it.
func (o jwtOptions) buildVerifier(ctx context.Context, logger *slog.Logger) (*auth.Verifier, *auth.JWKS, error) {
	var keys auth.Keys
	if o.publicKeyFile != "" {
		pub, err := auth.LoadPEMFile(o.publicKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--jwt-public-key: %w", err)
		}
		keys.PublicKeys = pub
	}
	if o.jwksFile != "" {
		set, err := auth.LoadJWKSFile(o.jwksFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--jwt-jwks: %w", err)
		}
		keys.JWKS = set
	}
	var fetched *auth.JWKS
	if o.jwksURL != "" {
		if keys.JWKS != nil {
			return nil, nil, errors.New("--jwt-jwks and --jwt-jwks-url: give one key set")
		}
		set, err := auth.FetchJWKS(ctx, o.jwksURL, &auth.FetchOptions{Logger: logger})
		if err != nil {
			return nil, nil, fmt.Errorf("--jwt-jwks-url: %w", err)
		}
		fetched, keys.JWKS = set, set
		logger.Info("streamer dev: JWKS fetched", "url", o.jwksURL, "keys", set.Len())
	}
	var required map[string]string
	if o.tokenUse != "" {
		required = map[string]string{"token_use": o.tokenUse}
	}
	if o.hmacSecretFile != "" {
		secret, err := os.ReadFile(o.hmacSecretFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--jwt-hmac-secret-file: %w", err)
		}
		// Editors and `echo` end files with a newline that is not part of
		// the secret.
		keys.HMACSecrets = [][]byte{bytes.TrimRight(secret, "\r\n")}
	}
	v, err := auth.NewVerifier(auth.Config{
		Algorithms:       o.algorithms,
		Issuer:           o.issuer,
		Audience:         o.audience,
		AudienceClaim:    o.audienceClaim,
		RequiredClaims:   required,
		UserClaim:        o.userClaim,
		TenantClaim:      o.tenantClaim,
		PermissionsClaim: o.permissionsClaim,
		Leeway:           o.leeway,
		Keys:             keys,
	})
	if err != nil {
		return nil, fetched, fmt.Errorf("jwt: %w", err)
	}
	return v, fetched, nil
}
