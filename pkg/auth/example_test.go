package auth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/auth"
)

// A $connect handler finds the token, verifies it and keeps the identity
// with the connection; any failure answers 401 without detail.
func ExampleVerifier_Verify() {
	secret := []byte("an HMAC secret of at least 32 bytes!")
	v, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"HS256"},
		Issuer:     "https://issuer.example",
		Audience:   "streamer",
		Keys:       auth.Keys{HMACSecrets: [][]byte{secret}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// What an identity provider would issue.
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "user-42", "tenant_id": "acme", "permissions": []string{"report:run"},
		"iss": "https://issuer.example", "aud": "streamer",
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)

	headers := map[string]string{"Authorization": "Bearer " + token}
	raw, err := auth.TokenFromRequest(headers, nil)
	if err != nil {
		fmt.Println("401:", err)
		return
	}
	id, err := v.Verify(context.Background(), raw)
	if err != nil {
		fmt.Println("401")
		return
	}
	fmt.Println(id.UserID, id.TenantID, id.Permissions)
	// Output: user-42 acme [report:run]
}

// Verify's errors all wrap ErrInvalidToken (answer 401) and name the reason
// (for the log).
func ExampleVerifier_Verify_refused() {
	secret := []byte("an HMAC secret of at least 32 bytes!")
	v, _ := auth.NewVerifier(auth.Config{Algorithms: []string{"HS256"}, Keys: auth.Keys{HMACSecrets: [][]byte{secret}}})
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "user-42", "exp": time.Now().Add(-time.Hour).Unix(),
	}).SignedString(secret)

	_, err := v.Verify(context.Background(), expired)
	fmt.Println(errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrTokenExpired))
	// Output: true true
}

// Keys usually come from files: PEM public keys and/or a JWKS whose keys are
// chosen by the token's kid. (Not run: it needs the files.)
func ExampleNewVerifier_files() {
	pubs, err := auth.LoadPEMFile("/etc/streamer/jwt-public.pem")
	if err != nil {
		fmt.Println(err) // wraps auth.ErrInvalidConfig; names the file and the problem
		return
	}
	jwks, err := auth.LoadJWKSFile("/etc/streamer/jwks.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"RS256", "ES256"},
		Issuer:     "https://issuer.example/",
		Audience:   "streamer",
		Keys:       auth.Keys{PublicKeys: pubs, JWKS: jwks},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = v
}

// Log the request URL only after redacting the token.
func ExampleRedactURL() {
	fmt.Println(auth.RedactURL("wss://ws.example/prod?token=eyJhbGciOi.x.y&room=7"))
	// Output: wss://ws.example/prod?room=7&token=REDACTED
}

func ExampleTokenFromRequest() {
	token, err := auth.TokenFromRequest(nil, map[string]string{"token": "eyJhbGciOi.x.y"})
	fmt.Println(token, err)
	_, err = auth.TokenFromRequest(map[string]string{"Host": "ws.example"}, nil)
	fmt.Println(err)
	// Output:
	// eyJhbGciOi.x.y <nil>
	// auth: no token
}
