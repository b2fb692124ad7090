package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/runtime/lambdart"
	"github.com/streamer-go/streamer/runtime/template"
)

// apiAdapter turns the gateway's route calls into invocations of the
// template's functions, as API Gateway's AWS_PROXY integrations do, and
// runs $connect's REQUEST authorizer.
type apiAdapter struct {
	app       *template.App
	stage     string
	functions map[string]*lambdart.Function
	log       *slog.Logger

	mu sync.Mutex
	// contexts holds each connection's requestContext.authorizer, from
	// its authorizer's answer, for the events after $connect.
	contexts map[string]map[string]any
}

// errInvalidResponse: the function's answer is not an API Gateway proxy
// response; API Gateway then answers as for a failed integration.
var errInvalidResponse = errors.New("stack: the function's response is not a proxy integration response")

func (a *apiAdapter) handler(r *template.Route, fn *lambdart.Function) func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		id := ev.RequestContext.ConnectionID
		if r.Key == "$connect" {
			// API Gateway is reached over TLS; the local runtime also
			// serves wss on the port domainName names.
			setHeader(&ev, "X-Forwarded-Proto", "https")
			if r.Authorizer != nil {
				status, err := a.authorize(ctx, r.Authorizer, ev)
				if err != nil {
					return events.APIGatewayProxyResponse{}, err
				}
				if status != 0 {
					return events.APIGatewayProxyResponse{StatusCode: status, Body: fmt.Sprintf(`{"message":%q}`, http.StatusText(status))}, nil
				}
			}
		}
		if c := a.context(id); c != nil {
			ev.RequestContext.Authorizer = c
		}
		if r.Key == "$disconnect" {
			defer a.forget(id)
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		// The invocation runs to the function's own Timeout, as on Lambda:
		// when the route's integration timeout ends ctx, the gateway
		// stops waiting for the answer, but the function is not stopped.
		out, err := fn.Invoke(context.WithoutCancel(ctx), payload)
		if err != nil {
			if r.Key == "$connect" {
				a.forget(id)
			}
			return events.APIGatewayProxyResponse{}, fmt.Errorf("%s: %w", fn.Name(), err)
		}
		resp, err := proxyResponse(out)
		if err != nil {
			if r.Key == "$connect" {
				a.forget(id)
			}
			return resp, fmt.Errorf("%s: %w", fn.Name(), err)
		}
		if r.Key == "$connect" && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			a.forget(id)
		}
		return resp, nil
	}
}

// proxyResponse reads a function's answer. null (a handler that returns
// nothing) is an empty 200, as API Gateway takes it.
func proxyResponse(out []byte) (events.APIGatewayProxyResponse, error) {
	var resp events.APIGatewayProxyResponse
	trimmed := strings.TrimSpace(string(out))
	if trimmed == "" || trimmed == "null" {
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	if !strings.HasPrefix(trimmed, "{") || json.Unmarshal(out, &resp) != nil {
		return resp, errInvalidResponse
	}
	if resp.StatusCode == 0 {
		resp.StatusCode = 200
	}
	return resp, nil
}

func setHeader(ev *events.APIGatewayWebsocketProxyRequest, k, v string) {
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	if ev.MultiValueHeaders == nil {
		ev.MultiValueHeaders = map[string][]string{}
	}
	ev.Headers[k] = v
	ev.MultiValueHeaders[k] = []string{v}
}

func (a *apiAdapter) context(id string) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.contexts[id]
}

func (a *apiAdapter) forget(id string) {
	a.mu.Lock()
	delete(a.contexts, id)
	a.mu.Unlock()
}
