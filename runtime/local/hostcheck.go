package local

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A web page the developer opens can reach a server on loopback: through
// DNS rebinding (a name of the attacker's that resolves to 127.0.0.1) it
// even reads the answers. Its requests carry the attacker's name in Host,
// so every request the gateway's port serves must name the gateway itself:
// the bound address, localhost, 127.0.0.1, [::1], the events' domainName
// or one of Config.AllowedHosts. Any port is accepted with these names (a
// forwarded port changes it; a rebinding page cannot choose the name). A
// page's own requests carry its Origin; the management API, and every
// request that changes state, must come without one (curl, the AWS SDKs)
// or from an allowed origin (Config.AllowedOrigins).

// hostSet is the Host names a gateway answers to.
type hostSet struct {
	any      bool
	names    map[string]bool // lower case, without port or brackets
	suffixes []string        // ".example.com" for a "*.example.com" pattern
}

// newHostSet builds the set from the bound address, the domain name and
// the allowed-host patterns. A bound address that is unspecified
// (0.0.0.0, [::]) stands for every address of the machine's interfaces.
func newHostSet(bound, domain string, allowed []string) *hostSet {
	s := &hostSet{names: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}}
	for _, a := range []string{bound, domain} {
		if h := hostName(a); h != "" {
			s.names[h] = true
		}
	}
	for _, a := range []string{bound, domain} {
		if ip, err := netip.ParseAddr(hostName(a)); err == nil && ip.IsUnspecified() {
			s.addInterfaces()
			break
		}
	}
	for _, p := range allowed {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "*":
			s.any = true
		case strings.HasPrefix(p, "*."):
			s.suffixes = append(s.suffixes, p[1:])
		case p != "":
			s.names[hostName(p)] = true
		}
	}
	return s
}

// addInterfaces adds the addresses of the machine's interfaces: what an
// unspecified bound address (0.0.0.0, [::]) listens on.
func (s *hostSet) addInterfaces() {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			s.names[p.Addr().WithZone("").String()] = true
		}
	}
}

// allows reports whether a request's Host names the gateway.
func (s *hostSet) allows(host string) bool {
	if s.any {
		return true
	}
	h := hostName(host)
	if h == "" {
		return false
	}
	if s.names[h] {
		return true
	}
	for _, suf := range s.suffixes {
		if strings.HasSuffix(h, suf) {
			return true
		}
	}
	return false
}

// hostName is host's name in lower case, without port, brackets or the
// trailing dot of a fully qualified name: "LocalHost.:80" is "localhost",
// "[::1]:8080" is "::1".
func hostName(host string) string {
	host = strings.TrimSpace(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// hosts is the gateway's current host set: New makes one from the
// configuration, and Start or Serve adds the bound address.
func (g *Gateway) hosts() *hostSet { return g.hostSet.Load() }

// checkHost answers 403 and logs one line when r's Host does not name the
// gateway; it reports whether r may go on.
func (g *Gateway) checkHost(w http.ResponseWriter, r *http.Request) bool {
	if g.hosts().allows(r.Host) {
		return true
	}
	g.log.Warn("local: request refused: Host is not a name of this server (add it with AllowedHosts / --allowed-hosts)",
		"host", r.Host, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	return false
}

// checkRequestOrigin answers 403 and logs one line when r carries a
// browser Origin that is neither this server nor an allowed origin.
func (g *Gateway) checkRequestOrigin(w http.ResponseWriter, r *http.Request) bool {
	err := checkOrigin(r, g.origins)
	if err == nil {
		return true
	}
	g.log.Warn("local: request refused: browser origin not allowed (add it with AllowedOrigins / --allowed-origins)",
		"origin", r.Header.Get("Origin"), "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	return false
}

// AccessTokenCookie is the cookie that carries Config.AccessToken for a
// browser: a page opened with ?token=TOKEN sets it.
const AccessTokenCookie = "streamer_token"

// hasToken reports whether r carries the access token: as
// "Authorization: Bearer TOKEN", "X-Streamer-Token: TOKEN", the
// AccessTokenCookie cookie or the token query parameter.
func hasToken(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	eq := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && eq(a[7:]) {
		return true
	}
	if eq(r.Header.Get("X-Streamer-Token")) {
		return true
	}
	if c, err := r.Cookie(AccessTokenCookie); err == nil && eq(c.Value) {
		return true
	}
	return r.URL.Query().Has("token") && eq(r.URL.Query().Get("token"))
}

// Guard wraps next, a handler that shares the gateway's port (a demo page,
// a console, /metrics), in the gateway's access rules, so that everything
// the port serves follows them:
//
//   - a Host that does not name the gateway is refused (403);
//   - a request that may change state (any method but GET, HEAD and
//     OPTIONS) with a browser Origin that is not allowed is refused (403);
//   - a request body must arrive within Config.BodyTimeout;
//   - when Config.AccessToken is set, requests for privatePaths (a path,
//     or a prefix when it ends in "/") need the token (401). A request
//     that brings it as ?token= gets it back as a SameSite=Strict cookie,
//     so a console opened from the printed URL keeps working.
//
// The gateway's own endpoints apply these rules themselves.
func (g *Gateway) Guard(next http.Handler, privatePaths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.checkHost(w, r) {
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !g.checkRequestOrigin(w, r) {
				return
			}
		}
		g.bodyDeadline(w, r)
		if g.cfg.AccessToken != "" && isPrivate(r.URL.Path, privatePaths) {
			if !hasToken(r, g.cfg.AccessToken) {
				g.log.Warn("local: request refused: no access token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				writeAPIError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized: this server is exposed; pass the token printed at start")
				return
			}
			if r.URL.Query().Get("token") != "" {
				http.SetCookie(w, &http.Cookie{Name: AccessTokenCookie, Value: g.cfg.AccessToken, Path: "/",
					HttpOnly: true, SameSite: http.SameSiteStrictMode})
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isPrivate(path string, private []string) bool {
	for _, p := range private {
		if path == p || (strings.HasSuffix(p, "/") && (strings.HasPrefix(path, p) || path == strings.TrimSuffix(p, "/"))) {
			return true
		}
	}
	return false
}

// IsLoopback reports whether a listen address ("127.0.0.1:8080",
// "localhost:0", "[::1]:9000") only accepts connections from this
// machine. An empty or unspecified host ("", "0.0.0.0", "[::]") and any
// other address are not loopback.
func IsLoopback(addr string) bool {
	h := hostName(addr)
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
