package streamer

import (
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one inbound WebSocket message as the router sees it. The
// adapters (package awslambda, the local runtime) build it from API
// Gateway's MESSAGE event; the router never sees the aws-lambda-go types.
type Message struct {
	// ConnectionID is API Gateway's id of the sending connection.
	ConnectionID string
	// GatewayRequestID is API Gateway's id of this event
	// (requestContext.requestId), used only to correlate logs.
	GatewayRequestID string
	// Body is the message exactly as the client sent it.
	Body []byte
	// ReceivedAt is when API Gateway received the message (zero if unknown).
	ReceivedAt time.Time
	// DomainName and Stage are the event's requestContext.domainName and
	// stage: they locate the management endpoint of the connection, where
	// the router replies (see WithReplyEndpoint). Empty: replies go
	// through the endpoint in the connection's record.
	DomainName string
	Stage      string
}

// defaultReplyEndpoint is https://{DomainName}/{Stage}, as API Gateway
// serves the @connections API, with http for a loopback domain (a local
// runtime on this machine); "" when the message names no domain.
func defaultReplyEndpoint(m Message) string {
	if m.DomainName == "" {
		return ""
	}
	scheme := "https"
	if isLoopback(m.DomainName) {
		scheme = "http"
	}
	if m.Stage == "" {
		return scheme + "://" + m.DomainName
	}
	return scheme + "://" + m.DomainName + "/" + m.Stage
}

// isLoopback reports whether a domain name (host, or host:port) is this
// machine: localhost or a loopback address.
func isLoopback(domain string) bool {
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the error message stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
