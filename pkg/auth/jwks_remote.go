package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// Defaults of FetchOptions.
const (
	// DefaultJWKSRefreshInterval is how often a fetched JWKS is refreshed on
	// schedule. Identity providers announce a new key well before they sign
	// with it, and an unknown kid triggers a refresh anyway.
	DefaultJWKSRefreshInterval = time.Hour
	// DefaultJWKSUnknownKIDInterval is the least time between two refreshes
	// caused by tokens with an unknown kid.
	DefaultJWKSUnknownKIDInterval = 5 * time.Minute
	// DefaultJWKSTimeout bounds one JWKS request, connection to last byte.
	DefaultJWKSTimeout = 10 * time.Second
	// DefaultJWKSMaxBytes bounds a JWKS response body. Real key sets are a
	// few kilobytes (Cognito's two keys: ~1 KiB).
	DefaultJWKSMaxBytes = 1 << 20
)

// ErrJWKSFetch is wrapped by every error a JWKS fetch reports: an
// unreachable provider, a non-200 answer, an oversize or malformed
// document. FetchJWKS returns it when the first fetch fails; later failures
// are logged and the last good keys stay in use.
var ErrJWKSFetch = errors.New("auth: JWKS fetch failed")

// FetchOptions configures FetchJWKS. The zero value (or nil) means the
// documented defaults.
type FetchOptions struct {
	// HTTPClient makes the requests; its Transport is wrapped to bound the
	// response and honour caching headers. Default: a client with
	// Timeout-sized dial, TLS handshake and response-header timeouts.
	HTTPClient *http.Client
	// RefreshInterval is the scheduled refresh period (default
	// DefaultJWKSRefreshInterval).
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between refreshes caused by an
	// unknown kid (default DefaultJWKSUnknownKIDInterval). One refresh may
	// happen at once; beyond that rate, tokens with unknown kids are refused
	// without a request, so a flood of bogus kids cannot hammer the
	// provider.
	UnknownKIDInterval time.Duration
	// Timeout bounds each request (default DefaultJWKSTimeout).
	Timeout time.Duration
	// MaxBytes bounds the response body (default DefaultJWKSMaxBytes).
	MaxBytes int64
	// AllowHTTP permits a plain-http URL on any host. Without it, http is
	// only accepted for loopback hosts (a local identity provider): keys
	// fetched in clear text could be swapped on the way.
	AllowHTTP bool
	// Logger receives refresh failures (warn) and key set changes (info).
	// Default: discard.
	Logger *slog.Logger
}

// JWKSStats counts what a fetched JWKS did, for metrics and tests.
type JWKSStats struct {
	// Requests is how many requests reached the provider.
	Requests uint64
	// NotModified counts 304 answers to conditional requests.
	NotModified uint64
	// Fresh counts refreshes answered from the cache because the last
	// answer's Cache-Control max-age had not run out.
	Fresh uint64
	// Failures counts failed refreshes (network, status, size, content).
	Failures uint64
	// LastSuccess is when the provider last answered with a usable set.
	LastSuccess time.Time
}

// FetchJWKS fetches the JSON Web Key Set at rawURL (an identity provider's
// jwks_uri, such as CognitoJWKSURL's) and keeps it current: refreshed every
// RefreshInterval, and again when a token names an unknown kid (at most
// once per UnknownKIDInterval). When a refresh fails, the last good keys
// stay in use and a warning is logged; keys removed by the provider stop
// verifying at the next successful refresh.
//
// Each response is bounded by MaxBytes and checked like ParseJWKS (no
// symmetric keys, no alg/kty mismatch, RSA at least MinRSABits) before any
// key of it is used; a refused document counts as a failed refresh.
// Caching headers are honoured: ETag and Last-Modified make refreshes
// conditional (a 304 keeps the set), and Cache-Control max-age lets a
// scheduled refresh skip the request while the set is fresh. A refresh for
// an unknown kid always asks the provider (conditionally).
//
// The first fetch, bounded by Timeout, must succeed: its error wraps
// ErrJWKSFetch (as does ctx's, if ctx ended meanwhile). ctx's values are
// kept for the refreshes, not its cancellation: they run until Close.
func FetchJWKS(ctx context.Context, rawURL string, opts *FetchOptions) (*JWKS, error) {
	var o FetchOptions
	if opts != nil {
		o = *opts
	}
	if err := checkJWKSURL(rawURL, o.AllowHTTP); err != nil {
		return nil, err
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultJWKSRefreshInterval
	}
	if o.UnknownKIDInterval <= 0 {
		o.UnknownKIDInterval = DefaultJWKSUnknownKIDInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultJWKSTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultJWKSMaxBytes
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	r := &remoteJWKS{url: rawURL, log: log}
	next := http.RoundTripper(nil)
	client := &http.Client{Timeout: o.Timeout}
	if o.HTTPClient != nil {
		*client = *o.HTTPClient
		next = o.HTTPClient.Transport
	}
	if next == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = o.Timeout
		tr.ResponseHeaderTimeout = o.Timeout
		next = tr
	}
	r.tr = &jwksTransport{next: next, remote: r, maxBytes: o.MaxBytes, timeout: o.Timeout, now: time.Now}
	client.Transport = r.tr

	// The refreshes outlive the caller's ctx; Close stops them.
	refreshCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	store, err := jwkset.NewStorageFromHTTP(rawURL, jwkset.HTTPClientStorageOptions{
		Client:              client,
		Ctx:                 refreshCtx,
		HTTPTimeout:         o.Timeout,
		RefreshInterval:     o.RefreshInterval,
		RefreshErrorHandler: r.refreshFailed,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %s: %w", ErrJWKSFetch, rawURL, err)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %s: %w", ErrJWKSFetch, rawURL, err)
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{rawURL: store},
		// The refresh an unknown kid causes runs under this deadline too,
		// so it must fit a whole request. A kid arriving when the next
		// refresh slot is further away than this is refused at once.
		RateLimitWaitMax:  o.Timeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %s: %w", ErrJWKSFetch, rawURL, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: refreshCtx, Storage: storage})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %s: %w", ErrJWKSFetch, rawURL, err)
	}
	return &JWKS{kf: kf, remote: r}, nil
}

