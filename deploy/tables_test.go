package deploy

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

// cfnTable is an AWS::DynamoDB::Table's properties as far as Streamer's
// schema goes. The template's tables are decoded into it strictly, so a
// property the schema does not have (provisioned throughput, a local
// index, ...) fails the comparison.
type cfnTable struct {
	TableName               string
	BillingMode             string
	AttributeDefinitions    []cfnAttribute
	KeySchema               []cfnKey
	GlobalSecondaryIndexes  []cfnIndex
	StreamSpecification     *struct{ StreamViewType string }
	TimeToLiveSpecification *struct {
		AttributeName string
		Enabled       bool
	}
}

type cfnAttribute struct{ AttributeName, AttributeType string }

type cfnKey struct{ AttributeName, KeyType string }

type cfnIndex struct {
	IndexName  string
	KeySchema  []cfnKey
	Projection struct {
		ProjectionType   string
		NonKeyAttributes []string `json:",omitempty"`
	}
}

// normalise sorts what DynamoDB treats as a set (attribute definitions,
// indexes), keeping key schemas in order: HASH before RANGE matters.
func (c *cfnTable) normalise() {
	slices.SortFunc(c.AttributeDefinitions, func(a, b cfnAttribute) int { return strings.Compare(a.AttributeName, b.AttributeName) })
	slices.SortFunc(c.GlobalSecondaryIndexes, func(a, b cfnIndex) int { return strings.Compare(a.IndexName, b.IndexName) })
}

// fromSchema translates one of dynamo.Tables' definitions into
// CloudFormation's terms. A field the translation does not cover fails the
// test: when the schema grows (say, provisioned throughput), this test and
// the template must grow with it.
func fromSchema(t testing.TB, in *dynamodb.CreateTableInput) cfnTable {
	t.Helper()
	onlySet(t, "CreateTableInput", *in, "TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "StreamSpecification")
	c := cfnTable{
		TableName:   aws.ToString(in.TableName),
		BillingMode: string(in.BillingMode),
		// The code enables TTL with a separate call (CreateTables); the
		// template declares it on the table.
		TimeToLiveSpecification: &struct {
			AttributeName string
			Enabled       bool
		}{dynamo.AttrTTL, true},
	}
	for _, a := range in.AttributeDefinitions {
		c.AttributeDefinitions = append(c.AttributeDefinitions, cfnAttribute{aws.ToString(a.AttributeName), string(a.AttributeType)})
	}
	keys := func(ks []types.KeySchemaElement) []cfnKey {
		var out []cfnKey
		for _, k := range ks {
			out = append(out, cfnKey{aws.ToString(k.AttributeName), string(k.KeyType)})
		}
		return out
	}
	c.KeySchema = keys(in.KeySchema)
	for _, g := range in.GlobalSecondaryIndexes {
		onlySet(t, "GlobalSecondaryIndex", g, "IndexName", "KeySchema", "Projection")
		idx := cfnIndex{IndexName: aws.ToString(g.IndexName), KeySchema: keys(g.KeySchema)}
		idx.Projection.ProjectionType = string(g.Projection.ProjectionType)
		idx.Projection.NonKeyAttributes = g.Projection.NonKeyAttributes
		c.GlobalSecondaryIndexes = append(c.GlobalSecondaryIndexes, idx)
	}
	// CloudFormation has no StreamEnabled: a StreamSpecification means on.
	if s := in.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
		c.StreamSpecification = &struct{ StreamViewType string }{string(s.StreamViewType)}
	}
	c.normalise()
	return c
}

// onlySet fails if v (a struct) has a non-zero exported field outside
// allowed.
func onlySet(t testing.TB, what string, v any, allowed ...string) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if f.IsExported() && !rv.Field(i).IsZero() && !slices.Contains(allowed, f.Name) {
			t.Errorf("dynamo.Tables sets %s.%s, which this test does not translate to CloudFormation: extend fromSchema and the template", what, f.Name)
		}
	}
}

// templateTables returns the template's tables by resolved name.
func templateTables(t testing.TB, s *stack) map[string]cfnTable {
	t.Helper()
	out := map[string]cfnTable{}
	for _, name := range s.tpl.resourcesOfType("AWS::DynamoDB::Table") {
		// A stack deleted by mistake, or an update that replaces a table
		// (a changed key schema), must not take the data with it.
		if r := s.tpl.Resources[name]; r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
			t.Errorf("table %s: DeletionPolicy %q, UpdateReplacePolicy %q: want Retain for both", name, r.DeletionPolicy, r.UpdateReplacePolicy)
		}
		var c cfnTable
		if err := decodeStrict(s.resolved(t, name), &c); err != nil {
			t.Fatalf("table %s: %v", name, err)
		}
		c.normalise()
		if _, dup := out[c.TableName]; dup {
			t.Fatalf("two tables are named %s", c.TableName)
		}
		out[c.TableName] = c
	}
	return out
}

// The template's tables are exactly dynamo.Tables(prefix), for the default
// prefix and another one, so the prefix parameter really reaches the
// names.
func TestTablesAreTheStoreSchema(t *testing.T) {
	checkTablesAreTheStoreSchema(t, loadTemplate(t, templateFile))
}

func checkTablesAreTheStoreSchema(t testing.TB, tpl *template) {
	for _, prefix := range []string{"", "app-1.staging_"} {
		overrides := map[string]string{}
		want := dynamo.Tables(tpl.Parameters["TablePrefix"].Default.(string))
		if prefix != "" {
			overrides["TablePrefix"] = prefix
			want = dynamo.Tables(prefix)
		}
		s, err := newStack(tpl, overrides)
		if err != nil {
			t.Fatal(err)
		}
		got := templateTables(t, s)
		if len(got) != len(want) {
			t.Errorf("prefix %q: template has %d tables, dynamo.Tables has %d", prefix, len(got), len(want))
		}
		for _, def := range want {
			name := aws.ToString(def.TableName)
			g, ok := got[name]
			if !ok {
				t.Errorf("prefix %q: no table named %s in the template (it has %v)", prefix, name, slicesOfKeys(got))
				continue
			}
			if w := fromSchema(t, def); !reflect.DeepEqual(g, w) {
				t.Errorf("prefix %q: table %s differs from dynamo.Tables:\ntemplate: %s\nschema:   %s", prefix, name, jsonText(g), jsonText(w))
			}
		}
	}
}

// The default prefix of the template is the code's, so a stack deployed
// with defaults and `streamer tables create` name the same tables.
func TestTablePrefixDefaultIsTheCodes(t *testing.T) {
	checkTablePrefixDefaultIsTheCodes(t, loadTemplate(t, templateFile))
}

func checkTablePrefixDefaultIsTheCodes(t testing.TB, tpl *template) {
	if got := tpl.Parameters["TablePrefix"].Default; got != dynamo.DefaultPrefix {
		t.Errorf("TablePrefix default = %v, want dynamo.DefaultPrefix %q", got, dynamo.DefaultPrefix)
	}
}

func slicesOfKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
