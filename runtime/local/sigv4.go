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
	"strconv"
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

// verify checks r's AWS Signature Version 4 as API Gateway does (see
// check).
func (sc *signatureCheck) verify(ctx context.Context, r *http.Request, body []byte, now time.Time) error {
	_, err := sc.check(ctx, r, body, now)
	return err
}

// sigV4 is a request's signature as its client sent it: in the
// Authorization header or, presigned, in the query string.
type sigV4 struct {
	credential, signedHeaders, signature, amzDate, token string
	presigned                                            bool
	expires                                              string // X-Amz-Expires of a presigned URL; "" without
}

// parseSignature reads r's signature: the Authorization header, else the
// X-Amz-* query parameters of a presigned URL (what a browser's WebSocket,
// which cannot set headers, sends).
func parseSignature(r *http.Request) (sigV4, error) {
	const algo = "AWS4-HMAC-SHA256"
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	if (auth == "" || strings.HasPrefix(strings.ToLower(auth), "bearer ")) && q.Has("X-Amz-Signature") {
		s := sigV4{
			credential: q.Get("X-Amz-Credential"), signedHeaders: q.Get("X-Amz-SignedHeaders"), signature: q.Get("X-Amz-Signature"),
			amzDate: q.Get("X-Amz-Date"), token: q.Get("X-Amz-Security-Token"), presigned: true, expires: q.Get("X-Amz-Expires"),
		}
		if q.Get("X-Amz-Algorithm") != algo {
			return s, refuse("IncompleteSignatureException", "Unsupported Authorization Type")
		}
		if s.credential == "" || s.signedHeaders == "" || s.signature == "" || s.amzDate == "" {
			return s, refuse("IncompleteSignatureException", "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders' and 'X-Amz-Signature'.")
		}
		return s, nil
	}
	if auth == "" || strings.HasPrefix(strings.ToLower(auth), "bearer ") {
		return sigV4{}, refuse("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	if !strings.HasPrefix(auth, algo+" ") {
		return sigV4{}, refuse("IncompleteSignatureException", "Unsupported Authorization Type")
	}
	s := sigV4{amzDate: r.Header.Get("X-Amz-Date"), token: r.Header.Get("X-Amz-Security-Token")}
	for _, part := range strings.Split(auth[len(algo)+1:], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			s.credential = v
		case "SignedHeaders":
			s.signedHeaders = v
		case "Signature":
			s.signature = v
		}
	}
	if s.signedHeaders == "" || s.signature == "" || len(strings.Split(s.credential, "/")) != 5 {
		return s, refuse("IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=%s", algo+" ...")
	}
	return s, nil
}

// maxPresignExpiry is the longest X-Amz-Expires SigV4 allows (7 days).
const maxPresignExpiry = 7 * 24 * time.Hour

// check verifies r's signature as API Gateway does, in its order: present,
// well formed, scoped to execute-api and the region, not stale (a
// presigned URL: not past its X-Amz-Expires), then the signature itself,
// computed again with the SDK's own signer (so no signing code is hand
// written here) over exactly the headers the client signed and the body
// it sent. It returns the access key ID of a signature it accepts.
func (sc *signatureCheck) check(ctx context.Context, r *http.Request, body []byte, now time.Time) (string, error) {
	sig, err := parseSignature(r)
	if err != nil {
		return "", err
	}
	// Credential is AKID/yyyymmdd/region/service/aws4_request.
	scope := strings.Split(sig.credential, "/")
	if len(scope) != 5 {
		return "", refuse("IncompleteSignatureException", "Credential %q is not AKID/date/region/service/aws4_request.", sig.credential)
	}
	const stamp = "20060102T150405Z"
	signingTime, err := time.Parse(stamp, sig.amzDate)
	if err != nil {
		return "", refuse("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if scope[3] != signatureService {
		return "", refuse("InvalidSignatureException", "Credential should be scoped to correct service: '%s'. ", signatureService)
	}
	if sc.region != "" && scope[2] != sc.region {
		return "", refuse("InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'. ", scope[2])
	}
	if sig.presigned && sig.expires != "" {
		secs, err := strconv.Atoi(sig.expires)
		if err != nil || secs < 0 || secs > int(maxPresignExpiry/time.Second) {
			return "", refuse("IncompleteSignatureException", "X-Amz-Expires must be a number of seconds from 0 to 604800, not %q.", sig.expires)
		}
		if end := signingTime.Add(time.Duration(secs) * time.Second); now.After(end) {
			return "", refuse("InvalidSignatureException", "Signature expired: %s is now earlier than %s (%s + %ds)",
				end.UTC().Format(stamp), now.UTC().Format(stamp), sig.amzDate, secs)
		}
		if signingTime.Sub(now) > maxClockSkew {
			return "", refuse("InvalidSignatureException", "Signature not yet current: %s is still later than %s (%s + 5 min.)",
				sig.amzDate, now.Add(maxClockSkew).UTC().Format(stamp), now.UTC().Format(stamp))
		}
	} else if d := now.Sub(signingTime); d > maxClockSkew {
		return "", refuse("InvalidSignatureException", "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			sig.amzDate, now.Add(-maxClockSkew).UTC().Format(stamp), now.UTC().Format(stamp))
	} else if d < -maxClockSkew {
		return "", refuse("InvalidSignatureException", "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			sig.amzDate, now.Add(maxClockSkew).UTC().Format(stamp), now.UTC().Format(stamp))
	}
	creds := aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: sc.secret, SessionToken: sig.token}
	if sc.creds != nil {
		if creds, err = sc.creds.Retrieve(ctx); err != nil {
			return "", fmt.Errorf("local: retrieve credentials: %w", err)
		}
		if scope[0] != creds.AccessKeyID {
			return "", refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
		}
	}

	// Rebuild the request with exactly the headers the client signed and,
	// presigned, its query without the signature.
	u, err := url.ParseRequestURI(r.URL.RequestURI())
	if err != nil {
		return "", refuse("InvalidSignatureException", "%v", err)
	}
	u.Scheme, u.Host = "http", r.Host
	if sig.presigned {
		q := u.Query()
		q.Del("X-Amz-Signature")
		u.RawQuery = q.Encode()
		// The query carries the session token the client signed.
		creds.SessionToken = ""
	}
	again, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return "", refuse("InvalidSignatureException", "%v", err)
	}
	again.Host = r.Host
	for _, h := range strings.Split(sig.signedHeaders, ";") {
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
	var want string
	if sig.presigned {
		signed, _, err := signer.PresignHTTP(ctx, creds, again, hex.EncodeToString(sum[:]), scope[3], scope[2], signingTime)
		if err != nil {
			return "", fmt.Errorf("local: presign: %w", err)
		}
		su, err := url.Parse(signed)
		if err != nil {
			return "", fmt.Errorf("local: presign: %w", err)
		}
		want = su.Query().Get("X-Amz-Signature")
	} else {
		if err := signer.SignHTTP(ctx, creds, again, hex.EncodeToString(sum[:]), scope[3], scope[2], signingTime); err != nil {
			return "", fmt.Errorf("local: sign: %w", err)
		}
		auth := again.Header.Get("Authorization")
		if i := strings.LastIndex(auth, "Signature="); i >= 0 {
			want = auth[i+len("Signature="):]
		}
	}
	if want == "" || !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return "", refuse("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return scope[0], nil
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