// Close stops the refreshes of a set from FetchJWKS; its last keys keep
// verifying. Safe to call more than once; a no-op for a fixed set.
func (s *JWKS) Close() {
	if s != nil && s.remote != nil {
		s.remote.cancel()
	}
}

// Stats reports what a set from FetchJWKS did; zero for a fixed set.
func (s *JWKS) Stats() JWKSStats {
	if s == nil || s.remote == nil {
		return JWKSStats{}
	}
	r := s.remote
	st := JWKSStats{
		Requests:    r.requests.Load(),
		NotModified: r.notModified.Load(),
		Fresh:       r.fresh.Load(),
		Failures:    r.failures.Load(),
	}
	if ns := r.lastSuccess.Load(); ns != 0 {
		st.LastSuccess = time.Unix(0, ns)
	}
	return st
}

// checkJWKSURL refuses URLs keys should not come from.
func checkJWKSURL(rawURL string, allowHTTP bool) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return &ConfigError{Field: "JWKS URL", Problem: fmt.Sprintf("%q is not an absolute URL", rawURL), Err: err}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return &ConfigError{Field: "JWKS URL", Problem: fmt.Sprintf("%q is plain http; keys must come over https (http is accepted for loopback hosts only)", rawURL)}
	default:
		return &ConfigError{Field: "JWKS URL", Problem: fmt.Sprintf("%q: scheme must be https", rawURL)}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// remoteJWKS is the state of a fetched set that its JWKS, its transport and
// its log lines share.
type remoteJWKS struct {
	url    string
	log    *slog.Logger
	tr     *jwksTransport
	cancel context.CancelFunc

	current atomic.Pointer[keySet] // last good set

	requests, notModified, fresh, failures atomic.Uint64
	lastSuccess                            atomic.Int64 // unix nanoseconds
}

// keySet is one accepted document's keys.
type keySet struct {
	pubs []crypto.PublicKey
	kids []string
}

func (r *remoteJWKS) keys() []crypto.PublicKey {
	if ks := r.current.Load(); ks != nil {
		return ks.pubs
	}
	return nil
}

// accepted records a newly validated document and logs what changed.
func (r *remoteJWKS) accepted(pubs []crypto.PublicKey, kids []string) {
	r.lastSuccess.Store(time.Now().UnixNano())
	prev := r.current.Swap(&keySet{pubs: pubs, kids: kids})
	var was []string
	if prev != nil {
		was = prev.kids
	}
	added, removed := diffKIDs(was, kids)
	if len(added) > 0 || len(removed) > 0 {
		r.log.Info("auth: JWKS key set changed", "url", r.url, "added_kids", added, "removed_kids", removed, "keys", len(pubs))
	}
}

// refreshFailed is jwkset's RefreshErrorHandler: the last good keys stay.
func (r *remoteJWKS) refreshFailed(ctx context.Context, err error) {
	r.failures.Add(1)
	attrs := []any{"url", r.url, "err", err, "keys", len(r.keys())}
	if ns := r.lastSuccess.Load(); ns != 0 {
		attrs = append(attrs, "last_success", time.Unix(0, ns).UTC().Format(time.RFC3339))
		r.log.WarnContext(ctx, "auth: JWKS refresh failed; still verifying with the last good keys", attrs...)
		return
	}
	r.log.ErrorContext(ctx, "auth: JWKS refresh failed and no key set was ever fetched; every token is refused", attrs...)
}

func diffKIDs(was, now []string) (added, removed []string) {
	for _, k := range now {
		if !slices.Contains(was, k) {
			added = append(added, k)
		}
	}
	for _, k := range was {
		if !slices.Contains(now, k) {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// revalidateKey marks a context whose JWKS refresh must ask the provider
// even while the cached set is fresh: the refresh an unknown kid causes.
type revalidateKey struct{}

func withRevalidate(ctx context.Context) context.Context {
	return context.WithValue(ctx, revalidateKey{}, true)
}

func mustRevalidate(ctx context.Context) bool {
	v, _ := ctx.Value(revalidateKey{}).(bool)
	return v
}
