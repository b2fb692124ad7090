package template

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// webSocketAPIType is SAM's WebSocket API resource.
const webSocketAPIType = "AWS::Serverless::WebSocketApi"

// webSocketAPIProps are the properties SAM accepts on an
// AWS::Serverless::WebSocketApi; any other is refused, as `sam deploy`
// refuses it.
var webSocketAPIProps = map[string]bool{
	"ApiKeySelectionExpression": true, "AccessLogSettings": true, "Auth": true, "DefaultRouteSettings": true,
	"Description": true, "DisableExecuteApiEndpoint": true, "DisableSchemaValidation": true, "Domain": true,
	"FailOnWarnings": true, "IpAddressType": true, "Name": true, "PropagateTags": true, "Routes": true,
	"RouteSettings": true, "RouteSelectionExpression": true, "StageName": true, "StageVariables": true, "Tags": true,
}

// webSocketAPIGlobals are the properties a Globals WebSocketApi section
// may set.
var webSocketAPIGlobals = map[string]bool{
	"AccessLogSettings": true, "ApiKeySelectionExpression": true, "DefaultRouteSettings": true,
	"DisableExecuteApiEndpoint": true, "DisableSchemaValidation": true, "Domain": true, "FailOnWarnings": true,
	"IpAddressType": true, "PropagateTags": true, "RouteSelectionExpression": true, "RouteSettings": true,
	"StageVariables": true, "Tags": true,
}

// webSocketRouteProps are the properties of one entry of Routes.
var webSocketRouteProps = map[string]bool{
	"ApiKeyRequired": true, "FunctionArn": true, "IntegrationTimeout": true, "ModelSelectionExpression": true,
	"OperationName": true, "RequestModels": true, "RequestParameters": true, "RouteResponseSelectionExpression": true,
}

