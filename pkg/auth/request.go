package auth

import (
	"errors"
	"net/url"
	"strings"
)

// TokenQueryParam is the query parameter a browser client puts its token in
// (browsers cannot set headers on a WebSocket).
const TokenQueryParam = "token"

// Redacted replaces secret values in redacted URLs, queries and headers.
const Redacted = "REDACTED"

// secretParams are query parameters whose values never reach a log line.
var secretParams = []string{TokenQueryParam, "access_token", "id_token", "jwt"}

// secretHeaders are headers whose values never reach a log line.
var secretHeaders = []string{"Authorization", "Cookie", "Sec-WebSocket-Protocol", "X-Amz-Security-Token"}

// TokenFromRequest returns the bearer token of a $connect request, given its
// headers and query parameters as API Gateway passes them
// (events.APIGatewayWebsocketProxyRequest.Headers and
// .QueryStringParameters). An "Authorization: Bearer <token>" header (name
// and scheme case-insensitive) wins over the "token" query parameter; an
// Authorization header with another scheme is ignored. It returns ErrNoToken
// when neither holds a token, and an error wrapping ErrInvalidToken when
// several Authorization headers carry different tokens.
func TokenFromRequest(headers map[string]string, query map[string]string) (string, error) {
	var found string
	for name, value := range headers {
		if !strings.EqualFold(name, "Authorization") {
			continue
		}
		scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		token = strings.TrimSpace(token)
		if token == "" {
			continue
		}
		// A map may hold "Authorization" and "authorization"; picking one
		// would depend on map order, so differing tokens are refused.
		if found != "" && found != token {
			return "", invalid(ErrMalformedToken, errors.New("several different Authorization headers"))
		}
		found = token
	}
	if found != "" {
		return found, nil
	}
	if token := strings.TrimSpace(query[TokenQueryParam]); token != "" {
		return token, nil
	}
	return "", ErrNoToken
}

// RedactURL returns rawURL with the values of token-bearing query parameters
// (token, access_token, id_token, jwt) and any userinfo password replaced, for
// logging. A URL that cannot be parsed is replaced entirely, since it might
// hold a token in a form this function does not recognise.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "[unparseable URL " + Redacted + "]"
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Redacted
		} else {
			for name, values := range q {
				if isSecretParam(name) {
					for i := range values {
						values[i] = Redacted
					}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// RedactQuery returns a copy of query with the values of token-bearing
// parameters replaced, for logging.
func RedactQuery(query map[string]string) map[string]string {
	return redactMap(query, isSecretParam)
}

// RedactHeaders returns a copy of headers with the values of
// credential-bearing headers (Authorization, Cookie, Sec-WebSocket-Protocol,
// X-Amz-Security-Token; names case-insensitive) replaced, for logging.
func RedactHeaders(headers map[string]string) map[string]string {
	return redactMap(headers, func(name string) bool {
		for _, h := range secretHeaders {
			if strings.EqualFold(name, h) {
				return true
			}
		}
		return false
	})
}

func redactMap(m map[string]string, secret func(string) bool) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if secret(k) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

func isSecretParam(name string) bool {
	for _, p := range secretParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}
