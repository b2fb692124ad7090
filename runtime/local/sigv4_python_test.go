package local_test

import (
	"os/exec"
	"strings"
	"testing"

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
