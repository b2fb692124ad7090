package awslambda

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/pkg/connection"
)

// TraceHeader is the X-Ray trace header API Gateway adds to the requests it
// forwards; Lambda passes the invocation's trace in the
// "x-amzn-trace-id" context value and the _X_AMZN_TRACE_ID variable.
const TraceHeader = "X-Amzn-Trace-Id"

// envTraceID is the variable the Lambda runtime sets to the current
// invocation's trace header. It changes on every invocation, so it is read
// per event and is no setting (EnvVars does not list it).
const envTraceID = "_X_AMZN_TRACE_ID"

// maxTraceIDLen bounds what a client-visible header may put in log lines.
const maxTraceIDLen = 128

// TraceID returns the X-Ray trace ID (the Root= part, such as
// "1-5759e988-bd862e3fe1be46a994272793") of an event: from its
// X-Amzn-Trace-Id header ($connect carries headers), else from the
// invocation's trace (the context value aws-lambda-go sets, else
// _X_AMZN_TRACE_ID). "" when there is none.
func TraceID(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) string {
	for k, v := range ev.Headers {
		if strings.EqualFold(k, TraceHeader) {
			if id := traceRoot(v); id != "" {
				return id
			}
		}
	}
	return invocationTraceID(ctx)
}

// invocationTraceID is the trace of the running Lambda invocation.
func invocationTraceID(ctx context.Context) string {
	if v, ok := ctx.Value("x-amzn-trace-id").(string); ok {
		if id := traceRoot(v); id != "" {
			return id
		}
	}
	return traceRoot(os.Getenv(envTraceID))
}

// traceRoot extracts Root= from "Root=1-...;Parent=...;Sampled=1". A value
// without fields is taken whole. Anything unprintable or too long is
// dropped: the header comes from outside.
func traceRoot(h string) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return ""
	}
	id := h
	if strings.Contains(h, "=") {
		id = ""
		for f := range strings.SplitSeq(h, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(f), "Root="); ok {
				id = v
				break
			}
		}
	}
	if id == "" || len(id) > maxTraceIDLen {
		return ""
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return ""
		}
	}
	return id
}

// withCorrelation sets the correlation ID that the router's, the connect
// handler's and the manager's log lines carry: the X-Ray trace ID when the
// event has one, so a request can be followed from API Gateway through
// every log line, else API Gateway's request ID.
func withCorrelation(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) context.Context {
	id := TraceID(ctx, ev)
	if id == "" {
		id = ev.RequestContext.RequestID
	}
	return connection.WithCorrelationID(ctx, id)
}
