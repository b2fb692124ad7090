package streamer

import (
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
