package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/runtime/lambdart"
	"github.com/streamer-go/streamer/runtime/template"
)

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
			a.log.Info("stack: identity source missing; 401", "authorizer", au.LogicalID, "source", src)
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
