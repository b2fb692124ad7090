package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/runtime/template"
)

// createTables creates the template's tables at endpoint, leaving tables
// that exist alone.
func createTables(ctx context.Context, app *template.App, endpoint, region string, logger *slog.Logger) error {
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := dynamodb.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ids := make([]string, 0, len(app.Tables))
	for id := range app.Tables {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		in, err := app.Tables[id].CreateTableInput()
		if err != nil {
			return err
		}
		_, err = client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			logger.Info("stack: table exists", "table", *in.TableName)
			continue
		case err != nil:
			return fmt.Errorf("create table %s (%s) at %s: %w", *in.TableName, id, endpoint, err)
		}
		// The SDK's waiter first retries after 20 s; a local table is
		// ACTIVE within milliseconds, even when the first look still
		// sees it CREATING on a busy machine.
		w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 30*time.Second); err != nil {
			return fmt.Errorf("wait for table %s: %w", *in.TableName, err)
		}
		logger.Info("stack: table created", "table", *in.TableName)
	}
	return nil
}
