package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// Tokens from a Cognito user pool: keys fetched from the pool's JWKS URL
// and kept current, and Cognito's access-token conventions (client_id,
// token_use, scope).
func ExampleFetchJWKS() {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwk, _ := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: "RS256"}})
	doc, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	// The identity provider; in production auth.CognitoJWKSURL(region, pool).
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) }))
	defer idp.Close()

	ctx := context.Background()
	set, err := auth.FetchJWKS(ctx, idp.URL+"/.well-known/jwks.json", &auth.FetchOptions{HTTPClient: idp.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer set.Close()
	cfg := auth.CognitoConfig("eu-west-1", "eu-west-1_AbC123", "my-app-client", auth.CognitoAccessToken)
	cfg.Keys.JWKS = set
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub": "user-42", "iss": auth.CognitoIssuer("eu-west-1", "eu-west-1_AbC123"), "client_id": "my-app-client",
		"token_use": "access", "scope": "streamer/report", "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "k1"
	signed, _ := tok.SignedString(key)
	id, err := v.Verify(ctx, signed)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.UserID, id.Permissions)
	// Output: user-42 [streamer/report]
}
