package auth

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoToken means the request carried no bearer token.
var ErrNoToken = errors.New("auth: no token")

// ErrInvalidToken is wrapped by every error Verify returns, together with one
// of the reasons below, so callers can answer 401 on errors.Is(err,
// ErrInvalidToken) and still log the reason.
var ErrInvalidToken = errors.New("auth: invalid token")

// Reasons a token is refused; Verify's error wraps exactly one of them.
var (
	// ErrMalformedToken: not three base64url JSON segments, or too long.
	ErrMalformedToken = errors.New("auth: malformed token")
	// ErrAlgorithmNotAllowed: the token's alg is not in Config.Algorithms
	// (alg "none" always lands here).
	ErrAlgorithmNotAllowed = errors.New("auth: signing algorithm not allowed")
	// ErrUnknownKey: no configured key fits the token (its kid is unknown,
	// or no key of the algorithm's type is configured).
	ErrUnknownKey = errors.New("auth: no key for token")
	// ErrSignatureInvalid: the signature does not match any candidate key.
	ErrSignatureInvalid = errors.New("auth: signature invalid")
	// ErrTokenExpired: exp is in the past (beyond Config.Leeway).
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrTokenNotYetValid: nbf or iat is in the future (beyond Config.Leeway).
	ErrTokenNotYetValid = errors.New("auth: token not valid yet")
	// ErrInvalidIssuer: iss differs from Config.Issuer.
	ErrInvalidIssuer = errors.New("auth: wrong issuer")
	// ErrInvalidAudience: aud does not contain Config.Audience.
	ErrInvalidAudience = errors.New("auth: wrong audience")
	// ErrMissingClaim: a required claim is absent or empty: exp, the user
	// claim, and iss or aud when Config.Issuer or Config.Audience is set.
	ErrMissingClaim = errors.New("auth: required claim missing")
	// ErrInvalidClaim: a claim has the wrong type (e.g. a numeric user ID or a
	// permissions claim that is neither a string nor an array of strings).
	ErrInvalidClaim = errors.New("auth: claim has wrong type")
	// ErrClaimMismatch: a claim of Config.RequiredClaims has another value
	// (a Cognito ID token where an access token is required).
	ErrClaimMismatch = errors.New("auth: claim has wrong value")
)

// ErrInvalidConfig is wrapped by every error NewVerifier and the key loaders
// return for a bad configuration; the concrete error is a [*ConfigError].
var ErrInvalidConfig = errors.New("auth: invalid config")

// ConfigError describes a configuration mistake found by NewVerifier or a key
// loader.
type ConfigError struct {
	// Field names the Config field or the file at fault.
	Field string
	// Problem says what is wrong with it.
	Problem string
	// Err is the underlying error, if any.
	Err error
}

// Error names the field and the problem, and the underlying error if any.
func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "auth: invalid config: %s: %s", e.Field, e.Problem)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap lets errors.Is match ErrInvalidConfig and the underlying error.
func (e *ConfigError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidConfig}
	}
	return []error{ErrInvalidConfig, e.Err}
}

// verifyError is the error Verify returns: ErrInvalidToken, one reason and
// the library's own error (which never contains the token text).
type verifyError struct {
	reason error
	cause  error
}

func (e *verifyError) Error() string {
	msg := ErrInvalidToken.Error() + ": " + strings.TrimPrefix(e.reason.Error(), "auth: ")
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *verifyError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidToken, e.reason}
	}
	return []error{ErrInvalidToken, e.reason, e.cause}
}

func invalid(reason, cause error) error { return &verifyError{reason: reason, cause: cause} }
