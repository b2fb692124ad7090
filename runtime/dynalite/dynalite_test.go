package dynalite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/runtime/dynalite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tools is the repository's .tools, where `make tools` installs dynalite.
const tools = "../../.tools"

func TestStartServesTheDynamoDBAPI(t *testing.T) {
	if _, err := os.Stat(tools + "/node_modules/dynalite/cli.js"); err != nil {
		if os.Getenv("STREAMER_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("dynalite is not installed in .tools: run `make tools`")
		}
		t.Skip("dynalite is not installed in .tools: run `make tools`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := dynalite.Start(ctx, dynalite.Options{Dirs: []string{t.TempDir(), tools}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")},
		func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(s.Endpoint) })
	_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("things"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("things"), Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "a"}}}); err != nil {
		t.Fatal(err)
	}
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("things")})
	if err != nil || out.Count != 1 {
		t.Fatalf("scan: %v, %v", out, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Error("the server still answers after Close")
	}
}

func TestStartWithoutDynaliteSaysSo(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	_, err := dynalite.Start(context.Background(), dynalite.Options{Dirs: []string{t.TempDir()}})
	if !errors.Is(err, dynalite.ErrNotAvailable) {
		t.Fatalf("%v, want ErrNotAvailable", err)
	}
}
