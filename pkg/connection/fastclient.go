package connection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/pkg/connection/internal/httppool"
)

// ErrInvalidEndpoint means a FastClient was given an endpoint that is not
// an absolute http(s) URL. No request was made.
var ErrInvalidEndpoint = errors.New("connection: invalid management endpoint")

// signingName is the SigV4 service name of the management API.
const signingName = "execute-api"

// credentialsExpiryWindow is how long before they expire credentials are
// refreshed when NewFastClient has to wrap the provider in a cache itself:
// a request signed just before expiry must still be valid when it lands.
const credentialsExpiryWindow = 30 * time.Second

// emptyPayloadHash is the SHA-256 of no bytes, the payload hash of GET and
// DELETE.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// FastClient is a lean client of the API Gateway Management API: one
// SigV4-signed HTTP/1.1 request per call, signed with the SDK's own
// signer (aws/signer/v4) and the aws.Config's credentials, written and
// read with net/http (Request.Write, ReadResponse) over a keep-alive pool
// of its own, with none of the SDK's middleware stack. An endpoint behind
// HTTP(S)_PROXY, or a client given WithFastHTTPClient, is sent through
// net/http's Transport instead. It satisfies APIGatewayClient, so NewManager
// takes it as it takes the SDK client, and it returns the same errors the
// SDK does: a *smithy.OperationError wrapping an *awshttp.ResponseError
// (HTTP status and request ID) wrapping *types.GoneException,
// *types.ForbiddenException, *types.LimitExceededException,
// *types.PayloadTooLargeException or a smithy.GenericAPIError; a network
// failure wraps a *smithyhttp.RequestSendError.
//
// It makes exactly one attempt per call (the Manager owns retries) and
// ignores the per-call SDK options except BaseEndpoint. It is safe for
// concurrent use. See the package documentation for why both clients
// exist.
type FastClient struct {
	creds  aws.CredentialsProvider // nil: anonymous, requests are not signed
	region string
	signer *v4.Signer
	hc     *http.Client
	owned  *http.Transport // NewFastClient's, for proxied endpoints; nil if the caller gave hc
	pools  *httppool.Pools // NewFastClient's own keep-alive pools; nil if the caller gave hc
	ep     fastEndpoint
}

var _ APIGatewayClient = (*FastClient)(nil)

// fastEndpoint is a parsed management endpoint; err is set when it was
// invalid, and every call then fails with it.
type fastEndpoint struct {
	raw     string
	scheme  string
	host    string
	path    string // unescaped, no trailing slash: "/prod" or ""
	rawPath string // escaped form of path
	origin  string // scheme://host, the key of its connection pool
	pool    *httppool.Pool
	err     error
}

func parseFastEndpoint(endpoint string) fastEndpoint {
	ep := fastEndpoint{raw: normaliseEndpoint(endpoint)}
	if ep.raw == "" {
		ep.err = fmt.Errorf("%w: no endpoint given", ErrInvalidEndpoint)
		return ep
	}
	u, err := url.Parse(ep.raw)
	switch {
	case err != nil:
		ep.err = fmt.Errorf("%w: %q: %w", ErrInvalidEndpoint, endpoint, err)
		return ep
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		ep.err = fmt.Errorf("%w: %q must be http(s)://host[/stage]", ErrInvalidEndpoint, endpoint)
		return ep
	}
	ep.scheme, ep.host = u.Scheme, u.Host
	ep.origin = u.Scheme + "://" + u.Host
	ep.path, ep.rawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.EscapedPath(), "/")
	return ep
}

// FastClientOption configures a FastClient.
type FastClientOption func(*fastClientConfig)

type fastClientConfig struct {
	hc   *http.Client
	tls  *tls.Config
	pool int
}

