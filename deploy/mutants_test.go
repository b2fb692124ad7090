package deploy

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// checks are the template checks, by name; each TestX runs checkX on
// template.json.
var checks = map[string]func(testing.TB, *template){
	"TemplateIsValidSAM":                  checkTemplateIsValidSAM,
	"TablesAreTheStoreSchema":             checkTablesAreTheStoreSchema,
	"TablePrefixDefaultIsTheCodes":        checkTablePrefixDefaultIsTheCodes,
	"FunctionsRunTheExampleBinary":        checkFunctionsRunTheExampleBinary,
	"EnvironmentIsReadByConfigFromEnv":    checkEnvironmentIsReadByConfigFromEnv,
	"EnvironmentGivesTheDeployedConfig":   checkEnvironmentGivesTheDeployedConfig,
	"RulesRefuseWhatConfigFromEnvRefuses": checkRulesRefuseWhatConfigFromEnvRefuses,
	"RoutesReachTheirHandlers":            checkRoutesReachTheirHandlers,
	"PoliciesCoverWhatTheHandlersDo":      checkPoliciesCoverWhatTheHandlersDo,
	"StreamEventSource":                   checkStreamEventSource,
	"StreamFilterSelectsPendingRequests":  checkStreamFilterSelectsPendingRequests,
	"SweepSchedule":                       checkSweepSchedule,
}

