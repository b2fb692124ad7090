package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
	"github.com/streamer-go/streamer/runtime/local"
)

// securityOptions are the flags that decide who may use `streamer dev`:
// which Host names it answers to (DNS rebinding), what an address other
// machines reach requires, and whether the management API checks
// signatures as AWS does.
type securityOptions struct {
	allowedHosts   []string
	insecureExpose bool
	// verifySignatures is --verify-signatures as given; unset means on
	// with --template and off in the demo mode (see verify).
	verifySignatures optionalBool

	// limits are --quotas and --faults (dev_limits.go).
	limits limitOptions

	// Set by resolve once the address is known.
	exposed bool
	token   string
	// isLoopback decides whether an address is reachable only from this
	// machine; nil means local.IsLoopback. Tests inject other answers.
	isLoopback func(addr string) bool
}

// optionalBool is a boolean flag that knows whether it was given.
type optionalBool struct{ set, v bool }

func (b *optionalBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.set, b.v = true, v
	return nil
}

func (b *optionalBool) IsBoolFlag() bool { return true }

// securityFlags registers the security flags on fs; finish checks them
// after parsing.
func securityFlags(fs *flag.FlagSet, o *securityOptions) (finish func() error) {
	hosts := fs.String("allowed-hosts", "", "comma-separated Host names accepted besides the bound address, localhost, 127.0.0.1 and [::1] (\"*.example.test\" for subdomains, \"*\" for any); other names get 403, which stops DNS rebinding")
	fs.BoolVar(&o.insecureExpose, "insecure-expose", false, "on an --addr other machines reach, serve the console, /metrics and the management API without the access token printed at start")
	fs.Var(&o.verifySignatures, "verify-signatures", "make the management API refuse what AWS refuses (unsigned, wrong service or region, stale, altered) with AWS's error types; any access key, secret \""+local.LocalSecretAccessKey+"\"; default on with --template, off otherwise")
	quotas := fs.String("quotas", "", "enforce API Gateway's account quotas: \"aws\" (500 new connections/s; 10,000 @connections calls/s, burst 5,000; 128 KiB messages, 32 KiB frames), then overrides: aws,connections=N,connection-burst=N,requests=N,burst=N,message=BYTES,frame=BYTES,idle=DUR,lifetime=DUR")
	faults := fs.String("faults", "", "inject API Gateway's failures at rates from 0 to 1: 5xx=R,410=R,latency=DUR@R,lost-disconnect=R,drop=R,seed=N (for instance 5xx=0.01,410=0.01,latency=200ms@0.05)")
	return func() error {
		o.allowedHosts = splitList(*hosts)
		if err := o.limits.parseQuotas(*quotas); err != nil {
			return err
		}
		return o.limits.parseFaults(*faults)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// verify reports whether the management API checks signatures: the flag
// when given, else on with a template (its functions sign with the local
// credentials) and off in the demo mode (curl users post unsigned).
func (o *securityOptions) verify(template bool) bool {
	if o.verifySignatures.set {
		return o.verifySignatures.v
	}
	return template
}

// resolve decides, from the address the server listens on, whether it is
// exposed and, unless --insecure-expose, makes the access token.
func (o *securityOptions) resolve(addr string) error {
	loopback := o.isLoopback
	if loopback == nil {
		loopback = local.IsLoopback
	}
	o.exposed = !loopback(addr)
	if !o.exposed || o.insecureExpose {
		return nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("access token: %w", err)
	}
	o.token = hex.EncodeToString(b)
	return nil
}

// gatewayConfig adds the security settings to a gateway's configuration;
// region is the one signatures must name.
func (o securityOptions) gatewayConfig(cfg local.Config, template bool, region string) local.Config {
	cfg.AllowedHosts = o.allowedHosts
	cfg.AccessToken = o.token
	cfg.VerifySignatures = o.verify(template)
	cfg.Region = region
	o.limits.apply(&cfg)
	return cfg
}

// configureTemplateGateway is the stack's hook that adds the security
// settings to the template mode's gateway; region is the functions'.
func (o securityOptions) configureTemplateGateway(region string) func(*local.Config) {
	return func(cfg *local.Config) { *cfg = o.gatewayConfig(*cfg, true, region) }
}

// printSecurity says at start what the server checks and, on an exposed
// address, what it exposes and the token. base is http://ADDR; console
// tells whether the demo page, console and /metrics are served.
func (o securityOptions) printSecurity(w io.Writer, base string, template bool) {
	if o.verify(template) {
		mode := "on by default with --template"
		if o.verifySignatures.set {
			mode = "--verify-signatures"
		}
		fmt.Fprintf(w, "Signatures:          checked as AWS does (%s): any access key, secret %q, service execute-api; --verify-signatures=false turns it off\n", mode, local.LocalSecretAccessKey)
	} else {
		fmt.Fprintf(w, "Signatures:          not checked (off by default in the demo mode; --verify-signatures turns it on)\n")
	}
	o.limits.printLimits(w)
	if !o.exposed {
		return
	}
	what := "the WebSocket API, the dev console (connections, users, close buttons), /metrics and the @connections management API (post to or delete any connection)"
	if !template {
		what = "the WebSocket API, the demo page, the dev console (connections, users, close buttons), /metrics and the @connections management API (post to or delete any connection)"
	}
	fmt.Fprintf(w, "WARNING: %s listens on an address other machines can reach; exposed: %s\n", base, what)
	fmt.Fprintf(w, "WARNING: requests must name this server by its address, localhost or a name given with --allowed-hosts\n")
	if o.token == "" {
		fmt.Fprintf(w, "WARNING: --insecure-expose: anyone who reaches %s can use all of it, no token asked\n", base)
		return
	}
	fmt.Fprintf(w, "Access token:        %s\n", o.token)
	fmt.Fprintf(w, "                     console: %s%s/?token=%s ; /metrics: Authorization: Bearer TOKEN\n", base, devui.PathConsole, o.token)
	fmt.Fprintf(w, "                     management API: Authorization: Bearer TOKEN (or X-Streamer-Token), or a request signed with secret %q\n", local.LocalSecretAccessKey)
}

// privatePaths are the paths of the demo mode's shared listener that an
// exposed server protects with its access token: the console and its API,
// and /metrics.
var privatePaths = []string{devui.PathConsole + "/", metricsPath}

// guard applies the gateway's Host, Origin and token rules to everything
// the demo mode's listeners serve besides the gateway itself: the demo
// page, the console and /metrics.
func (s *devStack) guard(h http.Handler) http.Handler {
	return s.gw.Guard(h, privatePaths...)
}

// consoleClient is the HTTP client of the console's management calls: it
// signs them as the app's own manager does, so they pass the signature
// check and stand in for the access token.
func consoleClient(region string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &signingTransport{
		base:   http.DefaultTransport,
		creds:  aws.Credentials{AccessKeyID: "local", SecretAccessKey: local.LocalSecretAccessKey},
		region: region,
		signer: v4.NewSigner(),
	}}
}

// signingTransport signs each request with SigV4 for execute-api.
type signingTransport struct {
	base   http.RoundTripper
	creds  aws.Credentials
	region string
	signer *v4.Signer
}

func (t *signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	signed := r.Clone(r.Context())
	signed.Body = io.NopCloser(bytes.NewReader(body))
	signed.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	if err := t.signer.SignHTTP(r.Context(), t.creds, signed, hex.EncodeToString(sum[:]), "execute-api", t.region, time.Now()); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(signed)
}

// baseOf is an endpoint's scheme and host: http://ADDR of http://ADDR/stage.
func baseOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	return u.Scheme + "://" + u.Host
}
