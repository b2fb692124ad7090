package stack_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
	"github.com/streamer-go/streamer/runtime/stack"
)

// presign makes wsURL a SigV4-presigned URL for execute-api in us-east-1,
// valid for a minute, with aws-sdk-go-v2's signer, as a browser client
// presigns its WebSocket URL.
func presign(t *testing.T, wsURL string, creds aws.Credentials) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, strings.Replace(wsURL, "ws://", "http://", 1)+"?X-Amz-Expires=60", nil)
	if err != nil {
		t.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hex.EncodeToString(empty[:]), "execute-api", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(signed, "http://", "ws://", 1)
}

// presignJS presigns wsURL with the AWS SDK for JavaScript v3's signer
// (testdata/iamapp/presign.cjs, with the corpus's node_modules).
func presignJS(ctx context.Context, t *testing.T, wsURL, accessKey, secret string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", "testdata/iamapp/presign.cjs", wsURL, accessKey, secret)
	cmd.Env = append(os.Environ(), "NODE_PATH=testdata/corpus/node_modules")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("presign.cjs: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// identityLine is what testdata/iamapp's $connect logs for a signer.
func identityLine(key string) string {
	return `identity {"accessKey":"` + key + `","accountId":"123456789012","caller":"` + key + `","user":"` + key +
		`","userArn":"arn:aws:iam::123456789012:user/` + key + `"}`
}

// TestSAMWebSocketAPIIAMConnect runs testdata/iamapp, SAM's WebSocketApi
// with Auth AuthType AWS_IAM, with a real Node.js function: an unsigned
// upgrade and ones signed with another secret (by the Go and the
// JavaScript SDK's signers) get API Gateway's 403 and $connect never runs;
// URLs presigned by both (any access key, the local secret, a session
// token) connect, and $connect sees the signer's identity. The start-up
// lines say IAM policies are not evaluated.
func TestSAMWebSocketAPIIAMConnect(t *testing.T) {
	short(t)
	needNode(t)
	obs := &recorder{}
	p := startCorpus(t, stack.Config{Template: "testdata/iamapp/template.yaml", StackName: "iamapp", Observer: obs})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := p.WebSocketURL()

	refused := func(what, u, errType string) {
		t.Helper()
		c, resp, err := websocket.Dial(ctx, u, nil)
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s: connected", what)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != errType {
			t.Fatalf("%s: %v (%v), want 403 %s", what, err, resp, errType)
		}
		if b, _ := io.ReadAll(resp.Body); !strings.HasPrefix(string(b), `{"message":`) {
			t.Errorf("%s: body %s", what, b)
		}
	}
	refused("unsigned", url, "MissingAuthenticationTokenException")
	const realSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	refused("another secret (Go)", presign(t, url, aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: realSecret}), "InvalidSignatureException")
	refused("another secret (JavaScript)", presignJS(ctx, t, url, "AKIAIOSFODNN7EXAMPLE", realSecret), "InvalidSignatureException")

	goClient := dial(ctx, t, presign(t, url, aws.Credentials{AccessKeyID: "ASIAGOCLIENT", SecretAccessKey: local.LocalSecretAccessKey, SessionToken: "token"}), nil)
	waitFor(t, "the identity of the Go client", func() bool { return strings.Contains(p.output.String(), identityLine("ASIAGOCLIENT")) })
	jsClient := dial(ctx, t, presignJS(ctx, t, url, "ASIAJSCLIENT", local.LocalSecretAccessKey), nil)
	waitFor(t, "the identity of the JavaScript client", func() bool { return strings.Contains(p.output.String(), identityLine("ASIAJSCLIENT")) })
	goClient.c.Close(websocket.StatusNormalClosure, "bye")
	jsClient.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "$disconnect", func() bool { return len(obs.routes()) == 4 })
	p.stop(t)

	if got, want := strings.Join(obs.routes(), " "), "$connect:200 $connect:200 $disconnect:200 $disconnect:200"; got != want {
		t.Errorf("routes answered %s, want %s", got, want)
	}
	const line = "not emulated: ApiConnectRoute: AuthorizationType AWS_IAM: the SigV4 signature of the upgrade is checked (any access key, the local secret); IAM policies are not evaluated"
	if n := strings.Count(p.notices.String(), line); n != 1 {
		t.Errorf("start-up lines say %q %d times:\n%s", line, n, p.notices.String())
	}
}