// The checks can fail: each mistake below, made in a copy of template.json,
// is caught by the check named beside it. They are the mistakes an earlier
// implementation's templates made (tables and variables the code never
// read) and their neighbours.
func TestChecksCatchBrokenTemplates(t *testing.T) {
	raw, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ check, old, new string }{
		{"TablesAreTheStoreSchema", `"IndexName": "user_id-index"`, `"IndexName": "user-index"`},
		{"TablesAreTheStoreSchema", `{"AttributeName": "created_at", "KeyType": "RANGE"}`, `{"AttributeName": "updated_at", "KeyType": "RANGE"}`},
		{"TablesAreTheStoreSchema", `"Projection": {"ProjectionType": "ALL"}`, `"Projection": {"ProjectionType": "KEYS_ONLY"}`},
		{"TablesAreTheStoreSchema", `"StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},`, `"StreamSpecification": {"StreamViewType": "KEYS_ONLY"},`},
		{"TablesAreTheStoreSchema", `"TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": true}`, `"TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": true}`},
		{"TablesAreTheStoreSchema", `"BillingMode": "PAY_PER_REQUEST",`, `"BillingMode": "PAY_PER_REQUEST", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},`},
		{"TablesAreTheStoreSchema", `${TablePrefix}requests`, `streamer-requests`},
		{"TablePrefixDefaultIsTheCodes", `"Default": "streamer-"`, `"Default": "app-"`},
		{"EnvironmentIsReadByConfigFromEnv", `"STREAMER_JWT_ISSUER"`, `"STREAMER_JWT_ISSUER_URL"`},
		{"EnvironmentIsReadByConfigFromEnv", `"STREAMER_SYNC_TIMEOUT": {"Ref": "SyncTimeout"},`, `"STREAMER_SYNC_TIMEOUT": {"Ref": "SyncTimeout"}, "STREAMER_LOG_LEVEL": "debug",`},
		{"EnvironmentGivesTheDeployedConfig", `"STREAMER_REQUESTS_TABLE": {"Ref": "RequestsTable"},`, ``},
		{"EnvironmentGivesTheDeployedConfig", `"STREAMER_CONNECTIONS_TABLE": {"Ref": "ConnectionsTable"},`, `"STREAMER_CONNECTIONS_TABLE": {"Ref": "RequestsTable"},`},
		{"EnvironmentGivesTheDeployedConfig", `"STREAMER_JWT_AUDIENCE": {"Ref": "JWTAudience"},`, `"STREAMER_JWT_AUDIENCE": {"Ref": "JWTIssuer"},`},
		{"RulesRefuseWhatConfigFromEnvRefuses", `{"Fn::Not": [{"Fn::Equals": [{"Ref": "JWKSFile"}, ""]}]}`, `{"Fn::Equals": ["a", "a"]}`},
		{"RoutesReachTheirHandlers", `"RouteSelectionExpression": "$request.body.action"`, `"RouteSelectionExpression": "$request.body.type"`},
		{"RoutesReachTheirHandlers", `"RouteKey": "$disconnect"`, `"RouteKey": "disconnect"`},
		{"RoutesReachTheirHandlers", `${DefaultFunction.Arn}`, `${ConnectFunction.Arn}`},
		{"RoutesReachTheirHandlers", `/*/$default"}`, `/*/$connect"}`},
		{"PoliciesCoverWhatTheHandlersDo", `"Resource": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/*/@connections/*"}`, `"Resource": "*"`},
		{"PoliciesCoverWhatTheHandlersDo", `{"DynamoDBCrudPolicy": {"TableName": {"Ref": "RequestsTable"}}}`, `{"DynamoDBReadPolicy": {"TableName": {"Ref": "RequestsTable"}}}`},
		{"StreamEventSource", `"FunctionResponseTypes": ["ReportBatchItemFailures"],`, ``},
		{"StreamFilterSelectsPendingRequests", `[\"INSERT\",\"MODIFY\"]`, `[\"INSERT\"]`},
		{"StreamFilterSelectsPendingRequests", `{\"S\":[\"PENDING\"]}`, `{\"S\":[\"PENDING\",\"PROCESSING\"]}`},
		{"TablesAreTheStoreSchema", `"Projection": {"ProjectionType": "KEYS_ONLY"}`, `"Projection": {"ProjectionType": "ALL"}`},
		{"TablesAreTheStoreSchema", `{"AttributeName": "sk", "KeyType": "RANGE"}`, `{"AttributeName": "sk", "KeyType": "HASH"}`},
		{"PoliciesCoverWhatTheHandlersDo", `{"DynamoDBCrudPolicy": {"TableName": {"Ref": "ChannelsTable"}}}`, `{"DynamoDBReadPolicy": {"TableName": {"Ref": "ChannelsTable"}}}`},
		{"EnvironmentGivesTheDeployedConfig", `"STREAMER_CHANNELS_TABLE": {"Ref": "ChannelsTable"},`, `"STREAMER_CHANNELS_TABLE": {"Ref": "RequestsTable"},`},
		{"SweepSchedule", `"Schedule": {"Ref": "SweepSchedule"}`, `"Schedule": "rate(5 minutes)"`},
		{"SweepSchedule", `"EventInvokeConfig": {"MaximumRetryAttempts": 0},`, ``},
		{"SweepSchedule", `"Type": "Schedule"`, `"Type": "ScheduleV2"`},
		{"PoliciesCoverWhatTheHandlersDo", `{"DynamoDBCrudPolicy": {"TableName": {"Ref": "ConnectionsTable"}}},
          {"DynamoDBCrudPolicy": {"TableName": {"Ref": "RequestsTable"}}},
          {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ChannelsTable"}}},
          {
            "Statement": [
              {
                "Effect": "Allow",
                "Action": ["execute-api:ManageConnections"],
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/*/@connections/*"}
              }
            ]
          }
        ],
        "Events": {
          "Sweep"`, `{"DynamoDBCrudPolicy": {"TableName": {"Ref": "ConnectionsTable"}}},
          {"DynamoDBCrudPolicy": {"TableName": {"Ref": "RequestsTable"}}},
          {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ChannelsTable"}}}
        ],
        "Events": {
          "Sweep"`},
		{"FunctionsRunTheExampleBinary", `"Runtime": "provided.al2023"`, `"Runtime": "go1.x"`},
		{"FunctionsRunTheExampleBinary", `"Default": "10s"`, `"Default": "29s"`},
		{"FunctionsRunTheExampleBinary", `"STREAMER_FUNCTION": "disconnect"`, `"STREAMER_FUNCTION": "connect"`},
		{"TemplateIsValidSAM", `"Type": "AWS::ApiGatewayV2::Stage"`, `"Type": "AWS::ApiGatewayV2::Stages"`},
		{"TemplateIsValidSAM", `{"Ref": "RequestsTable"}`, `{"Ref": "RequestTable"}`},
		{"TemplateIsValidSAM", `"StreamArn"]`, `"StreamARN"]`},
		{"TemplateIsValidSAM", `${TablePrefix}connections`, `${Prefix}connections`},
		{"TemplateIsValidSAM", `{"Ref": "SyncTimeout"}`, `{"Fn::ImportValue": "SyncTimeout"}`},
		{"RoutesReachTheirHandlers", `"Target": {"Fn::Sub": "integrations/${DefaultIntegration}"}`, `"Target": "integrations/default"`},
	} {
		name := m.check + ": " + m.old + " → " + m.new
		broken := strings.Replace(string(raw), m.old, m.new, 1)
		if broken == string(raw) {
			t.Errorf("%s: the text to break is not in %s", name, templateFile)
			continue
		}
		check, ok := checks[m.check]
		if !ok {
			t.Fatalf("no check %s", m.check)
		}
		tpl := parseTemplate(t, []byte(broken))
		if failures := runCheck(t, check, tpl); len(failures) == 0 {
			t.Errorf("%s: not caught", name)
		} else if testing.Verbose() {
			t.Logf("%s: caught: %s", name, failures[0])
		}
	}
}

// failRecorder is a testing.TB that records failures instead of failing
// the test, so that a check can be run on a broken template.
type failRecorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
}

func (r *failRecorder) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, msg)
}

func (r *failRecorder) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *failRecorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *failRecorder) Fail()                             { r.record("Fail") }
func (r *failRecorder) Failed() bool                      { r.mu.Lock(); defer r.mu.Unlock(); return len(r.failures) > 0 }

// The Fatal family stops the check's goroutine, as testing.T's does.
func (r *failRecorder) Fatal(args ...any) { r.record(fmt.Sprint(args...)); runtime.Goexit() }
func (r *failRecorder) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *failRecorder) FailNow() { r.record("FailNow"); runtime.Goexit() }

// runCheck runs check on tpl and returns its failures.
func runCheck(t *testing.T, check func(testing.TB, *template), tpl *template) []string {
	rec := &failRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(rec, tpl)
	}()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.failures
}
