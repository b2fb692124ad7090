package connection

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

// APIGatewayClient is the part of the API Gateway Management API the
// Manager uses. *apigatewaymanagementapi.Client satisfies it as is.
type APIGatewayClient interface {
	PostToConnection(ctx context.Context, params *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
	GetConnection(ctx context.Context, params *apigatewaymanagementapi.GetConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error)
	DeleteConnection(ctx context.Context, params *apigatewaymanagementapi.DeleteConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error)
}

var _ APIGatewayClient = (*apigatewaymanagementapi.Client)(nil)

// pooledHTTPClient marks the HTTP client NewAPIGatewayClient builds, so
// that the Manager knows it owns its idle connections and closes them at
// Shutdown. A client the caller built is left alone.
type pooledHTTPClient struct{ *http.Client }

// MaxIdleConnsPerHost is the size of the keep-alive pool of a client built
// by NewAPIGatewayClient. Go's default of 2 makes concurrent senders open
// a new TCP (and TLS) connection for most calls.
const MaxIdleConnsPerHost = 256

// NewAPIGatewayClient returns an API Gateway Management API client for
// endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}, or
// the local runtime's URL), with a keep-alive pool sized for concurrent
// senders and the SDK's own retries turned off: the Manager retries, and
// two layers of retries multiply. optFns adjust the options further.
func NewAPIGatewayClient(cfg aws.Config, endpoint string, optFns ...func(*apigatewaymanagementapi.Options)) *apigatewaymanagementapi.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = MaxIdleConnsPerHost
	transport.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	transport.IdleConnTimeout = 90 * time.Second
	fns := []func(*apigatewaymanagementapi.Options){func(o *apigatewaymanagementapi.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.HTTPClient = &pooledHTTPClient{&http.Client{Transport: transport}}
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 0
	}}
	return apigatewaymanagementapi.NewFromConfig(cfg, append(fns, optFns...)...)
}

// noSDKRetries is passed on every call the Manager makes, so that a client
// built with the SDK's defaults (3 attempts per call) does not multiply
// the Manager's own attempts.
func noSDKRetries(o *apigatewaymanagementapi.Options) {
	o.Retryer = aws.NopRetryer{}
	o.RetryMaxAttempts = 0
}

// endpointClients hands out the client for each management endpoint:
// the given one for the manager's endpoint, and for any other endpoint a
// client derived from the given client's options with BaseEndpoint
// changed, built once and cached.
type endpointClients struct {
	base     APIGatewayClient
	endpoint string // normalised manager endpoint
	fast     bool   // base is a FastClient, and so is every client derived from it

	mu      sync.Mutex
	derived map[string]APIGatewayClient
}

func normaliseEndpoint(e string) string { return strings.TrimRight(e, "/") }

func newEndpointClients(client APIGatewayClient, endpoint string) *endpointClients {
	ec := &endpointClients{base: client, endpoint: normaliseEndpoint(endpoint), derived: map[string]APIGatewayClient{}}
	_, ec.fast = client.(*FastClient)
	// A client built for another endpoint than the manager's: send the
	// manager's own traffic through a derived one too.
	if fc, ok := client.(*FastClient); ok && ec.endpoint != "" && fc.ep.raw != ec.endpoint {
		ec.base = fc.withEndpoint(ec.endpoint)
	}
	if sdk, ok := client.(*apigatewaymanagementapi.Client); ok && ec.endpoint != "" {
		if be := sdk.Options().BaseEndpoint; be == nil || normaliseEndpoint(*be) != ec.endpoint {
			ec.base = ec.derive(ec.endpoint)
		}
	}
	return ec
}

// canonical returns the key of endpoint among the manager's endpoints:
// "" for the manager's own (or an empty one), else the endpoint without a
// trailing slash.
func (ec *endpointClients) canonical(endpoint string) string {
	endpoint = normaliseEndpoint(endpoint)
	if endpoint == ec.endpoint {
		return ""
	}
	return endpoint
}

// forEndpoint returns the client for endpoint ("" = the manager's) and the
// per-call options to use with it.
func (ec *endpointClients) forEndpoint(endpoint string) (APIGatewayClient, []func(*apigatewaymanagementapi.Options)) {
	endpoint = normaliseEndpoint(endpoint)
	fast, isFast := ec.base.(*FastClient)
	if endpoint == "" || endpoint == ec.endpoint {
		if isFast {
			// It has no SDK retries to turn off: no per-call options,
			// which would cost an Options value per call.
			return ec.base, nil
		}
		return ec.base, callOptions
	}
	if isFast {
		ec.mu.Lock()
		defer ec.mu.Unlock()
		c, ok := ec.derived[endpoint]
		if !ok {
			c = fast.withEndpoint(endpoint)
			ec.derived[endpoint] = c
		}
		return c, nil
	}
	if _, ok := ec.base.(*apigatewaymanagementapi.Client); !ok {
		// Not an SDK client, so there are no options to derive from: ask
		// for the endpoint on each call instead.
		return ec.base, []func(*apigatewaymanagementapi.Options){noSDKRetries, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(endpoint)
		}}
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	c, ok := ec.derived[endpoint]
	if !ok {
		c = ec.derive(endpoint)
		ec.derived[endpoint] = c
	}
	return c, callOptions
}

var callOptions = []func(*apigatewaymanagementapi.Options){noSDKRetries}

// derive builds a client for endpoint from the base SDK client's options;
// they share the HTTP client and so its connection pool.
func (ec *endpointClients) derive(endpoint string) APIGatewayClient {
	sdk := ec.base.(*apigatewaymanagementapi.Client)
	return apigatewaymanagementapi.New(sdk.Options(), func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// closeIdle closes the idle keep-alive connections of the HTTP client, if
// NewAPIGatewayClient or NewFastClient built it.
func (ec *endpointClients) closeIdle() {
	if fc, ok := ec.base.(*FastClient); ok {
		// Derived clients share its pool.
		fc.CloseIdleConnections()
		return
	}
	sdk, ok := ec.base.(*apigatewaymanagementapi.Client)
	if !ok {
		return
	}
	if p, ok := sdk.Options().HTTPClient.(*pooledHTTPClient); ok {
		p.CloseIdleConnections()
	}
}
