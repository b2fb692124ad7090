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
	// AttrTTL is the expiry of both tables' items in Unix seconds, the
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
)

// Global secondary index names. Every index projects all attributes, so a
// list is one Query with no follow-up reads.
const (
	IndexConnectionsByUser    = "user_id-index"
	IndexConnectionsByTenant  = "tenant_id-index"
	IndexRequestsByConnection = "connection_id-created_at-index"
	IndexRequestsByUser       = "user_id-created_at-index"
)

// TimeLayout is how timestamps are stored: UTC, fixed width, nanoseconds,
// so that string order is time order (the request indexes sort on
// created_at and lease expiry is a string comparison in conditions).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// ConnectionsTable returns the connections table name for prefix.
func ConnectionsTable(prefix string) string { return prefix + "connections" }

// RequestsTable returns the requests table name for prefix.
func RequestsTable(prefix string) string { return prefix + "requests" }

// Tables returns the definitions of the connections and requests tables,
// in that order. They are the one schema: CreateTables uses them and the
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
			},
			KeySchema: []types.KeySchemaElement{hash(AttrRequestID)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				index(IndexRequestsByConnection, hash(AttrConnectionID), rng(AttrCreatedAt)),
				index(IndexRequestsByUser, hash(AttrUserID), rng(AttrCreatedAt)),
			},
			StreamSpecification: &types.StreamSpecification{
				StreamEnabled:  aws.Bool(true),
				StreamViewType: types.StreamViewTypeNewAndOldImages,
			},
		},
	}
}
