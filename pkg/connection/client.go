package connection

import (
	"context"
	"net/http"
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
