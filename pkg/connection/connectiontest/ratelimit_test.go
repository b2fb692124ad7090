package connectiontest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
)

// A burst beyond the bucket is answered 429 LimitExceededException and
// not delivered. The rate is tiny, so no token comes back during the
// test however slow the machine.
func TestServerRateLimitAnswers429BeyondTheBurst(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	c := srv.FastClient()
	defer c.CloseIdleConnections()
	srv.SetRateLimit(0.001, 5)
	ctx := context.Background()
	var ok, limited int
	for i := range 8 {
		id := fmt.Sprintf("c%d", i)
		_, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("m")})
		var le *types.LimitExceededException
		switch {
		case err == nil:
			ok++
		case errors.As(err, &le):
			limited++
			if len(srv.Received(id)) != 0 {
				t.Errorf("%s throttled but delivered", id)
			}
		default:
			t.Fatalf("%s: %v", id, err)
		}
	}
	if ok != 5 || limited != 3 || srv.RateLimited() != 3 {
		t.Errorf("ok %d, limited %d (server says %d), want 5 and 3", ok, limited, srv.RateLimited())
	}
	srv.SetRateLimit(0, 0)
	if _, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("after"), Data: []byte("m")}); err != nil {
		t.Errorf("after removing the limit: %v", err)
	}
}

func TestServerFailRandomlyFailsAboutThatShareBeforeDelivery(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	c := srv.FastClient()
	defer c.CloseIdleConnections()
	srv.FailRandomly(0.5)
	ctx := context.Background()
	const n = 400
	failed := 0
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		_, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("m")})
		if err != nil {
			failed++
			if len(srv.Received(id)) != 0 {
				t.Errorf("%s failed but delivered", id)
			}
		}
	}
	// Binomial(400, 0.5): outside 120..280 has probability ~1e-20.
	if failed < 120 || failed > 280 || failed != srv.RandomlyFailed() {
		t.Errorf("failed %d of %d (server says %d)", failed, n, srv.RandomlyFailed())
	}
}
