// Package auth verifies the JSON Web Token a client presents when it opens a
// WebSocket ($connect) and turns it into the [Identity] that every later
// request of the connection runs as.
//
// Start with [Config] and [NewVerifier], then [Verifier.Verify]; use
// [TokenFromRequest] to find the token in the $connect request (an
// "Authorization: Bearer" header or a "token" query parameter, since browsers
// cannot set headers on a WebSocket) and [RedactURL], [RedactQuery] and
// [RedactHeaders] so that no log line ever carries it.
//
// Security choices: the accepted algorithms are listed explicitly and "none"
// is always refused; each algorithm only ever sees keys of its own type, so an
// HS256 token "signed" with an RSA public key cannot pass; "exp" is required;
// "iss" and "aud" are checked when configured. Signature checking is done by
// github.com/golang-jwt/jwt/v5 and JWKS parsing and kid selection by
// github.com/MicahParks/keyfunc/v3, never by hand.
//
// Keys from an identity provider (Cognito, Auth0, Okta, Entra ID) come from
// [FetchJWKS], which keeps the provider's JWKS current across key rotations
// and outages; [CognitoConfig] fills in Cognito's issuer, audience and
// token_use conventions.
//
// API Gateway lets a $connect route refuse a connection by answering non-2xx:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html
package auth