// WithFastHTTPClient makes the client send through hc instead of a pool of
// its own. The caller then owns hc's connections: Manager.Shutdown does
// not close them.
func WithFastHTTPClient(hc *http.Client) FastClientOption {
	return func(c *fastClientConfig) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithFastTLSConfig sets the TLS configuration of the client's own
// connections to https endpoints (for instance RootCAs for a private CA);
// ServerName defaults to the endpoint's host and only HTTP/1.1 is
// offered. It has no effect with WithFastHTTPClient.
func WithFastTLSConfig(cfg *tls.Config) FastClientOption {
	return func(c *fastClientConfig) {
		if cfg != nil {
			c.tls = cfg.Clone()
		}
	}
}

// WithFastPoolSize sizes the keep-alive pool to n idle connections, which
// should be at least the number of concurrent senders (a Manager's
// WithBroadcastWorkers, plus concurrent Sends). Values below 1 mean
// MaxIdleConnsPerHost.
func WithFastPoolSize(n int) FastClientOption {
	return func(c *fastClientConfig) {
		if n >= 1 {
			c.pool = n
		}
	}
}

// NewFastClient returns a lean management API client for endpoint
// (https://{api}.execute-api.{region}.amazonaws.com/{stage}, or
// https://{domainName}/{stage}, or the local runtime's URL), signing with
// cfg.Credentials for cfg.Region. Credentials are cached: a provider that
// is already an *aws.CredentialsCache (as config.LoadDefaultConfig makes)
// is used as it is, any other is wrapped in one that refreshes 30 s before
// expiry. aws.AnonymousCredentials sends unsigned requests (API Gateway
// refuses them; the local runtime may not). An invalid endpoint is
// reported by every call, as ErrInvalidEndpoint; "" is allowed when every
// call names its endpoint (the Manager does that for records whose
// Endpoint differs).
func NewFastClient(cfg aws.Config, endpoint string, opts ...FastClientOption) *FastClient {
	fc := fastClientConfig{pool: MaxIdleConnsPerHost}
	for _, o := range opts {
		o(&fc)
	}
	c := &FastClient{
		region: cfg.Region,
		signer: v4.NewSigner(),
		hc:     fc.hc,
		ep:     parseFastEndpoint(endpoint),
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = fc.pool
		tr.MaxIdleConnsPerHost = fc.pool
		tr.IdleConnTimeout = 90 * time.Second
		if fc.tls != nil {
			tr.TLSClientConfig = fc.tls
		}
		c.owned = tr
		c.hc = &http.Client{Transport: tr}
		c.pools = httppool.NewPools(fc.tls, fc.pool)
		c.resolvePool(&c.ep)
	}
	switch p := cfg.Credentials.(type) {
	case nil, aws.AnonymousCredentials, *aws.AnonymousCredentials:
	case *aws.CredentialsCache:
		c.creds = p
	default:
		c.creds = aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = credentialsExpiryWindow
		})
	}
	return c
}

// Endpoint returns the endpoint the client sends to.
func (c *FastClient) Endpoint() string { return c.ep.raw }

// CloseIdleConnections closes the idle keep-alive connections of the
// client's own pool (not those of a client given with
// WithFastHTTPClient). Manager.Shutdown calls it.
func (c *FastClient) CloseIdleConnections() {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
	if c.pools != nil {
		c.pools.CloseIdle()
	}
}

// withEndpoint returns a client for another endpoint that shares c's
// pools, signer and credentials cache.
func (c *FastClient) withEndpoint(endpoint string) *FastClient {
	d := *c
	d.ep = parseFastEndpoint(endpoint)
	d.resolvePool(&d.ep)
	return &d
}

// resolvePool finds ep's connection pool once, so that a call costs no
// lookup.
func (c *FastClient) resolvePool(ep *fastEndpoint) {
	if c.pools != nil && ep.err == nil {
		ep.pool = c.pools.ForOrigin(ep.scheme, ep.host)
	}
}

// forCall is the endpoint of one call: c's own, unless optFns set
// BaseEndpoint (as the Manager does for a record with another endpoint
// when it cannot derive a client).
func (c *FastClient) forCall(optFns []func(*apigatewaymanagementapi.Options)) *fastEndpoint {
	if len(optFns) == 0 {
		return &c.ep
	}
	var o apigatewaymanagementapi.Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.BaseEndpoint == nil || normaliseEndpoint(*o.BaseEndpoint) == c.ep.raw {
		return &c.ep
	}
	ep := parseFastEndpoint(*o.BaseEndpoint)
	c.resolvePool(&ep)
	return &ep
}

