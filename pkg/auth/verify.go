package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen bounds the token text Verify will parse, so a hostile client
// cannot make the server decode megabytes of base64 on $connect.
const MaxTokenLen = 8 << 10

// Config configures a Verifier. The zero value is not usable: Algorithms and
// at least one key for each algorithm are required.
type Config struct {
	// Algorithms lists the accepted signing algorithms: HS256, HS384, HS512,
	// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA.
	// Required; "none" is always refused.
	Algorithms []string
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be one of the token's "aud" values (or of
	// AudienceClaim's).
	Audience string
	// AudienceClaim names the claim Audience is checked against (default
	// "aud"). Cognito access tokens carry no aud: their app client ID is in
	// "client_id"; see CognitoConfig.
	AudienceClaim string
	// RequiredClaims are claims every token must carry with exactly these
	// string values, such as Cognito's {"token_use": "access"}.
	RequiredClaims map[string]string
	// UserClaim names the claim holding the user ID (default "sub"). It must
	// be a non-empty string in every token.
	UserClaim string
	// TenantClaim names the claim holding the tenant ID (default
	// "tenant_id"). Optional in the token; when present it must be a string.
	TenantClaim string
	// PermissionsClaim names the claim holding permissions (default
	// "permissions"): an array of strings, or one space-separated string like
	// OAuth's "scope". Optional in the token.
	PermissionsClaim string
	// Leeway tolerates clock skew when checking exp, nbf and iat (default 0).
	Leeway time.Duration
	// Keys are the keys tokens may be signed with.
	Keys Keys
}

// Identity is who a verified token speaks for.
type Identity struct {
	UserID      string
	TenantID    string
	Permissions []string
	// Subject is the "sub" claim (equal to UserID with the default UserClaim).
	Subject   string
	ExpiresAt time.Time
	// Claims are all claims of the token, as decoded from JSON.
	Claims map[string]any
}

// HasPermission reports whether the identity holds permission p.
func (id *Identity) HasPermission(p string) bool {
	return slices.Contains(id.Permissions, p)
}

// Verifier checks tokens against a Config. It is safe for concurrent use.
type Verifier struct {
	userClaim, tenantClaim, permsClaim string
	parser                             *jwt.Parser
	keys                               Keys
	// audience and audClaim are checked by checkClaims when audClaim is
	// not "aud" (jwt checks aud itself).
	audience, audClaim string
	required           map[string]string
}

// keyKind is the key type an algorithm family verifies with.
type keyKind int

const (
	kindHMAC keyKind = iota + 1
	kindRSA
	kindECDSA
	kindEd25519
)

// algorithms maps each supported alg to its key kind and, for ECDSA, curve.
var algorithms = map[string]struct {
	kind  keyKind
	curve elliptic.Curve
}{
	"HS256": {kind: kindHMAC}, "HS384": {kind: kindHMAC}, "HS512": {kind: kindHMAC},
	"RS256": {kind: kindRSA}, "RS384": {kind: kindRSA}, "RS512": {kind: kindRSA},
	"PS256": {kind: kindRSA}, "PS384": {kind: kindRSA}, "PS512": {kind: kindRSA},
	"ES256": {kind: kindECDSA, curve: elliptic.P256()},
	"ES384": {kind: kindECDSA, curve: elliptic.P384()},
	"ES512": {kind: kindECDSA, curve: elliptic.P521()},
	"EdDSA": {kind: kindEd25519},
}

// fits reports whether key may verify a token signed with alg. This is what
// makes algorithm/key-type confusion impossible: an HS256 token is only ever
// checked against HMAC secrets, never against the bytes of a public key.
func fits(alg string, key any) bool {
	a, ok := algorithms[alg]
	if !ok {
		return false
	}
	switch k := key.(type) {
	case []byte:
		return a.kind == kindHMAC
	case *rsa.PublicKey:
		return a.kind == kindRSA
	case *ecdsa.PublicKey:
		return a.kind == kindECDSA && k.Curve == a.curve
	case ed25519.PublicKey:
		return a.kind == kindEd25519
	default:
		return false
	}
}

