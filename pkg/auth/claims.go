package auth

import (
	"fmt"
	"sort"

	"github.com/golang-jwt/jwt/v5"
)

// checkClaims enforces Config.RequiredClaims and an Audience checked
// against a claim other than "aud" (jwt checks "aud" itself).
func (v *Verifier) checkClaims(claims jwt.MapClaims) error {
	if v.audience != "" {
		raw, present := claims[v.audClaim]
		if !present {
			return invalid(ErrMissingClaim, fmt.Errorf("claim %q is missing", v.audClaim))
		}
		if !audienceHas(raw, v.audience) {
			return invalid(ErrInvalidAudience, fmt.Errorf("claim %q does not name the audience", v.audClaim))
		}
	}
	names := make([]string, 0, len(v.required))
	for name := range v.required {
		names = append(names, name)
	}
	sort.Strings(names) // the same token always fails on the same claim
	for _, name := range names {
		raw, present := claims[name]
		if !present {
			return invalid(ErrMissingClaim, fmt.Errorf("claim %q is missing", name))
		}
		s, ok := raw.(string)
		if !ok {
			return invalid(ErrInvalidClaim, fmt.Errorf("claim %q is not a string", name))
		}
		if s != v.required[name] {
			// The value is not secret, but it is the client's: quote it
			// bounded.
			return invalid(ErrClaimMismatch, fmt.Errorf("claim %q is %.40q, want %q", name, s, v.required[name]))
		}
	}
	return nil
}

// audienceHas accepts a string or an array of strings, like "aud".
func audienceHas(raw any, want string) bool {
	switch a := raw.(type) {
	case string:
		return a == want
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