// payloadHash returns the hex SHA-256 of data, the payload hash SigV4
// signs. A Broadcast computes it once per message, not once per ID.
func payloadHash(data []byte) string {
	if len(data) == 0 {
		return emptyPayloadHash
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// PostToConnection sends params.Data to the connection: POST
// /@connections/{id}, one attempt.
func (c *FastClient) PostToConnection(ctx context.Context, params *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	const op = "PostToConnection"
	if params == nil || params.ConnectionId == nil || params.Data == nil {
		return nil, invalidParams(op, "ConnectionId and Data")
	}
	if err := c.post(ctx, c.forCall(optFns), *params.ConnectionId, params.Data, payloadHash(params.Data), bounds{}); err != nil {
		return nil, err
	}
	return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
}

// post is PostToConnection with the payload hash already computed.
func (c *FastClient) post(ctx context.Context, ep *fastEndpoint, id string, data []byte, hash string, b bounds) error {
	resp, err := c.do(ctx, "PostToConnection", http.MethodPost, ep, id, data, hash, b)
	if err != nil {
		return err
	}
	discard(resp)
	return nil
}

// GetConnection returns what API Gateway knows about the connection: GET
// /@connections/{id}, one attempt.
func (c *FastClient) GetConnection(ctx context.Context, params *apigatewaymanagementapi.GetConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error) {
	const op = "GetConnection"
	if params == nil || params.ConnectionId == nil {
		return nil, invalidParams(op, "ConnectionId")
	}
	resp, err := c.do(ctx, op, http.MethodGet, c.forCall(optFns), *params.ConnectionId, nil, emptyPayloadHash, bounds{})
	if err != nil {
		return nil, err
	}
	return decodeGetConnection(op, resp)
}

// DeleteConnection closes the connection: DELETE /@connections/{id}, one
// attempt.
func (c *FastClient) DeleteConnection(ctx context.Context, params *apigatewaymanagementapi.DeleteConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error) {
	const op = "DeleteConnection"
	if params == nil || params.ConnectionId == nil {
		return nil, invalidParams(op, "ConnectionId")
	}
	resp, err := c.do(ctx, op, http.MethodDelete, c.forCall(optFns), *params.ConnectionId, nil, emptyPayloadHash, bounds{})
	if err != nil {
		return nil, err
	}
	discard(resp)
	return &apigatewaymanagementapi.DeleteConnectionOutput{}, nil
}

// do builds, signs and sends one request and returns the response if it
// succeeded (2xx); any other answer is returned as the SDK's typed error.
// b bounds a call through the endpoint's pool; a caller with bounds must
// not call through a Transport (ep.pool == nil), which ignores them.
func (c *FastClient) do(ctx context.Context, op, method string, ep *fastEndpoint, id string, body []byte, hash string, b bounds) (*http.Response, error) {
	if ep.err != nil {
		return nil, operationError(op, ep.err)
	}
	if id == "" {
		return nil, invalidParams(op, "a non-empty ConnectionId")
	}
	// The URL is built, not parsed: the ID is escaped as the SDK escapes
	// path labels (everything but unreserved characters), and RawPath
	// keeps that form on the wire and in the signature.
	u := &url.URL{
		Scheme:  ep.scheme,
		Host:    ep.host,
		Path:    ep.path + connectionsPath + id,
		RawPath: escapedPath(ep.rawPath, id),
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 4),
		Host:       ep.host,
	}
	if body != nil {
		req.ContentLength = int64(len(body))
		switch {
		case len(body) == 0:
			req.Body = http.NoBody
			req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		case ep.pool != nil:
			// The pool resends from body itself (see httppool.Pool.RoundTrip):
			// no GetBody closure.
			req.Body = newBodyReader(body)
		default:
			req.Body = newBodyReader(body)
			req.GetBody = func() (io.ReadCloser, error) { return newBodyReader(body), nil }
		}
	}
	if c.creds != nil {
		creds, err := c.creds.Retrieve(ctx)
		if err != nil {
			return nil, operationError(op, fmt.Errorf("%w: %w", ErrNoCredentials, err))
		}
		if err := c.signer.SignHTTP(ctx, creds, req, hash, signingName, c.region, time.Now().UTC()); err != nil {
			return nil, operationError(op, fmt.Errorf("connection: sign request: %w", err))
		}
	}
	var resp *http.Response
	var err error
	switch {
	case ep.pool != nil:
		resp, err = ep.pool.RoundTrip(ctx, b, req, body)
	case c.owned != nil:
		// Our own transport (the endpoint is proxied): no redirects to
		// follow, so skip the http.Client layer and its allocations.
		resp, err = c.owned.RoundTrip(req.WithContext(ctx))
	default:
		resp, err = c.hc.Do(req.WithContext(ctx))
	}
	if errors.Is(err, httppool.ErrStopped) {
		// The manager's stop flag ended the call: Shutdown.
		err = fmt.Errorf("%w: %w", ErrShuttingDown, err)
	}
	if err != nil {
		return nil, operationError(op, sendError(err))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	return nil, operationError(op, responseError(resp))
}

// newBodyReader is a request body over a shared message. It must be
// io.NopCloser over a *bytes.Reader, a body net/http knows is in memory:
// for any other type Request.Write flushes the headers before copying the
// body, two writes (and two TCP segments, and often two reads on the
// gateway) per call instead of one, and the copy goes through the TCP
// connection's ReadFrom with a 32 KB buffer of its own.
func newBodyReader(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

const connectionsPath = "/@connections/"

// escapedPath is prefix + "/@connections/" + id with id percent-encoded
// as the SDK encodes path labels (httpbinding.EscapePath: everything but
// the unreserved characters A-Z a-z 0-9 - . _ ~), built in one allocation.
func escapedPath(prefix, id string) string {
	n := len(prefix) + len(connectionsPath)
	for i := 0; i < len(id); i++ {
		if unreserved(id[i]) {
			n++
		} else {
			n += 3
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	b.WriteString(connectionsPath)
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(id); i++ {
		c := id[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
