package auth

import "strings"

// CognitoIssuer is the "iss" of tokens from an Amazon Cognito user pool:
// https://cognito-idp.{region}.amazonaws.com/{userPoolID}.
func CognitoIssuer(region, userPoolID string) string {
	return "https://cognito-idp." + region + ".amazonaws.com/" + userPoolID
}

// CognitoJWKSURL is where a user pool publishes its signing keys: the
// issuer followed by /.well-known/jwks.json. Pass it to FetchJWKS.
func CognitoJWKSURL(region, userPoolID string) string {
	return CognitoIssuer(region, userPoolID) + "/.well-known/jwks.json"
}

// Cognito token kinds, the values of the "token_use" claim.
const (
	CognitoAccessToken = "access"
	CognitoIDToken     = "id"
)

// CognitoConfig returns the Config for tokens of one app client of a
// Cognito user pool, following Cognito's conventions
// (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html):
// RS256; "iss" is the pool's CognitoIssuer; "token_use" must be tokenUse.
// An access token names the app client in "client_id" (it has no "aud") and
// carries OAuth scopes in "scope", which become the permissions; an ID
// token names the client in "aud" and its groups ("cognito:groups") become
// the permissions. Set Keys (FetchJWKS with CognitoJWKSURL) and, if the
// pool has a custom tenant attribute, TenantClaim ("custom:tenant_id").
func CognitoConfig(region, userPoolID, appClientID, tokenUse string) Config {
	c := Config{
		Algorithms:     []string{"RS256"},
		Issuer:         CognitoIssuer(region, userPoolID),
		Audience:       appClientID,
		UserClaim:      "sub",
		TenantClaim:    "custom:tenant_id",
		RequiredClaims: map[string]string{"token_use": tokenUse},
	}
	if strings.EqualFold(tokenUse, CognitoAccessToken) {
		c.AudienceClaim = "client_id"
		c.PermissionsClaim = "scope"
	} else {
		c.PermissionsClaim = "cognito:groups"
	}
	return c
}
