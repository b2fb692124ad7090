package local_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// pythonPost signs a POST with botocore's SigV4Auth (what boto3, which
// Lambda's Python runtimes bundle, signs with) and sends it; it prints the
// status and X-Amzn-Errortype.
const pythonPost = `
import sys, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, secret, region, body = sys.argv[1:5]
req = AWSRequest(method="POST", url=url, data=body.encode())
SigV4Auth(Credentials("AKIDPYTHON", secret, "token"), "execute-api", region).add_auth(req)
r = urllib.request.Request(url, data=body.encode(), method="POST", headers=dict(req.headers))
try:
    resp = urllib.request.urlopen(r)
    print(resp.status, "")
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("X-Amzn-Errortype"))
`

// TestVerifySignaturesAcceptsBotocore: a request signed by botocore with
// the local secret is accepted; one signed for another region is refused
// as AWS refuses it.
func TestVerifySignaturesAcceptsBotocore(t *testing.T) {
	if err := exec.Command("python3", "-c", "import botocore").Run(); err != nil {
		t.Skip("python3 with botocore is not installed")
	}
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), VerifySignatures: true})
	c, id := connect(t, gw, rec)
	post := func(secret, region, body string) string {
		out, err := exec.CommandContext(ctxT(t), "python3", "-c", pythonPost, gw.ManagementEndpoint()+"/@connections/"+id, secret, region, body).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := post(local.LocalSecretAccessKey, "us-east-1", "from python"); got != "200" {
		t.Errorf("botocore, local secret: %q", got)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "from python" {
		t.Fatalf("read %q %v", b, err)
	}
	if got := post(local.LocalSecretAccessKey, "eu-north-1", "x"); got != "403 InvalidSignatureException" {
		t.Errorf("botocore, another region: %q", got)
	}
	if got := post("not-the-secret", "us-east-1", "x"); got != "403 InvalidSignatureException" {
		t.Errorf("botocore, another secret: %q", got)
	}
}

// pythonPresign presigns a GET of the URL with botocore's SigV4QueryAuth
// (what a Python client uses to presign a WebSocket URL) and prints it.
const pythonPresign = `
import sys
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, secret = sys.argv[1:3]
req = AWSRequest(method="GET", url=url)
SigV4QueryAuth(Credentials("ASIAPYTHON", secret, "token"), "execute-api", "us-east-1", expires=60).add_auth(req)
print(req.url)
`

// TestConnectIAMAcceptsBotocorePresignedURL: with ConnectIAM, a WebSocket
// URL presigned by botocore with the local secret connects and $connect
// sees its access key; one presigned with another secret gets 403.
func TestConnectIAMAcceptsBotocorePresignedURL(t *testing.T) {
	if err := exec.Command("python3", "-c", "import botocore").Run(); err != nil {
		t.Skip("python3 with botocore is not installed")
	}
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), ConnectIAM: true})
	presign := func(secret string) string {
		out, err := exec.CommandContext(ctxT(t), "python3", "-c", pythonPresign, strings.Replace(gw.URL(), "ws://", "http://", 1), secret).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		return strings.Replace(strings.TrimSpace(string(out)), "http://", "ws://", 1)
	}
	c, _, err := websocket.Dial(ctxT(t), presign(local.LocalSecretAccessKey), nil)
	if err != nil {
		t.Fatalf("botocore presigned URL, local secret: %v", err)
	}
	defer c.CloseNow()
	if id := next(t, rec.connects).RequestContext.Identity; id.AccessKey != "ASIAPYTHON" {
		t.Errorf("identity %+v", id)
	}
	if c, resp, err := websocket.Dial(ctxT(t), presign("not-the-secret"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		if c != nil {
			c.CloseNow()
		}
		t.Errorf("botocore presigned URL, another secret: %v (%v), want 403", err, resp)
	}
}
