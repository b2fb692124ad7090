package local_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// emptySHA256 is the payload hash of an upgrade request, which has no body.
var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// presignedURL presigns a GET of the gateway's WebSocket URL as a browser
// client does (aws-sdk-go-v2's PresignHTTP; X-Amz-Expires when expires is
// not zero) and returns it as a ws:// URL.
func presignedURL(t *testing.T, gw *local.Gateway, creds aws.Credentials, service, region string, at time.Time, expires time.Duration) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, strings.Replace(gw.URL(), "ws://", "http://", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if expires != 0 {
		q := req.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
		req.URL.RawQuery = q.Encode()
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctxT(t), creds, req, emptySHA256, service, region, at)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(signed, "http://", "ws://", 1)
}

// signedHeaders signs a GET of the gateway's WebSocket URL in headers, as
// a server-side client that can set them does, and returns them.
func signedHeaders(t *testing.T, gw *local.Gateway, creds aws.Credentials, service, region string, at time.Time) http.Header {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, strings.Replace(gw.URL(), "ws://", "http://", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.NewSigner().SignHTTP(ctxT(t), creds, req, emptySHA256, service, region, at); err != nil {
		t.Fatal(err)
	}
	return req.Header
}

// TestConnectIAMAcceptsSignedUpgrades: with ConnectIAM, an upgrade signed
// with any access key and the local secret, presigned in the query (with
// a session token) or in headers, runs $connect with the signer's
// identity.
func TestConnectIAMAcceptsSignedUpgrades(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), ConnectIAM: true, AccountID: "111122223333", Region: "eu-west-1"})
	now := time.Now()

	creds := aws.Credentials{AccessKeyID: "ASIAPRESIGNED", SecretAccessKey: local.LocalSecretAccessKey, SessionToken: "session"}
	c, _, err := websocket.Dial(ctxT(t), presignedURL(t, gw, creds, "execute-api", "eu-west-1", now, time.Minute), nil)
	if err != nil {
		t.Fatalf("presigned URL: %v", err)
	}
	defer c.CloseNow()
	id := next(t, rec.connects).RequestContext.Identity
	if id.AccessKey != "ASIAPRESIGNED" || id.AccountID != "111122223333" || id.Caller != "ASIAPRESIGNED" || id.User != "ASIAPRESIGNED" ||
		id.UserArn != "arn:aws:iam::111122223333:user/ASIAPRESIGNED" || id.SourceIP != "127.0.0.1" {
		t.Errorf("identity of a presigned connect: %+v", id)
	}

	creds = aws.Credentials{AccessKeyID: "AKIAHEADER", SecretAccessKey: local.LocalSecretAccessKey}
	h, _, err := websocket.Dial(ctxT(t), gw.URL(), &websocket.DialOptions{HTTPHeader: signedHeaders(t, gw, creds, "execute-api", "eu-west-1", now)})
	if err != nil {
		t.Fatalf("signed headers: %v", err)
	}
	defer h.CloseNow()
	if id := next(t, rec.connects).RequestContext.Identity; id.AccessKey != "AKIAHEADER" || id.UserArn != "arn:aws:iam::111122223333:user/AKIAHEADER" {
		t.Errorf("identity of a header-signed connect: %+v", id)
	}
}

