package connection

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

func TestEndpointClientsDeriveOnceAndShareTheTransport(t *testing.T) {
	base := NewAPIGatewayClient(aws.Config{Region: "us-east-1"}, "https://abc.execute-api.us-east-1.amazonaws.com/prod")
	ec := newEndpointClients(base, "https://abc.execute-api.us-east-1.amazonaws.com/prod/")
	if c, _ := ec.forEndpoint(""); c != APIGatewayClient(base) {
		t.Error("the manager's endpoint does not use the given client")
	}
	if c, _ := ec.forEndpoint("https://abc.execute-api.us-east-1.amazonaws.com/prod"); c != APIGatewayClient(base) {
		t.Error("the manager's own endpoint, spelled out, got another client")
	}
	a, _ := ec.forEndpoint("https://ws.example.com/v2")
	b, _ := ec.forEndpoint("https://ws.example.com/v2/")
	if a != b {
		t.Error("derived client not cached")
	}
	derived := a.(*apigatewaymanagementapi.Client).Options()
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
	c, _ := ec.forEndpoint("")
	if got := aws.ToString(c.(*apigatewaymanagementapi.Client).Options().BaseEndpoint); got != "https://two.example.com/b" {
		t.Errorf("manager endpoint client goes to %q", got)
	}
}
