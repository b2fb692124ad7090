package main

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
var errInvalidResponse = errors.New("streamer dev: the function's response is not a proxy integration response")

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
		out, err := fn.Invoke(ctx, payload)
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

// authorizerEvent is the event of a WebSocket API's REQUEST authorizer:
// the $connect request with the method ARN.
type authorizerEvent struct {
	Type                            string                                        `json:"type"`
	MethodArn                       string                                        `json:"methodArn"`
	Headers                         map[string]string                             `json:"headers"`
	MultiValueHeaders               map[string][]string                           `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string                             `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string                           `json:"multiValueQueryStringParameters"`
	StageVariables                  map[string]string                             `json:"stageVariables"`
	RequestContext                  events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}

// authorizerAnswer is a REQUEST authorizer's answer. Action and Resource
// may be a string or a list.
type authorizerAnswer struct {
	PrincipalID    string `json:"principalId"`
	PolicyDocument struct {
		Statement []struct {
			Effect   string          `json:"Effect"`
			Action   json.RawMessage `json:"Action"`
			Resource json.RawMessage `json:"Resource"`
		} `json:"Statement"`
	} `json:"policyDocument"`
	Context map[string]any `json:"context"`
}

// authorize runs the authorizer for a $connect event. It returns the
// status that refuses the connection (401 for a missing identity source
// or an "Unauthorized" error, 403 for a policy that does not allow the
// route), 0 to let it through, or an error (a 500).
func (a *apiAdapter) authorize(ctx context.Context, au *template.Authorizer, ev events.APIGatewayWebsocketProxyRequest) (int, error) {
	for _, src := range au.IdentitySources {
		if !identityPresent(src, ev) {
			a.log.Info("streamer dev: identity source missing; 401", "authorizer", au.LogicalID, "source", src)
			return http.StatusUnauthorized, nil
		}
	}
	fn := a.functions[au.Function]
	if fn == nil {
		return 0, fmt.Errorf("authorizer %s: function %s does not run locally", au.LogicalID, au.Function)
	}
	methodArn := "arn:aws:execute-api:" + a.app.Region + ":" + a.app.AccountID + ":" + a.app.APIID + "/" + a.stage + "/$connect"
	payload, err := json.Marshal(authorizerEvent{
		Type: "REQUEST", MethodArn: methodArn,
		Headers: ev.Headers, MultiValueHeaders: ev.MultiValueHeaders,
		QueryStringParameters: ev.QueryStringParameters, MultiValueQueryStringParameters: ev.MultiValueQueryStringParameters,
		StageVariables: map[string]string{}, RequestContext: ev.RequestContext,
	})
	if err != nil {
		return 0, err
	}
	out, err := fn.Invoke(ctx, payload)
	var fe *lambdart.FunctionError
	if errors.As(err, &fe) && fe.Message == "Unauthorized" {
		return http.StatusUnauthorized, nil
	}
	if err != nil {
		return 0, fmt.Errorf("authorizer %s: %w", au.LogicalID, err)
	}
	var ans authorizerAnswer
	if err := json.Unmarshal(out, &ans); err != nil {
		return 0, fmt.Errorf("authorizer %s: the answer is not a policy: %w", au.LogicalID, err)
	}
	allowed := false
	for _, st := range ans.PolicyDocument.Statement {
		if !anyMatches(st.Action, "execute-api:Invoke") || !anyMatches(st.Resource, methodArn) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return http.StatusForbidden, nil
		case "Allow":
			allowed = true
		}
	}
	if !allowed {
		return http.StatusForbidden, nil
	}
	c := map[string]any{"principalId": ans.PrincipalID}
	for k, v := range ans.Context {
		c[k] = v
	}
	a.mu.Lock()
	a.contexts[ev.RequestContext.ConnectionID] = c
	a.mu.Unlock()
	return 0, nil
}

// identityPresent checks one identity source,
// route.request.header.NAME or route.request.querystring.NAME.
func identityPresent(src string, ev events.APIGatewayWebsocketProxyRequest) bool {
	if name, ok := strings.CutPrefix(src, "route.request.header."); ok {
		for k, v := range ev.Headers {
			if strings.EqualFold(k, name) && v != "" {
				return true
			}
		}
		return false
	}
	if name, ok := strings.CutPrefix(src, "route.request.querystring."); ok {
		return ev.QueryStringParameters[name] != ""
	}
	// Stage variables and context sources are not checked.
	return true
}

// anyMatches: a policy's string-or-list value has a pattern matching s.
func anyMatches(raw json.RawMessage, s string) bool {
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		list = []string{one}
	}
	for _, p := range list {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch matches IAM's wildcards: * any run of characters, ? one.
func globMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}
