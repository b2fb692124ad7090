package dynamo

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Key attributes of the channels table, which channel.DynamoStore uses for
// subscriptions, offset counters and history (see that type for the item
// layout). AttrTTL is shared with the other tables.
const (
	AttrPK = "pk" // partition key
	AttrSK = "sk" // sort key
)

// ChannelsTable returns the channels table name for prefix.
func ChannelsTable(prefix string) string { return prefix + "channels" }

// channelsTable is the channels table: one generic pk/sk table with no
// index and no stream, so every channel operation is a key lookup or a
// Query of one partition.
func channelsTable(prefix string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(ChannelsTable(prefix)),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
	}
}
