package main

import (
	"flag"
	"net/http"
	"strings"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
	"github.com/streamer-go/streamer/runtime/local"
)

// securityOptions are the flags that decide who may use `streamer dev`:
// which Host names it answers to (DNS rebinding), which browser origins
// may call its management API, and what an exposed address requires.
type securityOptions struct {
	allowedHosts []string
}

// securityFlags registers the security flags on fs; finish checks them
// after parsing.
func securityFlags(fs *flag.FlagSet, o *securityOptions) (finish func() error) {
	hosts := fs.String("allowed-hosts", "", "comma-separated Host names accepted besides the bound address, localhost, 127.0.0.1 and [::1] (\"*.example.test\" for subdomains, \"*\" for any); other names get 403, which stops DNS rebinding")
	return func() error {
		o.allowedHosts = splitList(*hosts)
		return nil
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

// gatewayConfig adds the security settings to a gateway's configuration.
func (o securityOptions) gatewayConfig(cfg local.Config) local.Config {
	cfg.AllowedHosts = o.allowedHosts
	return cfg
}

// configureTemplateGateway is the stack's hook that adds the security
// settings to the template mode's gateway; region is the functions'.
func (o securityOptions) configureTemplateGateway(region string) func(*local.Config) {
	return func(cfg *local.Config) { *cfg = o.gatewayConfig(*cfg) }
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
