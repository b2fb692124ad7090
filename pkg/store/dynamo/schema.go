package dynamo

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultPrefix prefixes the table names when no other prefix is given:
// the tables are then "streamer-connections" and "streamer-requests".
const DefaultPrefix = "streamer-"

// Attribute names of the connections table.
const (
	AttrConnectionID = "connection_id" // partition key
	AttrUserID       = "user_id"       // key of IndexConnectionsByUser (absent when anonymous)
	AttrTenantID     = "tenant_id"     // key of IndexConnectionsByTenant (absent when none)
	AttrEndpoint     = "endpoint"
	AttrConnectedAt  = "connected_at" // timestamps: see TimeLayout
	AttrLastPing     = "last_ping"
	AttrPermissions  = "permissions" // list of strings
	AttrMetadata     = "metadata"    // map of strings
	// AttrTTL is the expiry of every table's items in Unix seconds, the
	// table's DynamoDB TTL attribute. Absent means no expiry.
	AttrTTL = "ttl"
)

// Attribute names of the requests table. AttrConnectionID, AttrUserID,
// AttrTenantID and AttrTTL are shared with the connections table.
const (
	AttrRequestID       = "request_id" // partition key
	AttrClientRequestID = "client_request_id"
	AttrAction          = "action"
	AttrPayload         = "payload" // JSON text (S)
	AttrStatus          = "status"  // one of the store.Status values (S)
	AttrProgress        = "progress"
	AttrProgressMessage = "progress_message"
	AttrResult          = "result" // JSON text (S)
	AttrError           = "error"  // map {code, message}
	AttrAttempts        = "attempts"
	AttrLeaseOwner      = "lease_owner"
	AttrLeaseUntil      = "lease_until"
	AttrCreatedAt       = "created_at" // sort key of both request indexes
	AttrUpdatedAt       = "updated_at"
	AttrStartedAt       = "started_at"
	AttrCompletedAt     = "completed_at"
	// AttrPermissions (shared with the connections table) holds the
	// sender's permissions on a request too: a list of strings.

	// AttrSweepShard and AttrSweepKey key IndexRequestsToSweep. Both are
	// present only while a request is PENDING or PROCESSING; the terminal
	// transitions remove them in the same conditional update, so the
	// index holds active requests only. The shard is a function of the
	// request id (see SweepShards); the sweep key is the request's status
	// and the time from which it counts as stalled, in TimeLayout:
	// "PENDING#<updated_at>" or "PROCESSING#<lease_until>", so that each
	// status's keys sort by that time.
	AttrSweepShard = "sweep_shard"
	AttrSweepKey   = "sweep_key"
)

// SweepShards is how many partitions IndexRequestsToSweep spreads active
// requests over. One fixed partition key would put every enqueue, claim,
// lease renewal and completion of the whole application on one index
// partition (about 1,000 writes/s); sixteen spread them, at the price of
// two Query calls per shard in each ListStalled pass.
const SweepShards = 16

// Global secondary index names. The list indexes project all attributes,
// so a list is one Query with no follow-up reads.
const (
	IndexConnectionsByUser    = "user_id-index"
	IndexConnectionsByTenant  = "tenant_id-index"
	IndexRequestsByConnection = "connection_id-created_at-index"
	IndexRequestsByUser       = "user_id-created_at-index"
	// IndexRequestsToSweep is the sparse index of active requests that
	// ListStalled queries instead of scanning the table. It projects keys
	// only: progress updates then never write to it, and ListStalled
	// re-reads each candidate with a consistent GetItem anyway, because
	// the index is eventually consistent.
	IndexRequestsToSweep = "sweep_shard-sweep_key-index"
)

// TimeLayout is how timestamps are stored: UTC, fixed width, nanoseconds,
// so that string order is time order (the request indexes sort on
// created_at and lease expiry is a string comparison in conditions).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// ConnectionsTable returns the connections table name for prefix.
func ConnectionsTable(prefix string) string { return prefix + "connections" }

// RequestsTable returns the requests table name for prefix.
func RequestsTable(prefix string) string { return prefix + "requests" }

// Tables returns the definitions of the connections, requests and channels
// tables, in that order. They are the one schema: CreateTables uses them and the
// deployment template must match them. Both tables bill on demand and the
// requests table streams new and old images for the async processor.
// Enable TTL on AttrTTL separately (CreateTables does).
func Tables(prefix string) []*dynamodb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	hash := func(name string) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: types.KeyTypeHash}
	}
	rng := func(name string) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: types.KeyTypeRange}
	}
	index := func(name string, keys ...types.KeySchemaElement) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName:  aws.String(name),
			KeySchema:  keys,
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}
	}
	keysOnly := func(g types.GlobalSecondaryIndex) types.GlobalSecondaryIndex {
		g.Projection = &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}
		return g
	}
	return []*dynamodb.CreateTableInput{
		{
			TableName:            aws.String(ConnectionsTable(prefix)),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(AttrConnectionID), str(AttrUserID), str(AttrTenantID)},
			KeySchema:            []types.KeySchemaElement{hash(AttrConnectionID)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				index(IndexConnectionsByUser, hash(AttrUserID)),
				index(IndexConnectionsByTenant, hash(AttrTenantID)),
			},
		},
		{
			TableName:   aws.String(RequestsTable(prefix)),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				str(AttrRequestID), str(AttrConnectionID), str(AttrUserID), str(AttrCreatedAt),
				str(AttrSweepShard), str(AttrSweepKey),
			},
			KeySchema: []types.KeySchemaElement{hash(AttrRequestID)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				index(IndexRequestsByConnection, hash(AttrConnectionID), rng(AttrCreatedAt)),
				index(IndexRequestsByUser, hash(AttrUserID), rng(AttrCreatedAt)),
				keysOnly(index(IndexRequestsToSweep, hash(AttrSweepShard), rng(AttrSweepKey))),
			},
			StreamSpecification: &types.StreamSpecification{
				StreamEnabled:  aws.Bool(true),
				StreamViewType: types.StreamViewTypeNewAndOldImages,
			},
		},
		channelsTable(prefix),
	}
}
