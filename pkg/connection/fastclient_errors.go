package connection

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamer-go/streamer/pkg/connection/internal/httppool"
)

// The FastClient's errors are built in the SDK's shape, so that code
// written against the SDK client (errors.As with *types.GoneException,
// awshttp.ResponseError's HTTPStatusCode and ServiceRequestID, the
// Manager's classify) works unchanged with either client.

// serviceID is the SDK's ServiceID of the management API, as its
// OperationError names it.
const serviceID = "ApiGatewayManagementApi"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = httppool.MaxBody

func operationError(op string, err error) error {
	return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
}

// invalidParams is the error for a call missing a required field, like
// the SDK's validation middleware returns.
func invalidParams(op, field string) error {
	e := smithy.InvalidParamsError{Context: op + "Input"}
	e.Add(smithy.NewErrParamRequired(field))
	return operationError(op, e)
}

// sendError wraps a transport failure as the SDK does, so classify sees a
// network error.
func sendError(err error) error {
	return &smithyhttp.RequestSendError{Err: err}
}

// responseError turns a non-2xx answer into the SDK's error: the type is
// named by the X-Amzn-Errortype header, the message is in the JSON body.
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()

	var doc struct {
		Message *string `json:"message"`
		Type    string  `json:"__type"`
		Code    string  `json:"code"`
	}
	_ = json.Unmarshal(body, &doc) // a body that is not JSON leaves the message empty
	code := errorCode(resp.Header.Get("X-Amzn-Errortype"))
	if code == "" {
		code = errorCode(doc.Type)
	}
	if code == "" {
		code = errorCode(doc.Code)
	}
	var apiErr error
	switch code {
	case "GoneException":
		apiErr = &types.GoneException{Message: doc.Message}
	case "ForbiddenException":
		apiErr = &types.ForbiddenException{Message: doc.Message}
	case "LimitExceededException":
		apiErr = &types.LimitExceededException{Message: doc.Message}
	case "PayloadTooLargeException":
		apiErr = &types.PayloadTooLargeException{Message: doc.Message}
	default:
		if code == "" {
			code = "UnknownError"
		}
		fault := smithy.FaultClient
		if resp.StatusCode >= 500 {
			fault = smithy.FaultServer
		}
		apiErr = &smithy.GenericAPIError{Code: code, Message: aws.ToString(doc.Message), Fault: fault}
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiErr},
		RequestID:     requestID(resp.Header),
	}
}

// errorCode strips what AWS may append or prepend to an error type:
// "GoneException:http://..." or "aws.protocols#GoneException".
func errorCode(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[:i]
	}
	if i := strings.LastIndexByte(v, '#'); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

func requestID(h http.Header) string {
	if id := h.Get("X-Amzn-Requestid"); id != "" {
		return id
	}
	return h.Get("X-Amz-Request-Id")
}

// discard drains and closes a successful answer so that its connection
// goes back to the pool.
func discard(resp *http.Response) {
	if resp.Body == http.NoBody {
		return // the pool's answer to a POST: nothing to read or close
	}
	// A stack buffer: a success is usually empty, and this runs once per
	// message.
	var buf [512]byte
	for n := 0; n < maxErrorBody; {
		m, err := resp.Body.Read(buf[:])
		n += m
		if err != nil {
			break
		}
	}
	resp.Body.Close()
}

// getConnectionBody is GET /@connections/{id}'s answer.
type getConnectionBody struct {
	ConnectedAt string `json:"connectedAt"`
	Identity    *struct {
		SourceIP  *string `json:"sourceIp"`
		UserAgent *string `json:"userAgent"`
	} `json:"identity"`
	LastActiveAt string `json:"lastActiveAt"`
}

func decodeGetConnection(op string, resp *http.Response) (*apigatewaymanagementapi.GetConnectionOutput, error) {
	defer discard(resp)
	var doc getConnectionBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&doc); err != nil {
		return nil, operationError(op, &smithy.DeserializationError{Err: fmt.Errorf("decode GetConnection body: %w", err)})
	}
	out := &apigatewaymanagementapi.GetConnectionOutput{}
	var err error
	if out.ConnectedAt, err = isoTime(doc.ConnectedAt); err != nil {
		return nil, operationError(op, &smithy.DeserializationError{Err: err})
	}
	if out.LastActiveAt, err = isoTime(doc.LastActiveAt); err != nil {
		return nil, operationError(op, &smithy.DeserializationError{Err: err})
	}
	if doc.Identity != nil {
		out.Identity = &types.Identity{SourceIp: doc.Identity.SourceIP, UserAgent: doc.Identity.UserAgent}
	}
	return out, nil
}

// isoTime parses the ISO-8601 times of GET @connections; "" is absent.
func isoTime(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, fmt.Errorf("decode GetConnection time %q: %w", v, err)
	}
	return &t, nil
}
