package template

// simpleTable reads an AWS::Serverless::SimpleTable into the DynamoDB
// table SAM makes of it: a hash key only, `id` of type String unless
// PrimaryKey says otherwise, on-demand billing unless
// ProvisionedThroughput is set.
//
// See https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-simpletable.html
func (a *App) simpleTable(id string) error {
	p, err := a.props(id)
	if err != nil {
		return err
	}
	name, typ := "id", "String"
	if pk, has := p["PrimaryKey"]; has {
		m, ok := pk.(map[string]any)
		if !ok {
			return errorf(id, "Properties.PrimaryKey", "want an object with Name and Type, got %s", describe(pk))
		}
		if name = str(m, "Name"); name == "" {
			return errorf(id, "Properties.PrimaryKey.Name", "missing")
		}
		if typ = str(m, "Type"); typ == "" {
			return errorf(id, "Properties.PrimaryKey.Type", "missing")
		}
	}
	attrType, ok := map[string]string{"String": "S", "Number": "N", "Binary": "B"}[typ]
	if !ok {
		return errorf(id, "Properties.PrimaryKey.Type", "%q: want String, Number or Binary", typ)
	}
	props := map[string]any{
		"AttributeDefinitions": []any{map[string]any{"AttributeName": name, "AttributeType": attrType}},
		"KeySchema":            []any{map[string]any{"AttributeName": name, "KeyType": "HASH"}},
	}
	if pt, has := p["ProvisionedThroughput"]; has {
		props["ProvisionedThroughput"] = pt
	} else {
		props["BillingMode"] = "PAY_PER_REQUEST"
	}
	if tn, has := p["TableName"]; has {
		props["TableName"] = tn
	}
	for _, k := range []string{"SSESpecification", "PointInTimeRecoverySpecification"} {
		if _, has := p[k]; has {
			a.unsupported("%s: %s is not emulated", id, k)
		}
	}
	a.Tables[id] = &Table{LogicalID: id, Name: a.physicalName(id), Properties: props}
	return nil
}
