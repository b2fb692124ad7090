package connection

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

// sdkClient returns the SDK client behind an SDK transport.
func sdkClient(t *testing.T, tr transport) *apigatewaymanagementapi.Client {
	t.Helper()
	st, ok := tr.(*sdkTransport)
	if !ok {
		t.Fatalf("transport %T, want an SDK transport", tr)
	}
	return st.client.(*apigatewaymanagementapi.Client)
}

func TestEndpointClientsDeriveOnceAndShareTheTransport(t *testing.T) {
	base := NewAPIGatewayClient(aws.Config{Region: "us-east-1"}, "https://abc.execute-api.us-east-1.amazonaws.com/prod")
	ec := newEndpointClients(base, "https://abc.execute-api.us-east-1.amazonaws.com/prod/")
	if c := sdkClient(t, ec.forEndpoint("")); c != base {
		t.Error("the manager's endpoint does not use the given client")
	}
	if c := sdkClient(t, ec.forEndpoint("https://abc.execute-api.us-east-1.amazonaws.com/prod")); c != base {
		t.Error("the manager's own endpoint, spelled out, got another client")
	}
	a := ec.forEndpoint("https://ws.example.com/v2")
	b := ec.forEndpoint("https://ws.example.com/v2/")
	if a != b {
		t.Error("derived client not cached")
	}
	derived := sdkClient(t, a).Options()
	if aws.ToString(derived.BaseEndpoint) != "https://ws.example.com/v2" {
		t.Errorf("derived BaseEndpoint = %q", aws.ToString(derived.BaseEndpoint))
	}
	if derived.HTTPClient != base.Options().HTTPClient {
		t.Error("derived client does not share the pooled HTTP client")
	}
	if _, ok := derived.HTTPClient.(*pooledHTTPClient); !ok {
		t.Error("NewAPIGatewayClient did not install its pooled HTTP client")
	}
}

func TestManagerEndpointDiffersFromClients(t *testing.T) {
	base := NewAPIGatewayClient(aws.Config{Region: "us-east-1"}, "https://one.example.com/a")
	ec := newEndpointClients(base, "https://two.example.com/b")
	if got := aws.ToString(sdkClient(t, ec.forEndpoint("")).Options().BaseEndpoint); got != "https://two.example.com/b" {
		t.Errorf("manager endpoint client goes to %q", got)
	}
}

// Both clients bring a transport; a FastClient's derived transports
// share its pools, and it bounds its attempts itself.
func TestFastClientTransport(t *testing.T) {
	fc := NewFastClient(aws.Config{Region: "us-east-1"}, "https://one.example.com/a")
	ec := newEndpointClients(fc, "")
	own, ok := ec.forEndpoint("").(fastTransport)
	if !ok || own.c != fc || !own.bounded() {
		t.Fatalf("own transport %#v", ec.forEndpoint(""))
	}
	far := ec.forEndpoint("https://two.example.com/b").(fastTransport)
	if far.c.pools != fc.pools || far.c.ep.raw != "https://two.example.com/b" || far.c.ep.pool == nil {
		t.Errorf("derived transport %+v does not share the pools", far.c.ep)
	}
	if own.prepare([]byte("x")) != payloadHash([]byte("x")) {
		t.Error("the FastClient's transport does not hash the payload")
	}
}