// expandWebSocketAPIs replaces each AWS::Serverless::WebSocketApi with the
// CloudFormation resources SAM generates for it, under the logical IDs SAM
// gives them, so the rest of the template (Ref, Fn::GetAtt, Fn::Sub,
// routes declared as resources on the same API) and the local runtime see
// what CloudFormation would deploy:
//
//   - {Api}: AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET, Name the
//     logical ID unless set;
//   - {Api}{Stage}Stage: AWS::ApiGatewayV2::Stage, StageName "default"
//     unless set ({Api}DefaultStage then, {Api}Stage when StageName is an
//     intrinsic function); `{Api}.Stage` refers to it;
//   - per route, {Api}{Key}Route, {Api}{Key}Integration (AWS_PROXY to
//     FunctionArn) and {Api}{Key}Permission, Key being Connect,
//     Disconnect, Default or the route key capitalized;
//   - with Auth AuthType CUSTOM, {Api}ConnectAuthorizer (REQUEST, on
//     $connect) and, without InvokeRole, {Api}AuthorizerPermission.
//
// What SAM refuses is refused with an *Error naming the property.
//
// See https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-websocketapi.html
// and https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification-generated-resources-websocketapi.html
func (a *App) expandWebSocketAPIs() error {
	var ids []string
	for id, r := range a.stack.resources {
		if r.Type == webSocketAPIType {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := a.expandWebSocketAPI(id); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) expandWebSocketAPI(id string) error {
	src := a.stack.resources[id]
	p := src.Properties
	for _, k := range sortedKeys(p) {
		if !webSocketAPIProps[k] {
			return errorf(id, "Properties."+k, "not a property of %s", webSocketAPIType)
		}
	}
	for _, k := range []string{"AccessLogSettings", "Auth", "DefaultRouteSettings", "Domain", "RouteSettings", "StageVariables", "Tags"} {
		if v, ok := p[k]; ok {
			if _, isMap := v.(map[string]any); !isMap && !isIntrinsicValue(v) {
				return errorf(id, "Properties."+k, "should be a map")
			}
		}
	}
	rawRoutes, ok := p["Routes"]
	if !ok {
		return errorf(id, "Properties.Routes", "missing (required)")
	}
	routes, ok := rawRoutes.(map[string]any)
	if !ok {
		return errorf(id, "Properties.Routes", "should be a map of route keys")
	}
	if _, ok := p["RouteSelectionExpression"]; !ok {
		return errorf(id, "Properties.RouteSelectionExpression", "missing (required)")
	}
	if len(routes) == 0 {
		return errorf(id, "Properties.Routes", "a WebSocket API must have at least one route")
	}
	// SAM resolves parameters (not resources) in Auth before it reads it;
	// resolving it whole here only reads AuthType and which keys are set.
	var auth map[string]any
	if raw, ok := p["Auth"]; ok {
		v, err := a.stack.resolve(raw, id, "Properties.Auth")
		if err != nil {
			return err
		}
		auth, _ = v.(map[string]any)
	}
	if len(auth) > 0 {
		if _, ok := routes["$connect"]; !ok {
			return errorf(id, "Properties.Auth", "authorization is only available if there is a $connect route")
		}
	}
	if v, ok := p["IpAddressType"].(string); ok && v != "ipv4" && v != "dualstack" {
		return errorf(id, "Properties.IpAddressType", "%q: want ipv4 or dualstack", v)
	}
	domain, hasDomain := p["Domain"].(map[string]any)
	if hasDomain && isIntrinsic(domain) {
		// `!If [Cond, {...}, !Ref AWS::NoValue]`: the domain if any.
		v, err := a.stack.resolve(domain, id, "Properties.Domain")
		if err != nil {
			return err
		}
		domain, hasDomain = v.(map[string]any)
	}
	if hasDomain {
		if err := checkDomain(id, domain); err != nil {
			return err
		}
		a.unsupported("%s: Domain (custom domain name, base path mapping, Route 53 records) is not emulated: the API is served on the local address only", id)
	}

	gen := map[string]*Resource{}
	add := func(logicalID, typ string, props map[string]any) error {
		if _, taken := gen[logicalID]; taken {
			return errorf(id, "Properties.Routes", "two routes make the same logical ID %s", logicalID)
		}
		if _, taken := a.stack.resources[logicalID]; taken && logicalID != id {
			return errorf(id, "", "SAM generates %s (%s), which the template declares too", logicalID, typ)
		}
		gen[logicalID] = &Resource{Type: typ, Properties: props, Condition: src.Condition, generatedBy: id}
		return nil
	}
	ref := func(x string) map[string]any { return map[string]any{"Ref": x} }
	name := p["Name"]
	if name == nil {
		name = id
	}
	tags := map[string]any{"websocketapi:createdBy": "SAM"}
	if t, ok := p["Tags"].(map[string]any); ok {
		for k, v := range t {
			tags[k] = v
		}
	}
	api := map[string]any{"Name": name, "ProtocolType": "WEBSOCKET", "RouteSelectionExpression": p["RouteSelectionExpression"], "Tags": tags}
	copyProps(api, p, "ApiKeySelectionExpression", "Description", "DisableExecuteApiEndpoint", "DisableSchemaValidation", "IpAddressType")
	if err := add(id, "AWS::ApiGatewayV2::Api", api); err != nil {
		return err
	}

	stageName := p["StageName"]
	if stageName == nil {
		stageName = "default"
	}
	stageID := id + "Stage"
	if s, ok := stageName.(string); ok {
		if s == "$default" {
			return errorf(id, "Properties.StageName", "stages cannot be named $default for WebSocket APIs")
		}
		stageID = id + s + "Stage"
		if s == "default" {
			stageID = id + "DefaultStage"
		}
	} else if !isIntrinsicValue(stageName) {
		return errorf(id, "Properties.StageName", "want a string, got %s", describe(stageName))
	}
	stageTags := map[string]any{"websocketapi:createdBy": "SAM"}
	if b, _ := p["PropagateTags"].(bool); b {
		stageTags = tags
	}
	stage := map[string]any{"ApiId": ref(id), "StageName": stageName, "AutoDeploy": true, "Tags": stageTags}
	copyProps(stage, p, "StageVariables", "AccessLogSettings", "DefaultRouteSettings", "RouteSettings")
	if err := add(stageID, "AWS::ApiGatewayV2::Stage", stage); err != nil {
		return err
	}
	if a.stack.aliases == nil {
		a.stack.aliases = map[string]string{}
	}
	a.stack.aliases[id+".Stage"] = stageID
	if hasDomain {
		// The domain name resource, so `{Api}.DomainName` resolves to the
		// name as on AWS; its mappings and records are in the line above.
		name := domain["DomainName"]
		if r, ok := name.(map[string]any); ok && len(r) == 1 {
			// SAM resolves parameters in Domain before it hashes the name.
			if param, ok := r["Ref"].(string); ok && !a.stack.paramLists[param] {
				if v, ok := a.stack.params[param]; ok {
					name = v
				}
			}
		}
		domainID := "ApiGatewayDomainNameV2" + logicalIDHash(name)
		if err := add(domainID, "AWS::ApiGatewayV2::DomainName", map[string]any{"DomainName": domain["DomainName"]}); err != nil {
			return err
		}
		a.stack.aliases[id+".DomainName"] = domainID
	}

	authType := ""
	if len(auth) > 0 {
		t, err := webSocketAuthType(id, auth)
		if err != nil {
			return err
		}
		authType = t
	}
	for _, key := range sortedKeys(routes) {
		field := "Properties.Routes." + key
		spec, ok := routes[key].(map[string]any)
		if !ok || isIntrinsic(spec) {
			return errorf(id, field, "want an object with FunctionArn, got %s", describe(routes[key]))
		}
		for _, k := range sortedKeys(spec) {
			if !webSocketRouteProps[k] {
				return errorf(id, field+"."+k, "not a property of a WebSocketApi route")
			}
		}
		norm, err := normalizedRouteKey(id, field, key)
		if err != nil {
			return err
		}
		if rp, ok := spec["RequestParameters"]; ok && rp != nil && key != "$connect" {
			return errorf(id, field+".RequestParameters", "request parameters are only supported for the $connect route in WebSocket APIs")
		}
		fn, ok := spec["FunctionArn"]
		if !ok {
			return errorf(id, field+".FunctionArn", "missing: a route must have an associated function")
		}
		base := id + norm
		route := map[string]any{"ApiId": ref(id), "RouteKey": key,
			"Target": map[string]any{"Fn::Join": []any{"/", []any{"integrations", ref(base + "Integration")}}}}
		copyProps(route, spec, "ApiKeyRequired", "ModelSelectionExpression", "OperationName", "RequestModels", "RequestParameters", "RouteResponseSelectionExpression")
		if key == "$connect" {
			switch authType {
			case "CUSTOM":
				route["AuthorizationType"] = "CUSTOM"
				route["AuthorizerId"] = ref(id + "ConnectAuthorizer")
			case "AWS_IAM":
				route["AuthorizationType"] = "AWS_IAM"
			case "":
			default:
				// SAM accepts AuthType in any case but attaches an
				// authorizer only for CUSTOM written so: "custom" leaves
				// $connect open.
				route["AuthorizationType"] = "NONE"
			}
		}
		if err := add(base+"Route", "AWS::ApiGatewayV2::Route", route); err != nil {
			return err
		}
		integ := map[string]any{"ApiId": ref(id), "IntegrationType": "AWS_PROXY", "IntegrationUri": lambdaInvocationURI("FunctionArn", fn)}
		if t, ok := spec["IntegrationTimeout"]; ok {
			// A literal is checked here, so the error names the property
			// the template has rather than the integration SAM makes of
			// it; an intrinsic function is checked once resolved, there.
			if !isIntrinsicValue(t) {
				if _, err := integrationTimeout(id, field+".IntegrationTimeout", t); err != nil {
					return err
				}
			}
			integ["TimeoutInMillis"] = t
		}
		if err := add(base+"Integration", "AWS::ApiGatewayV2::Integration", integ); err != nil {
			return err
		}
		perm := map[string]any{"Action": "lambda:InvokeFunction", "FunctionName": fn, "Principal": "apigateway.amazonaws.com",
			"SourceArn": permissionSourceARN(id, stageName, key)}
		if err := add(base+"Permission", "AWS::Lambda::Permission", perm); err != nil {
			return err
		}
	}
	if authType == "CUSTOM" {
		raw, ok := p["Auth"].(map[string]any)
		if !ok || isIntrinsic(raw) { // an intrinsic function: what it resolved to
			raw = auth
		}
		authID := id + "ConnectAuthorizer"
		authName := raw["Name"]
		if authName == nil || authName == "" {
			authName = authID
		}
		authz := map[string]any{"ApiId": ref(id), "AuthorizerType": "REQUEST", "Name": authName,
			"AuthorizerUri": lambdaInvocationURI("AuthArn", raw["AuthArn"])}
		if v, ok := raw["IdentitySource"]; ok {
			authz["IdentitySource"] = v
		}
		if v, ok := raw["InvokeRole"]; ok {
			authz["AuthorizerCredentialsArn"] = v
		}
		if err := add(authID, "AWS::ApiGatewayV2::Authorizer", authz); err != nil {
			return err
		}
		if _, role := raw["InvokeRole"]; !role {
			perm := map[string]any{"Action": "lambda:InvokeFunction", "FunctionName": raw["AuthArn"], "Principal": "apigateway.amazonaws.com",
				"SourceArn": map[string]any{"Fn::Sub": []any{
					"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/authorizers/*",
					map[string]any{"__ApiId__": ref(id)},
				}}}
			if err := add(id+"AuthorizerPermission", "AWS::Lambda::Permission", perm); err != nil {
				return err
			}
		}
	}
	for gid, r := range gen {
		a.stack.resources[gid] = r
	}
	return nil
}

// checkDomain refuses a Domain SAM refuses.
func checkDomain(id string, d map[string]any) error {
	if _, mtls := d["MutualTlsAuthentication"]; mtls {
		return errorf(id, "Properties.Domain.MutualTlsAuthentication", "mutual TLS is not supported for WebSocket APIs")
	}
	if d["DomainName"] == nil || d["CertificateArn"] == nil {
		return errorf(id, "Properties.Domain", "a custom domain needs both DomainName and CertificateArn")
	}
	if ec, ok := d["EndpointConfiguration"].(string); ok && ec != "REGIONAL" {
		return errorf(id, "Properties.Domain.EndpointConfiguration", "%q: want REGIONAL", ec)
	}
	if bp, ok := d["BasePath"].([]any); ok {
		for _, b := range bp {
			path, isStr := b.(string)
			if !isStr {
				return errorf(id, "Properties.Domain.BasePath", "each base path must be a string")
			}
			if invalidBasePath.MatchString(path) {
				return errorf(id, "Properties.Domain.BasePath", "%q: only letters, digits, /, - and _", path)
			}
		}
	}
	return nil
}

var invalidBasePath = regexp.MustCompile(`[^0-9a-zA-Z/\-_]`)

// logicalIDHash is the suffix SAM gives a logical ID it derives from v:
// the first 10 hex digits of the SHA-1 of v, or of its compact JSON with
// sorted keys when v is not a string.
func logicalIDHash(v any) string {
	text, ok := v.(string)
	if !ok {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		text = strings.TrimSuffix(b.String(), "\n")
	}
	sum := sha1.Sum([]byte(text))
	return hex.EncodeToString(sum[:])[:10]
}

// webSocketAuthType checks Auth as SAM does and returns its AuthType as
// written.
func webSocketAuthType(id string, auth map[string]any) (string, error) {
	raw, ok := auth["AuthType"]
	if !ok {
		return "", errorf(id, "Properties.Auth.AuthType", "must be specified for additional auth configurations")
	}
	t, _ := scalarString(raw)
	switch strings.ToUpper(t) {
	case "CUSTOM":
		if v, ok := auth["AuthArn"]; !ok || v == nil || v == "" {
			return "", errorf(id, "Properties.Auth.AuthArn", "must be specified if AuthType is CUSTOM")
		}
	case "AWS_IAM", "NONE":
		if len(auth) > 1 {
			return "", errorf(id, "Properties.Auth", "no additional configurations supported for AuthType %s", strings.ToUpper(t))
		}
	default:
		return "", errorf(id, "Properties.Auth.AuthType", "%q is not one of AWS_IAM, CUSTOM or NONE", t)
	}
	return t, nil
}

// normalizedRouteKey is the part of the generated logical IDs a route
// key gives: Connect, Disconnect and Default for the special routes, the
// key with its first letter upper-case and the rest lower-case for the
// others, which must be alphanumeric.
func normalizedRouteKey(id, field, key string) (string, error) {
	switch key {
	case "$connect", "$disconnect", "$default":
		return capitalize(key[1:]), nil
	}
	if key == "" {
		return "", errorf(id, field, "an empty route key")
	}
	for _, r := range key {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return "", errorf(id, field, "route key %q must be alphanumeric; only $connect, $disconnect and $default special routes are supported", key)
		}
	}
	return capitalize(key), nil
}

func capitalize(s string) string {
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// lambdaInvocationURI is the integration URI API Gateway invokes a
// function by, with the function's ARN as the variable v of a Fn::Sub.
func lambdaInvocationURI(v string, arn any) map[string]any {
	return map[string]any{"Fn::Sub": []any{
		"arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${" + v + "}/invocations",
		map[string]any{v: arn},
	}}
}

// permissionSourceARN is the execute-api ARN of a route, which SAM's
// permission lets invoke the route's function.
func permissionSourceARN(api string, stage any, key string) map[string]any {
	prefix := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${" + api + ".ApiId}/"
	if s, ok := stage.(string); ok {
		return map[string]any{"Fn::Sub": prefix + s + "/" + key}
	}
	return map[string]any{"Fn::Sub": []any{prefix + "${__StageName__}/" + key, map[string]any{"__StageName__": stage}}}
}

// copyProps copies the keys of src that are set into dst.
func copyProps(dst, src map[string]any, keys ...string) {
	for _, k := range keys {
		if v, ok := src[k]; ok && v != nil {
			dst[k] = v
		}
	}
}

func isIntrinsicValue(v any) bool {
	m, ok := v.(map[string]any)
	return ok && isIntrinsic(m)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
