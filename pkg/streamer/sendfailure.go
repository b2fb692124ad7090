package streamer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamer-go/streamer/pkg/connection"
)

// sendFailureEvery is how often one cause of failed sends is logged.
const sendFailureEvery = time.Minute

// Causes of failed sends that only the operator can fix.
const (
	causeCredentials = "no_credentials"
	causeForbidden   = "forbidden"
	causeUnreachable = "endpoint_unreachable"
)

// sendFailureFixes say, for each cause, why sends fail and how to fix it.
var sendFailureFixes = map[string]string{
	causeCredentials: "this process has no AWS credentials to sign @connections calls with. On Lambda, the function's role provides them " +
		"(it needs execute-api:ManageConnections). Against `streamer dev` or another local gateway any static credentials work: " +
		"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. both to \"local\") or build the client from an aws.Config with " +
		"credentials.NewStaticCredentialsProvider(\"local\", \"local\", \"\"), as `streamer dev` does (README, \"Your own app, locally and on Lambda\")",
	causeForbidden: "API Gateway refused the @connections call (403 Forbidden): the credentials need execute-api:ManageConnections on this API " +
		"(arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/POST/@connections/*), and the endpoint must be the API's own " +
		"(https://{api-id}.execute-api.{region}.amazonaws.com/{stage}, or the event's domainName and stage)",
	causeUnreachable: "the management endpoint did not answer: check that the endpoint replies go to (the event's domainName and stage, " +
		"WithReplyEndpoint, or the connection record's) is reachable from this process",
}

// sendFailures logs why messages cannot be sent to clients: one ERROR line
// per cause per minute, with how to fix it, and a count of the failures
// it stood for. Failures that are normal (a connection that has gone, a
// cancelled call) are not its business.
type sendFailures struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	last map[string]time.Time // cause → when it was last logged
	seen map[string]int       // cause → failures since then
}

func newSendFailures(log *slog.Logger, now func() time.Time) *sendFailures {
	return &sendFailures{log: log, now: now, last: map[string]time.Time{}, seen: map[string]int{}}
}

// report logs err if it has a cause the operator must fix, at most once
// per cause per sendFailureEvery.
func (f *sendFailures) report(ctx context.Context, err error) {
	cause := sendFailureCause(err)
	if cause == "" {
		return
	}
	now := f.now()
	f.mu.Lock()
	f.seen[cause]++
	last, logged := f.last[cause]
	if logged && now.Sub(last) < sendFailureEvery {
		f.mu.Unlock()
		return
	}
	n := f.seen[cause]
	f.last[cause], f.seen[cause] = now, 0
	f.mu.Unlock()
	f.log.ErrorContext(ctx, "messages to clients cannot be sent: "+sendFailureFixes[cause],
		slog.String("cause", cause), slog.Int("failures", n), slog.Duration("next_report_after", sendFailureEvery), slog.Any("error", err))
}

// sendFailureCause names the cause of a failed send the operator must fix,
// from the typed errors of the connection package and the AWS SDK; "" for
// any other failure.
func sendFailureCause(err error) string {
	var (
		signing *v4.SigningError
		forbid  *types.ForbiddenException
		resp    *smithyhttp.ResponseError
		send    *smithyhttp.RequestSendError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, connection.ErrNoCredentials), errors.As(err, &signing):
		return causeCredentials
	case errors.As(err, &forbid), errors.As(err, &resp) && resp.Response != nil && resp.HTTPStatusCode() == http.StatusForbidden:
		return causeForbidden
	case errors.As(err, &send) && !errors.Is(err, context.Canceled):
		return causeUnreachable
	}
	return ""
}