// TestConnectIAMRefusesWhatAWSRefuses: each kind of missing or wrong
// signature gets 403 with API Gateway's error type and message, and
// $connect never runs; without ConnectIAM an unsigned upgrade connects and
// its identity names no key.
func TestConnectIAMRefusesWhatAWSRefuses(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), ConnectIAM: true})
	now := time.Now()
	good := aws.Credentials{AccessKeyID: "AKIDANY", SecretAccessKey: local.LocalSecretAccessKey}
	bad := aws.Credentials{AccessKeyID: "AKIDANY", SecretAccessKey: "real-aws-secret"}
	for _, tc := range []struct {
		name, url string
		header    http.Header
		errType   string
		message   string
	}{
		{"no signature", gw.URL(), nil, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"bearer token", gw.URL(), http.Header{"Authorization": {"Bearer abc"}}, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"presigned, wrong secret", presignedURL(t, gw, bad, "execute-api", "us-east-1", now, time.Minute), nil, "InvalidSignatureException", "The request signature we calculated does not match"},
		{"presigned, wrong service", presignedURL(t, gw, good, "s3", "us-east-1", now, time.Minute), nil, "InvalidSignatureException", "Credential should be scoped to correct service: 'execute-api'"},
		{"presigned, wrong region", presignedURL(t, gw, good, "execute-api", "eu-west-1", now, time.Minute), nil, "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'"},
		{"presigned, expired", presignedURL(t, gw, good, "execute-api", "us-east-1", now.Add(-2*time.Minute), time.Minute), nil, "InvalidSignatureException", "Signature expired"},
		{"presigned without expiry, stale", presignedURL(t, gw, good, "execute-api", "us-east-1", now.Add(-6*time.Minute), 0), nil, "InvalidSignatureException", "Signature expired"},
		{"presigned, tampered query", presignedURL(t, gw, good, "execute-api", "us-east-1", now, time.Minute) + "&name=mallory", nil, "InvalidSignatureException", "The request signature we calculated does not match"},
		{"presigned, no algorithm", strings.Replace(presignedURL(t, gw, good, "execute-api", "us-east-1", now, time.Minute), "X-Amz-Algorithm=", "X-Amz-Nothing=", 1), nil, "IncompleteSignatureException", "Unsupported Authorization Type"},
		{"presigned, expiry past 7 days", strings.Replace(presignedURL(t, gw, good, "execute-api", "us-east-1", now, time.Minute), "X-Amz-Expires=60", "X-Amz-Expires=9223372037", 1), nil, "IncompleteSignatureException", "X-Amz-Expires must be a number of seconds from 0 to 604800"},
		{"header, wrong secret", gw.URL(), signedHeaders(t, gw, bad, "execute-api", "us-east-1", now), "InvalidSignatureException", "The request signature we calculated does not match"},
		{"header, stale", gw.URL(), signedHeaders(t, gw, good, "execute-api", "us-east-1", now.Add(-6*time.Minute)), "InvalidSignatureException", "Signature expired"},
		{"header, wrong service", gw.URL(), signedHeaders(t, gw, good, "execute", "us-east-1", now), "InvalidSignatureException", "Credential should be scoped to correct service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := websocket.Dial(ctxT(t), tc.url, &websocket.DialOptions{HTTPHeader: tc.header})
			if err == nil {
				c.CloseNow()
				t.Fatal("connected")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%v (%v), want 403", err, resp)
			}
			var doc struct {
				Message string `json:"message"`
			}
			b, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(b, &doc) != nil || !strings.HasPrefix(doc.Message, tc.message) || resp.Header.Get("X-Amzn-Errortype") != tc.errType {
				t.Errorf("answer %s %s, want %s %q", resp.Header.Get("X-Amzn-Errortype"), b, tc.errType, tc.message)
			}
		})
	}
	select {
	case ev := <-rec.connects:
		t.Errorf("$connect ran for a refused upgrade: %+v", ev.RequestContext.Identity)
	default:
	}

	open := newRecorder()
	plain := start(t, local.Config{Routes: open.routes()})
	c := dial(t, plain, nil)
	defer c.CloseNow()
	if id := next(t, open.connects).RequestContext.Identity; id.AccessKey != "" || id.UserArn != "" {
		t.Errorf("identity without ConnectIAM: %+v", id)
	}
}

// TestVerifySignaturesAcceptsPresignedManagementCalls: the management API
// takes a signature presigned in the query string as AWS services do; a
// presigned URL replayed with another body is refused.
func TestVerifySignaturesAcceptsPresignedManagementCalls(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), VerifySignatures: true})
	c, id := connect(t, gw, rec)
	post := func(signedBody, sentBody string) int {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, gw.ManagementEndpoint()+"/@connections/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(signedBody))
		signed, _, err := v4.NewSigner().PresignHTTP(ctxT(t), aws.Credentials{AccessKeyID: "AKIDANY", SecretAccessKey: local.LocalSecretAccessKey}, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Post(signed, "application/octet-stream", strings.NewReader(sentBody))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("presigned", "presigned"); got != http.StatusOK {
		t.Fatalf("presigned POST: %d", got)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "presigned" {
		t.Fatalf("read %q %v", b, err)
	}
	if got := post("presigned", "another body"); got != http.StatusForbidden {
		t.Errorf("presigned POST with another body: %d, want 403", got)
	}
}
