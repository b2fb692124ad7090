package template

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// createTableFields are the AWS::DynamoDB::Table properties that are also
// CreateTable parameters under the same names. StreamSpecification is
// left out: the local runtime delivers streams itself, and DynamoDB-API
// servers such as dynalite have none.
var createTableFields = []string{
	"AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes",
	"BillingMode", "ProvisionedThroughput", "TableClass",
}

// CreateTableInput is the CreateTable call that makes the table.
func (t *Table) CreateTableInput() (*dynamodb.CreateTableInput, error) {
	sub := map[string]any{}
	for _, k := range createTableFields {
		if v, ok := t.Properties[k]; ok {
			sub[k] = numbersAsNumbers(v)
		}
	}
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, errorf(t.LogicalID, "Properties", "%v", err)
	}
	var in dynamodb.CreateTableInput
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, errorf(t.LogicalID, "Properties", "not a table definition: %v", err)
	}
	in.TableName = aws.String(t.Name)
	if in.BillingMode == "" && in.ProvisionedThroughput == nil {
		return nil, errorf(t.LogicalID, "Properties.ProvisionedThroughput", "missing (or set BillingMode PAY_PER_REQUEST)")
	}
	for i, g := range in.GlobalSecondaryIndexes {
		if in.ProvisionedThroughput != nil && g.ProvisionedThroughput == nil {
			return nil, errorf(t.LogicalID, fmt.Sprintf("Properties.GlobalSecondaryIndexes[%d].ProvisionedThroughput", i), "missing")
		}
	}
	return &in, nil
}

// numbersAsNumbers turns numeric strings under ProvisionedThroughput into
// numbers: CloudFormation accepts "5", CreateTable's JSON wants 5.
func numbersAsNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == "ReadCapacityUnits" || k == "WriteCapacityUnits" {
				if s, ok := e.(string); ok {
					e = json.Number(s)
				}
			}
			out[k] = numbersAsNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = numbersAsNumbers(e)
		}
		return out
	}
	return v
}
