package local_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go"

	"github.com/streamer-go/streamer/runtime/local"
)

// signedPost signs a POST of signedBody with the SDK's signer (service,
// region, secret and time as given), sends sentBody, and returns the
// status, X-Amzn-Errortype and the body's message.
func signedPost(t *testing.T, gw *local.Gateway, id, service, region, secret string, at time.Time, signedBody, sentBody string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, gw.ManagementEndpoint()+"/@connections/"+url.PathEscape(id), strings.NewReader(signedBody))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(signedBody))
	creds := aws.Credentials{AccessKeyID: "AKIDANYTHING", SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(ctxT(t), creds, req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(strings.NewReader(sentBody))
	req.ContentLength = int64(len(sentBody))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &doc)
	return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), doc.Message
}

// TestVerifySignaturesRefusesWhatAWSRefuses: with VerifySignatures, what
// the Go SDK sends is accepted whatever the access key, and each kind of
// wrong signature is refused with 403 and API Gateway's error type.
func TestVerifySignaturesRefusesWhatAWSRefuses(t *testing.T) {
	var logs syncBuffer
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), VerifySignatures: true, Region: "eu-west-1", Logger: newTextLogger(&logs)})
	c, id := connect(t, gw, rec)

	// The Go SDK, any access key, the local secret: accepted.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := func(key, secret, region string) *apigatewaymanagementapi.Client {
		return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			BaseEndpoint: aws.String(gw.ManagementEndpoint()), Region: region,
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, "session"),
			Retryer:     aws.NopRetryer{}, HTTPClient: &http.Client{Transport: tr},
		})
	}
	for _, key := range []string{"AKIAIOSFODNN7EXAMPLE", "local", "whatever"} {
		if _, err := client(key, local.LocalSecretAccessKey, "eu-west-1").PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(key)}); err != nil {
			t.Fatalf("Go SDK with key %s: %v", key, err)
		}
		if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != key {
			t.Fatalf("read %q %v", b, err)
		}
	}
	if _, err := client("k", local.LocalSecretAccessKey, "eu-west-1").GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatalf("signed GET: %v", err)
	}

	// The SDK's own view of two refusals: the error code is AWS's.
	var apiErr smithy.APIError
	_, err := client("k", local.LocalSecretAccessKey, "xx-nowhere-1").PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" || !strings.Contains(apiErr.ErrorMessage(), "xx-nowhere-1") {
		t.Errorf("SDK in region xx-nowhere-1: %v", err)
	}
	_, err = client("k", "my-real-secret", "eu-west-1").PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("SDK with another secret: %v", err)
	}

	now := time.Now()
	sec := local.LocalSecretAccessKey
	for _, tc := range []struct {
		name                  string
		service, region, secr string
		at                    time.Time
		signedBody, sentBody  string
		wantType, wantMessage string
	}{
		{"right", "execute-api", "eu-west-1", sec, now, "ok", "ok", "", ""},
		{"wrong service", "s3", "eu-west-1", sec, now, "x", "x", "InvalidSignatureException", "Credential should be scoped to correct service: 'execute-api'"},
		{"wrong region", "execute-api", "xx-nowhere-1", sec, now, "x", "x", "InvalidSignatureException", "Credential should be scoped to a valid region, not 'xx-nowhere-1'"},
		{"stale", "execute-api", "eu-west-1", sec, now.Add(-6 * time.Minute), "x", "x", "InvalidSignatureException", "Signature expired"},
		{"from the future", "execute-api", "eu-west-1", sec, now.Add(6 * time.Minute), "x", "x", "InvalidSignatureException", "Signature not yet current"},
		{"body altered", "execute-api", "eu-west-1", sec, now, "pay 1", "pay 9", "InvalidSignatureException", "The request signature we calculated does not match"},
		{"wrong secret", "execute-api", "eu-west-1", "guess", now, "x", "x", "InvalidSignatureException", "The request signature we calculated does not match"},
		{"4 min old", "execute-api", "eu-west-1", sec, now.Add(-4 * time.Minute), "recent", "recent", "", ""},
	} {
		status, typ, msg := signedPost(t, gw, id, tc.service, tc.region, tc.secr, tc.at, tc.signedBody, tc.sentBody)
		if tc.wantType == "" {
			if status != http.StatusOK {
				t.Errorf("%s: %d %s %s, want 200", tc.name, status, typ, msg)
			}
			continue
		}
		if status != http.StatusForbidden || typ != tc.wantType || !strings.Contains(msg, tc.wantMessage) {
			t.Errorf("%s: %d %s %q, want 403 %s %q", tc.name, status, typ, msg, tc.wantType, tc.wantMessage)
		}
	}

	// Unsigned and malformed.
	if status, typ := rawPost(t, gw, id, "", nil, "unsigned"); status != 403 || typ != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s", status, typ)
	}
	if status, typ := rawPost(t, gw, id, "", http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=x"}, "X-Amz-Date": {"20260101T000000Z"}}, "x"); status != 403 || typ != "IncompleteSignatureException" {
		t.Errorf("malformed: %d %s", status, typ)
	}
	if status, typ := rawPost(t, gw, id, "", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "x"); status != 403 || typ != "IncompleteSignatureException" {
		t.Errorf("another scheme: %d %s", status, typ)
	}
	// Only the two good posts arrived, in order.
	for _, want := range []string{"ok", "recent"} {
		if _, b, err := c.Read(ctxT(t)); err != nil || !bytes.Equal(b, []byte(want)) {
			t.Fatalf("read %q %v, want %q", b, err, want)
		}
	}
	if n := logs.count("management request refused"); n != 11 {
		t.Errorf("%d refusal log lines for 11 refusals", n)
	}
}
