package connection

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// kind is what went wrong with one call to API Gateway, decided from the
// SDK's typed errors and the HTTP status, never from error text.
type kind int

const (
	kindOK kind = iota
	kindGone
	kindThrottled
	kindServerError
	kindForbidden
	kindPayloadTooLarge
	kindNetwork
	kindCircuitOpen
	kindNotFound
	kindClientError // another 4xx: the request is wrong, retrying will not help
	kindCanceled    // the caller's context ended or the manager stopped
	kindInvalid     // the message could not be encoded
	kindOther       // anything else (credentials, endpoint resolution, ...)
	kindNotOwn      // 410 from an endpoint not known to be the connection's own
	numKinds
)

// names are the keys of GetMetrics' errors_by_type and the Prometheus
// "type" label.
var kindNames = [numKinds]string{
	kindOK:              "ok",
	kindGone:            "gone",
	kindThrottled:       "throttled",
	kindServerError:     "server_error",
	kindForbidden:       "forbidden",
	kindPayloadTooLarge: "payload_too_large",
	kindNetwork:         "network",
	kindCircuitOpen:     "circuit_open",
	kindNotFound:        "not_found",
	kindClientError:     "client_error",
	kindCanceled:        "canceled",
	kindInvalid:         "invalid_message",
	kindOther:           "other",
	kindNotOwn:          "not_own_endpoint",
}

func (k kind) String() string { return kindNames[k] }

// retryable reports whether another attempt may succeed: the gateway
// rejected the attempt (5xx, 429) or the network failed.
func (k kind) retryable() bool {
	return k == kindThrottled || k == kindServerError || k == kindNetwork
}

// tripsBreaker reports whether a call that ended with k counts as a
// failure for the connection's circuit breaker. A gone connection, a
// forbidden call or an oversize message says nothing about the
// connection's health, and a cancelled call is the caller's choice.
func (k kind) tripsBreaker() bool { return k.retryable() || k == kindOther }

// classify decides the kind of a failed attempt's error (the caller's
// cancellation and the manager's stop are told apart before). timedOut
// says the attempt's own timeout cut it short: a timeout, which may or may
// not have reached the gateway.
func classify(err error, timedOut bool) kind {
	if err == nil {
		return kindOK
	}
	var (
		gone     *types.GoneException
		limit    *types.LimitExceededException
		tooLarge *types.PayloadTooLargeException
		forbid   *types.ForbiddenException
	)
	switch {
	case errors.As(err, &gone):
		return kindGone
	case errors.As(err, &limit):
		return kindThrottled
	case errors.As(err, &tooLarge):
		return kindPayloadTooLarge
	case errors.As(err, &forbid):
		return kindForbidden
	}
	if timedOut {
		return kindNetwork
	}
	var (
		send    *smithyhttp.RequestSendError
		timeout *awshttp.ResponseTimeoutError
	)
	if errors.As(err, &send) || errors.As(err, &timeout) {
		return kindNetwork
	}
	// The SDK wraps transport failures in a ResponseError too, with no
	// response (status 0); those were caught above.
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && resp.Response != nil {
		return kindOfStatus(resp.HTTPStatusCode())
	}
	return kindOther
}

func kindOfStatus(status int) kind {
	switch {
	case status == http.StatusGone:
		return kindGone
	case status == http.StatusTooManyRequests:
		return kindThrottled
	case status == http.StatusRequestEntityTooLarge:
		return kindPayloadTooLarge
	case status == http.StatusForbidden:
		return kindForbidden
	case status >= 500:
		return kindServerError
	case status >= 400:
		return kindClientError
	}
	return kindOther
}
