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

// LocalSecretAccessKey is the secret access key the gateway checks
// signatures against when Config.VerifySignatures is on and
// Config.SigningSecret is empty. A local verifier cannot know the secret
// of an access key it has never issued, so the rule is: any access key ID
// is accepted, and the signature must be made with this one secret. The
// functions of `streamer dev --template` get it as AWS_SECRET_ACCESS_KEY,
// so whatever SDK they bundle signs requests the gateway accepts.
const LocalSecretAccessKey = "local"

// DefaultRegion is the region a signature's credential scope must name
// when Config.Region is empty.
const DefaultRegion = "us-east-1"

// signatureService is the service every management API signature names.
const signatureService = "execute-api"

// maxClockSkew is how far X-Amz-Date may be from now. API Gateway answers
// "Signature expired: ... (... - 5 min.)" past it.
const maxClockSkew = 5 * time.Minute

// errSignature is the sentinel every signature refusal wraps.
var errSignature = errors.New("local: signature refused")

// signatureError is a refused signature with the error type and message
// API Gateway answers it with (always 403).
type signatureError struct {
	Type    string // X-Amzn-Errortype: MissingAuthenticationTokenException, ...
	Message string
}

func (e *signatureError) Error() string { return "local: " + e.Type + ": " + e.Message }
func (e *signatureError) Unwrap() error { return errSignature }

func refuse(typ, format string, args ...any) *signatureError {
	return &signatureError{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// signatureCheck is how the management API checks SigV4: against one
// secret for any access key (VerifySignatures) or against one pair of
// credentials (VerifyCredentials).
type signatureCheck struct {
	secret string                  // any access key, this secret
	creds  aws.CredentialsProvider // or: exactly these credentials
	region string                  // the scope's region; "" accepts any
	// signer recomputes signatures. With one secret for every access key
	// it is shared, so its cache of derived signing keys (one per day,
	// region and service, as the SDKs keep) spares the four HMACs of a
	// key per call; credentials that may rotate get a signer per call.
	signer *v4.Signer
}

// signatureChecks returns the checks cfg asks for: nil when signatures
// are not checked.
func signatureChecks(cfg Config) *signatureCheck {
	switch {
	case cfg.VerifyCredentials != nil:
		return &signatureCheck{creds: cfg.VerifyCredentials, region: cfg.Region}
	case cfg.VerifySignatures:
		region := cfg.Region
		if region == "" {
			region = DefaultRegion
		}
		secret := cfg.SigningSecret
		if secret == "" {
			secret = LocalSecretAccessKey
		}
		return &signatureCheck{secret: secret, region: region, signer: v4.NewSigner()}
	}
	return nil
}

// verify checks r's AWS Signature Version 4 as API Gateway does, in its
// order: present, well formed, scoped to execute-api and the region, not
// stale, then the signature itself, computed again with the SDK's own
// signer (so no signing code is hand written here) over exactly the
// headers the client signed and the body it sent.
func (sc *signatureCheck) verify(ctx context.Context, r *http.Request, body []byte, now time.Time) error {
	auth := r.Header.Get("Authorization")
	if auth == "" || strings.HasPrefix(strings.ToLower(auth), "bearer ") {
		return refuse("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return refuse("IncompleteSignatureException", "Unsupported Authorization Type")
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
		return refuse("IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=%s", algo+"...")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signingTime, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return refuse("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if scope[3] != signatureService {
		return refuse("InvalidSignatureException", "Credential should be scoped to correct service: '%s'. ", signatureService)
	}
	if sc.region != "" && scope[2] != sc.region {
		return refuse("InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'. ", scope[2])
	}
	const stamp = "20060102T150405Z"
	if d := now.Sub(signingTime); d > maxClockSkew {
		return refuse("InvalidSignatureException", "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-maxClockSkew).UTC().Format(stamp), now.UTC().Format(stamp))
	} else if d < -maxClockSkew {
		return refuse("InvalidSignatureException", "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, now.Add(maxClockSkew).UTC().Format(stamp), now.UTC().Format(stamp))
	}
	creds := aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: sc.secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if sc.creds != nil {
		if creds, err = sc.creds.Retrieve(ctx); err != nil {
			return fmt.Errorf("local: retrieve credentials: %w", err)
		}
		if scope[0] != creds.AccessKeyID {
			return refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
		}
	}

	// Rebuild the request with exactly the headers the client signed.
	u, err := url.ParseRequestURI(r.URL.RequestURI())
	if err != nil {
		return refuse("InvalidSignatureException", "%v", err)
	}
	u.Scheme, u.Host = "http", r.Host
	again, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return refuse("InvalidSignatureException", "%v", err)
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
	signer := sc.signer
	if signer == nil {
		signer = v4.NewSigner()
	}
	if err := signer.SignHTTP(ctx, creds, again, hex.EncodeToString(sum[:]), scope[3], scope[2], signingTime); err != nil {
		return fmt.Errorf("local: sign: %w", err)
	}
	want := again.Header.Get("Authorization")
	i := strings.LastIndex(want, "Signature=")
	if i < 0 || !hmac.Equal([]byte(want[i+len("Signature="):]), []byte(signature)) {
		return refuse("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

// writeSignatureError answers a refused signature. VerifyCredentials (the
// strict check) answers every refusal as 403 ForbiddenException;
// VerifySignatures answers with API Gateway's own error types.
func (g *Gateway) writeSignatureError(w http.ResponseWriter, err error) {
	var se *signatureError
	if !errors.As(err, &se) {
		writeAPIError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
		return
	}
	if g.cfg.VerifyCredentials != nil {
		msg := se.Message
		if se.Type == "MissingAuthenticationTokenException" {
			msg = "Missing Authentication Token"
		}
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", msg)
		return
	}
	writeAPIError(w, http.StatusForbidden, se.Type, se.Message)
}
