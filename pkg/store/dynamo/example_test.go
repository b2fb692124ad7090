package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

// Create the tables once, then use one Store for connections and
// requests. Against a local server such as dynalite, set BaseEndpoint.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:4567") // omit for AWS
	})
	if _, err := dynamo.CreateTables(ctx, client, "myapp-"); err != nil {
		log.Fatal(err)
	}
	s := dynamo.New(client, dynamo.WithPrefix("myapp-"))

	// A worker claims a queued request; a second worker loses the race.
	if _, err := s.Claim(ctx, "r-1", "worker-a", time.Minute); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Claim(ctx, "r-1", "worker-b", time.Minute); errors.Is(err, store.ErrConflict) {
		fmt.Println("already claimed")
	}
}

// UnmarshalRequest decodes a requests-table item, for example the new
// image of a DynamoDB Streams record.
func ExampleUnmarshalRequest() {
	image := map[string]types.AttributeValue{
		dynamo.AttrRequestID:    &types.AttributeValueMemberS{Value: "r-1"},
		dynamo.AttrConnectionID: &types.AttributeValueMemberS{Value: "L0SM9cOFvHcCIhw="},
		dynamo.AttrAction:       &types.AttributeValueMemberS{Value: "report"},
		dynamo.AttrPayload:      &types.AttributeValueMemberS{Value: `{"month":"2026-11"}`},
		dynamo.AttrStatus:       &types.AttributeValueMemberS{Value: "PENDING"},
		dynamo.AttrAttempts:     &types.AttributeValueMemberN{Value: "0"},
		dynamo.AttrCreatedAt:    &types.AttributeValueMemberS{Value: "2026-11-27T12:00:00.000000000Z"},
	}
	r, err := dynamo.UnmarshalRequest(image)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.RequestID, r.Status, r.Action, string(r.Payload), r.CreatedAt.Format(time.RFC3339))
	// Output: r-1 PENDING report {"month":"2026-11"} 2026-11-27T12:00:00Z
}
