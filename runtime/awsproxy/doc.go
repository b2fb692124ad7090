// Package awsproxy routes the AWS API calls of local functions to the
// local runtime, with no change to the functions' code.
//
// Code written for Lambda reaches AWS by hostname: the @connections API at
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}, DynamoDB at
// dynamodb.{region}.amazonaws.com, Lambda at lambda.{region}.amazonaws.com.
// A [Proxy] serves those names on loopback, over TLS with certificates
// from the local authority (tlsmux) that the functions trust, and hands
// each request to the local server of its service ([Config]).
//
// Each function gets a door of its own ([Proxy.Listen]), so every call
// is known by its caller. A door is two things on one port:
//
//   - an HTTPS proxy (HTTP CONNECT), which Python (botocore), Go
//     (aws-sdk-go-v2, net/http) and most HTTP clients use when HTTPS_PROXY
//     names it;
//   - a TLS server that picks the service by the name the client asks for
//     (SNI), and the same over plain HTTP by the Host header, for the
//     Node.js AWS SDKs (v3 and v2), which ignore HTTPS_PROXY: a module
//     preloaded with NODE_OPTIONS ([WriteNodeHook]) sends their https
//     requests to *.amazonaws.com to the door over plain HTTP on
//     loopback, through one keep-alive Agent per process (SDK clients
//     built per invocation would otherwise open fresh TLS sockets each
//     time), and other TLS connections to those hosts to the door's TLS
//     server. It does the same for the local servers [LocalHTTPEnv]
//     names (the gateway's domainName).
//
// [Env] is the environment that sets both up.
//
// A call to an AWS service the local runtime does not serve fails at once:
// the door answers 501 with the error shape of the service's protocol
// (JSON with X-Amzn-ErrorType, or XML), error code NotEmulated, so the SDK
// raises an error that says so instead of timing out, and the proxy logs
// one line "not emulated: <service> called by <function>" per service and
// function. Connections to hosts that are not AWS's are tunnelled as any
// HTTPS proxy does.
//
// Limits: only HTTPS is routed (plain http:// calls to AWS hostnames go
// where DNS sends them); a Node.js https request the hook reroutes runs
// over plain HTTP, so its socket has no certificate to inspect (the
// response and the signature are the same); a client that ignores HTTPS_PROXY and is not
// Node.js (a hand-rolled socket, curl without the variable) reaches the
// real hostname; execute-api is served for the template's API in the
// configured Region only, and DynamoDB and Lambda in that Region only.
//
// See https://docs.aws.amazon.com/general/latest/gr/rande.html for the
// service endpoints it recognises.
package awsproxy
