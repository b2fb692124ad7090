package local

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// errSignature is why a management call was refused when signatures are
// checked.
var (
	errUnsigned     = errors.New("local: request is not signed")
	errBadSignature = errors.New("local: signature does not match")
)

// maxClockSkew is how far X-Amz-Date may be from now, as in AWS.
const maxClockSkew = 15 * time.Minute

// verifySigV4 checks r's AWS Signature Version 4 by signing the same
// request again with the SDK's own signer (so no signing code is hand
// written here) and comparing signatures.
func verifySigV4(ctx context.Context, provider aws.CredentialsProvider, r *http.Request, body []byte, now time.Time) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errUnsigned
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return fmt.Errorf("%w: unsupported algorithm", errBadSignature)
	}
	var credential, signedHeaders, signature string
	for _, part := range strings.Split(auth[len(algo):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			signature = v
		}
	}
	// Credential is AKID/yyyymmdd/region/service/aws4_request.
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || signedHeaders == "" || signature == "" {
		return fmt.Errorf("%w: malformed Authorization header", errBadSignature)
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("%w: bad X-Amz-Date", errBadSignature)
	}
	if d := now.Sub(signingTime); d > maxClockSkew || d < -maxClockSkew {
		return fmt.Errorf("%w: X-Amz-Date too far from now", errBadSignature)
	}
	creds, err := provider.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("local: retrieve credentials: %w", err)
	}
	if scope[0] != creds.AccessKeyID {
		return fmt.Errorf("%w: unknown access key", errBadSignature)
	}

	// Rebuild the request with exactly the headers the client signed.
	u, err := url.ParseRequestURI(r.URL.RequestURI())
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSignature, err)
	}
	u.Scheme, u.Host = "http", r.Host
	again, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSignature, err)
	}
	again.Host = r.Host
	for _, h := range strings.Split(signedHeaders, ";") {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			for _, v := range r.Header.Values(h) {
				again.Header.Add(h, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, again, hex.EncodeToString(sum[:]), scope[3], scope[2], signingTime); err != nil {
		return fmt.Errorf("local: sign: %w", err)
	}
	want := again.Header.Get("Authorization")
	i := strings.LastIndex(want, "Signature=")
	if i < 0 || !hmac.Equal([]byte(want[i+len("Signature="):]), []byte(signature)) {
		return errBadSignature
	}
	return nil
}

// forbiddenMessage is the message AWS sends for each refusal.
func forbiddenMessage(err error) string {
	if errors.Is(err, errUnsigned) {
		return "Missing Authentication Token"
	}
	return "The request signature we calculated does not match the signature you provided."
}