// NewVerifier checks cfg and returns a Verifier. Every error wraps
// ErrInvalidConfig and is a *ConfigError.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Algorithms) == 0 {
		return nil, &ConfigError{Field: "Algorithms", Problem: "at least one algorithm is required"}
	}
	for _, alg := range cfg.Algorithms {
		if strings.EqualFold(alg, "none") {
			return nil, &ConfigError{Field: "Algorithms", Problem: `"none" is never accepted`}
		}
		if _, ok := algorithms[alg]; !ok {
			return nil, &ConfigError{Field: "Algorithms", Problem: fmt.Sprintf("unsupported algorithm %q", alg)}
		}
	}
	if cfg.Leeway < 0 {
		return nil, &ConfigError{Field: "Leeway", Problem: "must not be negative"}
	}
	for i, s := range cfg.Keys.HMACSecrets {
		if len(s) < MinHMACSecretLen {
			return nil, &ConfigError{Field: "Keys.HMACSecrets", Problem: fmt.Sprintf("secret %d is %d bytes, below the minimum of %d", i, len(s), MinHMACSecretLen)}
		}
	}
	keys := Keys{JWKS: cfg.Keys.JWKS}
	for _, s := range cfg.Keys.HMACSecrets {
		keys.HMACSecrets = append(keys.HMACSecrets, slices.Clone(s))
	}
	for i, k := range cfg.Keys.PublicKeys {
		pub, err := publicKey(k)
		if err != nil {
			return nil, &ConfigError{Field: "Keys.PublicKeys", Problem: fmt.Sprintf("key %d", i), Err: err}
		}
		keys.PublicKeys = append(keys.PublicKeys, pub)
	}
	v := &Verifier{
		userClaim:   orDefault(cfg.UserClaim, "sub"),
		tenantClaim: orDefault(cfg.TenantClaim, "tenant_id"),
		permsClaim:  orDefault(cfg.PermissionsClaim, "permissions"),
		keys:        keys,
	}
	for _, alg := range cfg.Algorithms {
		if len(v.candidates(alg, true)) == 0 {
			return nil, &ConfigError{Field: "Keys", Problem: fmt.Sprintf("no key usable with %s", alg)}
		}
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(slices.Clone(cfg.Algorithms)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.audClaim = orDefault(cfg.AudienceClaim, "aud")
	v.required = maps.Clone(cfg.RequiredClaims)
	switch {
	case cfg.Audience == "":
	case v.audClaim == "aud":
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	default:
		v.audience = cfg.Audience
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// candidates lists the static keys (and, with withJWKS, every JWKS key) that
// fit alg.
func (v *Verifier) candidates(alg string, withJWKS bool) []any {
	var out []any
	for _, s := range v.keys.HMACSecrets {
		if fits(alg, s) {
			out = append(out, s)
		}
	}
	for _, k := range v.keys.PublicKeys {
		if fits(alg, k) {
			out = append(out, k)
		}
	}
	if withJWKS && v.keys.JWKS != nil {
		for _, k := range v.keys.JWKS.all() {
			if fits(alg, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// Verify checks token's algorithm, signature and claims and returns the
// identity it carries. Every error wraps ErrInvalidToken and one reason
// (ErrTokenExpired, ErrSignatureInvalid, ...); none contains the token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auth: verify: %w", err)
	}
	if token == "" {
		return nil, invalid(ErrMalformedToken, errors.New("empty token"))
	}
	if len(token) > MaxTokenLen {
		return nil, invalid(ErrMalformedToken, fmt.Errorf("token of %d bytes exceeds %d", len(token), MaxTokenLen))
	}

	var keyErr error   // why no key was found, if the key lookup failed
	keyLookup := false // jwt only looks keys up once the algorithm is allowed
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		keyLookup = true
		key, err := v.lookup(ctx, t)
		keyErr = err
		return key, err
	})
	if err != nil {
		return nil, classify(err, keyLookup, keyErr)
	}
	if err := v.checkClaims(claims); err != nil {
		return nil, err
	}
	return v.identity(claims)
}

// lookup returns the key or keys that may verify t, whose algorithm jwt has
// already checked against Config.Algorithms.
func (v *Verifier) lookup(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	_, hasKID := t.Header[jwkset.HeaderKID]
	if hasKID && v.keys.JWKS != nil {
		// An unknown kid makes a fetched set ask its provider again (at
		// most at the configured rate), bypassing Cache-Control freshness.
		key, err := v.keys.JWKS.kf.KeyfuncCtx(withRevalidate(ctx))(t)
		switch {
		case err == nil:
			if !fits(alg, key) {
				return nil, fmt.Errorf("key of the token's kid does not fit %s", alg)
			}
			return key, nil
		case !errors.Is(err, jwkset.ErrKeyNotFound):
			return nil, err
		}
		// An unknown kid may still name a static key.
	}
	keys := v.candidates(alg, !hasKID)
	if len(keys) == 0 {
		if hasKID {
			return nil, errors.New("kid not found in JWKS")
		}
		return nil, fmt.Errorf("no key configured for %s", alg)
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// classify maps jwt's error to one reason.
func classify(err error, keyLookup bool, keyErr error) error {
	switch {
	case keyErr != nil:
		return invalid(ErrUnknownKey, keyErr)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid(ErrMalformedToken, err)
	case !keyLookup:
		// Parsed, but jwt refused the algorithm before asking for a key:
		// "none", an unknown alg or one not in Config.Algorithms.
		return invalid(ErrAlgorithmNotAllowed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid(ErrSignatureInvalid, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(ErrTokenExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid(ErrTokenNotYetValid, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid(ErrInvalidIssuer, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid(ErrInvalidAudience, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid(ErrMissingClaim, err)
	default:
		return invalid(ErrInvalidClaim, err)
	}
}

// identity maps verified claims to an Identity.
func (v *Verifier) identity(claims jwt.MapClaims) (*Identity, error) {
	user, present, ok := stringClaim(claims, v.userClaim)
	switch {
	case !ok:
		return nil, invalid(ErrInvalidClaim, fmt.Errorf("claim %q is not a string", v.userClaim))
	case !present || user == "":
		return nil, invalid(ErrMissingClaim, fmt.Errorf("claim %q is empty", v.userClaim))
	}
	tenant, _, ok := stringClaim(claims, v.tenantClaim)
	if !ok {
		return nil, invalid(ErrInvalidClaim, fmt.Errorf("claim %q is not a string", v.tenantClaim))
	}
	perms, err := permissions(claims[v.permsClaim])
	if err != nil {
		return nil, invalid(ErrInvalidClaim, fmt.Errorf("claim %q: %w", v.permsClaim, err))
	}
	sub, _, ok := stringClaim(claims, "sub")
	if !ok {
		return nil, invalid(ErrInvalidClaim, errors.New(`claim "sub" is not a string`))
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, invalid(ErrMissingClaim, errors.New(`claim "exp" is missing`))
	}
	return &Identity{
		UserID:      user,
		TenantID:    tenant,
		Permissions: perms,
		Subject:     sub,
		ExpiresAt:   exp.Time,
		Claims:      map[string]any(claims),
	}, nil
}

// stringClaim returns claim name; ok is false when it is present but not a
// string.
func stringClaim(claims jwt.MapClaims, name string) (value string, present, ok bool) {
	raw, present := claims[name]
	if !present || raw == nil {
		return "", false, true
	}
	s, ok := raw.(string)
	return s, true, ok
}

// permissions accepts an array of strings or a space-separated string.
func permissions(raw any) ([]string, error) {
	switch p := raw.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(p), nil
	case []any:
		out := make([]string, 0, len(p))
		for i, e := range p {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element %d is %T, not a string", i, e)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("is %T, want a string or an array of strings", raw)
	}
}
