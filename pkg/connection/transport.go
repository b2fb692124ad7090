package connection

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/pkg/connection/internal/httppool"
)

// transport is how the Manager reaches the @connections API of one
// endpoint, whichever client it was given: a FastClient's transport posts
// through its own keep-alive pool, any other APIGatewayClient's through
// its PostToConnection with the SDK's retries off. Every Send, Broadcast
// and IsActive attempt goes through one.
type transport interface {
	// post makes one POST attempt of data to the connection. hash is
	// what prepare returned for data. A bounded transport enforces b (the
	// attempt's deadline and the manager's stop flag) itself, so ctx needs
	// no deadline of the attempt's own; any other ignores b, and ctx must
	// carry the attempt's timeout.
	post(ctx context.Context, id string, data []byte, hash string, b bounds) error
	// get makes one GET attempt (GetConnection), bounded by ctx.
	get(ctx context.Context, id string) error
	// bounded reports whether post enforces its bounds itself.
	bounded() bool
	// prepare returns what post needs computed once per message (the
	// SigV4 payload hash, for a transport that signs requests itself).
	prepare(data []byte) string
	// forEndpoint returns the transport of another endpoint, sharing this
	// one's connections and credentials.
	forEndpoint(endpoint string) transport
	// closeIdle closes the idle keep-alive connections the transport's
	// client owns.
	closeIdle()
}

var (
	_ transporter = (*FastClient)(nil)
	_ transport   = fastTransport{}
	_ transport   = (*sdkTransport)(nil)
)

// transporter is implemented by clients that bring a transport of their
// own (FastClient).
type transporter interface {
	transport() transport
}

// newTransport returns the transport of client for endpoint ("" = the
// client's own).
func newTransport(client APIGatewayClient, endpoint string) transport {
	var t transport
	if tr, ok := client.(transporter); ok {
		t = tr.transport()
	} else {
		t = &sdkTransport{client: client, opts: callOptions}
	}
	if endpoint != "" {
		return t.forEndpoint(endpoint)
	}
	return t
}

// fastTransport is a FastClient's: requests signed and written by the
// client itself, through its own pool when it has one.
type fastTransport struct{ c *FastClient }

func (c *FastClient) transport() transport { return fastTransport{c: c} }

func (t fastTransport) post(ctx context.Context, id string, data []byte, hash string, b bounds) error {
	return t.c.post(ctx, &t.c.ep, id, data, hash, b)
}

func (t fastTransport) get(ctx context.Context, id string) error {
	_, err := t.c.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
	return err
}

func (t fastTransport) bounded() bool { return t.c.ep.pool != nil }

func (t fastTransport) prepare(data []byte) string { return payloadHash(data) }

func (t fastTransport) forEndpoint(endpoint string) transport {
	if normaliseEndpoint(endpoint) == t.c.ep.raw {
		return t
	}
	return fastTransport{c: t.c.withEndpoint(endpoint)}
}

func (t fastTransport) closeIdle() { t.c.CloseIdleConnections() }

// sdkTransport is any other APIGatewayClient's: its calls, with opts
// (the SDK's retries off, and the endpoint when it could not be derived).
type sdkTransport struct {
	client APIGatewayClient
	opts   []func(*apigatewaymanagementapi.Options)
}

var callOptions = []func(*apigatewaymanagementapi.Options){noSDKRetries}

func (t *sdkTransport) post(ctx context.Context, id string, data []byte, _ string, _ bounds) error {
	_, err := t.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: data}, t.opts...)
	return err
}

func (t *sdkTransport) get(ctx context.Context, id string) error {
	_, err := t.client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id}, t.opts...)
	return err
}

func (t *sdkTransport) bounded() bool { return false }

func (t *sdkTransport) prepare([]byte) string { return "" }

// forEndpoint derives an SDK client for endpoint from the client's
// options (sharing its HTTP client and so its connection pool); a client
// that is not an SDK client is asked for the endpoint on each call.
func (t *sdkTransport) forEndpoint(endpoint string) transport {
	endpoint = normaliseEndpoint(endpoint)
	sdk, ok := t.client.(*apigatewaymanagementapi.Client)
	if !ok {
		return &sdkTransport{client: t.client, opts: []func(*apigatewaymanagementapi.Options){noSDKRetries, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(endpoint)
		}}}
	}
	if be := sdk.Options().BaseEndpoint; be != nil && normaliseEndpoint(*be) == endpoint {
		return t
	}
	return &sdkTransport{client: apigatewaymanagementapi.New(sdk.Options(), func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}), opts: callOptions}
}

// closeIdle closes the idle connections of the HTTP client
// NewAPIGatewayClient built; a client the caller built is left alone.
func (t *sdkTransport) closeIdle() {
	sdk, ok := t.client.(*apigatewaymanagementapi.Client)
	if !ok {
		return
	}
	if p, ok := sdk.Options().HTTPClient.(*pooledHTTPClient); ok {
		p.CloseIdleConnections()
	}
}

// endpointClients hands out the transport of each management endpoint:
// the manager's own, and for any other endpoint one derived from it,
// built once and cached.
type endpointClients struct {
	base     transport
	endpoint string // normalised manager endpoint

	mu      sync.Mutex
	derived map[string]transport
}

func normaliseEndpoint(e string) string { return strings.TrimRight(e, "/") }

func newEndpointClients(client APIGatewayClient, endpoint string) *endpointClients {
	ec := &endpointClients{endpoint: normaliseEndpoint(endpoint), derived: map[string]transport{}}
	ec.base = newTransport(client, ec.endpoint)
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

// forEndpoint returns the transport of endpoint ("" = the manager's).
func (ec *endpointClients) forEndpoint(endpoint string) transport {
	endpoint = ec.canonical(endpoint)
	if endpoint == "" {
		return ec.base
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	t, ok := ec.derived[endpoint]
	if !ok {
		t = ec.base.forEndpoint(endpoint)
		ec.derived[endpoint] = t
	}
	return t
}

// closeIdle closes the idle keep-alive connections of the manager's
// client; derived transports share them.
func (ec *endpointClients) closeIdle() { ec.base.closeIdle() }

// bounds are what ends an attempt through a bounded transport besides
// its context: the attempt's deadline and the manager's stop flag.
type bounds = httppool.Bounds
