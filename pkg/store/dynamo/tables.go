package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableClient is the part of *dynamodb.Client that CreateTables uses.
type TableClient interface {
	dynamodb.DescribeTableAPIClient
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// TableResult says what CreateTables did to one table.
type TableResult struct {
	Table string
	// Created is false when the table already existed.
	Created bool
	// TTLEnabled reports that TTL on AttrTTL is enabled (or being enabled).
	TTLEnabled bool
	// TTLUnsupported is set when the server does not implement
	// UpdateTimeToLive (dynalite): items then never expire on their own,
	// though the store still hides them from reads.
	TTLUnsupported error
}

// ActiveTimeout bounds how long CreateTables waits for a new table to
// become ACTIVE.
const ActiveTimeout = 5 * time.Minute

// CreateTables creates the tables of Tables(prefix) that do not exist
// yet, waits until they are ACTIVE and enables TTL on AttrTTL. Running it
// again changes nothing, so it is safe at every deploy or test start. It
// does not alter an existing table whose definition differs.
func CreateTables(ctx context.Context, client TableClient, prefix string) ([]TableResult, error) {
	defs := Tables(prefix)
	results := make([]TableResult, len(defs))
	// Create every table first, then wait: the tables become ACTIVE in
	// parallel, which halves the wait on a fresh server.
	for i, def := range defs {
		created, err := createTable(ctx, client, def)
		results[i] = TableResult{Table: aws.ToString(def.TableName), Created: created}
		if err != nil {
			return results[:i], err
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	for i, def := range defs {
		res := &results[i]
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: def.TableName}, ActiveTimeout); err != nil {
			return results, fmt.Errorf("dynamo: wait for table %s: %w", res.Table, err)
		}
		var err error
		res.TTLEnabled, res.TTLUnsupported, err = enableTTL(ctx, client, def.TableName)
		if err != nil {
			return results, fmt.Errorf("dynamo: enable TTL on %s: %w", res.Table, err)
		}
	}
	return results, nil
}

// createTable creates the table unless it exists and reports whether it
// did.
func createTable(ctx context.Context, client TableClient, def *dynamodb.CreateTableInput) (bool, error) {
	name := aws.ToString(def.TableName)
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: def.TableName})
	var missing *types.ResourceNotFoundException
	if err == nil {
		return false, nil
	}
	if !errors.As(err, &missing) {
		return false, fmt.Errorf("dynamo: describe table %s: %w", name, err)
	}
	_, err = client.CreateTable(ctx, def)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse): // created meanwhile by someone else
		return false, nil
	case err != nil:
		return false, fmt.Errorf("dynamo: create table %s: %w", name, err)
	}
	return true, nil
}

func enableTTL(ctx context.Context, client TableClient, table *string) (enabled bool, unsupported, err error) {
	desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: table})
	if unknownOperation(err) {
		return false, err, nil
	}
	if err != nil {
		return false, nil, err
	}
	if d := desc.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == AttrTTL &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return true, nil, nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if unknownOperation(err) {
		return false, err, nil
	}
	if err != nil {
		return false, nil, err
	}
	return true, nil, nil
}
