package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// These tests run the binary the template deploys (examples/lambda, built
// as README.md says) with each function's environment from the template,
// against a Lambda Runtime API served on loopback: the same HTTP protocol
// Lambda's provided.al2023 runtime speaks to bootstrap. With a DynamoDB-API
// server (STREAMER_DYNAMODB_ENDPOINT) they also run a whole session:
// $connect, a sync and an async message, the stream record of the queued
// request, a sweep that runs a stalled request, $disconnect.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds each wait for the child process, so a hung binary fails
// the test with its log instead of hanging it. It is not a timing claim.
const waitLimit = 60 * time.Second

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// bootstrap builds examples/lambda once per test binary, with the flags
// README.md gives (the target OS and architecture are the host's, to run it
// here).
func bootstrap(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "streamer-deploy-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", filepath.Join(buildDir, "bootstrap"), "../examples/lambda")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./examples/lambda: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "bootstrap")
}

// runtimeAPI is a Lambda Runtime API (2018-06-01) endpoint for one
// function process: it hands out the events a test queues and collects
// what the function answers.
type runtimeAPI struct {
	srv     *httptest.Server
	events  chan []byte
	waiting chan struct{} // the function asked for its next event
	results chan runtimeResult
	stop    chan struct{}
	ids     atomic.Int64
}

type runtimeResult struct {
	kind string // "response", "error" or "init-error"
	body []byte
}

func newRuntimeAPI(t testing.TB) *runtimeAPI {
	rt := &runtimeAPI{
		events:  make(chan []byte),
		waiting: make(chan struct{}, 1),
		results: make(chan runtimeResult, 16),
		stop:    make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case rt.waiting <- struct{}{}:
		default:
		}
		select {
		case ev := <-rt.events:
			id := strconv.FormatInt(rt.ids.Add(1), 10)
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", "req-"+id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:streamer-test")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
			_, _ = w.Write(ev)
		case <-r.Context().Done():
		case <-rt.stop:
		}
	})
	collect := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rt.results <- runtimeResult{kind, body}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", collect("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", collect("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", collect("init-error"))
	rt.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(rt.stop)
		rt.srv.Close()
	})
	return rt
}

// function is one running bootstrap process.
type function struct {
	rt     *runtimeAPI
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
	err    error // set before exited closes
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startFunction runs bootstrap as Lambda would, with env as the function's
// variables and no others from this process (so nothing leaks in from the
// test's own environment), plus what Lambda itself sets.
func startFunction(t *testing.T, env map[string]string) *function {
	t.Helper()
	return startFunctionOn(t, newRuntimeAPI(t), env)
}

// startFunctionOn starts bootstrap against rt; Cleanup stops it.
func startFunctionOn(t testing.TB, rt *runtimeAPI, env map[string]string) *function {
	t.Helper()
	bin := bootstrap(t)
	f := &function{rt: rt, log: &lockedBuffer{}, exited: make(chan struct{})}
	f.cmd = exec.Command(bin)
	f.cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(rt.srv.URL, "http://"),
		"AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=AKIDDEPLOYTEST",
		"AWS_SECRET_ACCESS_KEY=deploy-test-secret",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for k, v := range env {
		f.cmd.Env = append(f.cmd.Env, k+"="+v)
	}
	f.cmd.Stdout, f.cmd.Stderr = f.log, f.log
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned by this function value; Cleanup waits for it
		f.err = f.cmd.Wait()
		close(f.exited)
	}()
	t.Cleanup(f.stop)
	return f
}

// stop kills the process and waits for it; it may be called again.
func (f *function) stop() {
	_ = f.cmd.Process.Kill()
	<-f.exited
}

// started waits until the function asks for its first event (its init
// succeeded) or exits; it reports which.
func (f *function) started(t testing.TB) bool {
	t.Helper()
	select {
	case <-f.rt.waiting:
		return true
	case <-f.exited:
		return false
	case <-time.After(waitLimit):
		t.Fatalf("function neither started nor exited; log:\n%s", f.log)
	}
	return false
}

// invoke hands the function one event and returns its answer.
func (f *function) invoke(t *testing.T, event any) runtimeResult {
	t.Helper()
	body, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(waitLimit)
	select {
	case f.rt.events <- body:
	case <-f.exited:
		t.Fatalf("function exited (%v) before taking the event; log:\n%s", f.err, f.log)
	case <-timeout:
		t.Fatalf("function did not ask for an event; log:\n%s", f.log)
	}
	select {
	case res := <-f.rt.results:
		if res.kind != "response" {
			t.Fatalf("function answered %s: %s; log:\n%s", res.kind, res.body, f.log)
		}
		return res
	case <-f.exited:
		t.Fatalf("function exited (%v) during the invocation; log:\n%s", f.err, f.log)
	case <-timeout:
		t.Fatalf("function did not answer; log:\n%s", f.log)
	}
	return runtimeResult{}
}

// templateEnv is the environment the template gives the function that
// selects handler.
func templateEnv(t testing.TB, params map[string]string, handler string) map[string]string {
	t.Helper()
	s := mustStack(t, loadTemplate(t, templateFile), params)
	fn, ok := functions(t, s)[handler]
	if !ok {
		t.Fatalf("no function selects %q", handler)
	}
	return s.functionEnv(t, fn)
}

// Each function of the template starts with its environment: the binary
// accepts its selector and its configuration.
func TestEveryFunctionStarts(t *testing.T) {
	for _, handler := range slicesOfValues(routeFunctions) {
		t.Run(handler, func(t *testing.T) {
			f := startFunction(t, templateEnv(t, anonymous, handler))
			if !f.started(t) {
				t.Fatalf("function exited (%v); log:\n%s", f.err, f.log)
			}
		})
	}
}

// A bad deployment fails at the cold start, with the reason in the log,
// before taking any event.
func TestBadEnvironmentFailsAtColdStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown selector", withVar(templateEnv(t, anonymous, "default"), envFunction, "router"), envFunction},
		{"no authentication chosen", templateEnv(t, nil, "connect"), "STREAMER_ALLOW_ANONYMOUS"},
		{"unreadable JWKS", templateEnv(t, withJWT, "connect"), "STREAMER_JWT_JWKS_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFunction(t, tc.env)
			if f.started(t) {
				t.Fatalf("function started; log:\n%s", f.log)
			}
			if f.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(f.log.String(), tc.want) {
				t.Errorf("exit %d, log %q: want a failure naming %s", f.cmd.ProcessState.ExitCode(), f.log, tc.want)
			}
		})
	}
}

// The stream function answers a batch the way StreamHandler does: records
// that need no work are skipped without touching DynamoDB and reported as
// no failure.
func TestStreamFunctionAnswersABatch(t *testing.T) {
	f := startFunction(t, templateEnv(t, anonymous, "stream"))
	res := f.invoke(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		streamRecord(events.DynamoDBOperationTypeModify, "COMPLETED", "PROCESSING"),
		streamRecord(events.DynamoDBOperationTypeRemove, "", "COMPLETED"),
	}})
	var got map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatalf("answer %s: %v", res.body, err)
	}
	if _, ok := got["batchItemFailures"]; !ok || len(got) != 1 {
		t.Fatalf("answer %s is not a DynamoDBEventResponse", res.body)
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(res.body, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Errorf("answer %s (%v): want no failures", res.body, err)
	}
}

// A whole session through the five deployed functions, on a DynamoDB-API
// server and a real @connections endpoint.
func TestSessionThroughTheDeployedFunctions(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	ddb := dynamotest.Client(t)
	// The tables are created from the code's schema, which the template's
	// tables equal (TestTablesAreTheStoreSchema).
	prefix := dynamotest.Tables(t, ddb, "deploy")
	gw := connectiontest.NewServer()
	defer gw.Close()

	params := map[string]string{"AllowAnonymous": "true", "TablePrefix": prefix}
	env := func(handler string) map[string]string {
		e := templateEnv(t, params, handler)
		// Not set in AWS, where the SDK finds DynamoDB by region.
		e["STREAMER_DYNAMODB_ENDPOINT"] = endpoint
		return e
	}
	connect := startFunction(t, env("connect"))
	router := startFunction(t, env("default"))
	stream := startFunction(t, env("stream"))
	disconnect := startFunction(t, env("disconnect"))
	sweep := startFunction(t, env("sweep"))

	const connID = "L0SM9cOFvHcCIhw="
	host := strings.TrimPrefix(gw.URL, "http://")
	wsEvent := func(route, eventType, body string) events.APIGatewayWebsocketProxyRequest {
		return events.APIGatewayWebsocketProxyRequest{
			Body: body,
			// API Gateway says https; the local @connections endpoint
			// is http, which the connect handler learns from this header.
			Headers: map[string]string{"X-Forwarded-Proto": "http"},
			RequestContext: events.APIGatewayWebsocketProxyRequestContext{
				RouteKey:         route,
				EventType:        eventType,
				ConnectionID:     connID,
				DomainName:       host,
				Stage:            "prod",
				RequestID:        "gw-" + eventType,
				RequestTimeEpoch: time.Now().UnixMilli(),
				ConnectedAt:      time.Now().UnixMilli(),
			},
		}
	}
	status := func(f *function, ev events.APIGatewayWebsocketProxyRequest) int {
		t.Helper()
		var resp events.APIGatewayProxyResponse
		res := f.invoke(t, ev)
		if err := json.Unmarshal(res.body, &resp); err != nil {
			t.Fatalf("answer %s: %v", res.body, err)
		}
		return resp.StatusCode
	}
	received := func(n int) [][]byte {
		t.Helper()
		msgs := gw.Received(connID)
		if len(msgs) != n {
			t.Fatalf("@connections received %d messages, want %d: %q", len(msgs), n, msgs)
		}
		return msgs
	}

	if got := status(connect, wsEvent("$connect", "CONNECT", "")); got != http.StatusOK {
		t.Fatalf("$connect answered %d; log:\n%s", got, connect.log)
	}

	if got := status(router, wsEvent("$default", "MESSAGE", `{"v":1,"type":"request","id":"c-1","action":"echo","payload":{"text":"hi"}}`)); got != http.StatusOK {
		t.Errorf("echo answered %d", got)
	}
	var resp protocol.Response
	if err := json.Unmarshal(received(1)[0], &resp); err != nil || resp.Type != protocol.TypeResponse || resp.RequestID != "c-1" || string(resp.Data) != `{"text":"hi"}` {
		t.Fatalf("echo reply %s (%v)", received(1)[0], err)
	}

	if got := status(router, wsEvent("$default", "MESSAGE", `{"v":1,"type":"request","id":"c-2","action":"report","payload":{"seconds":0}}`)); got != http.StatusOK {
		t.Errorf("report answered %d", got)
	}
	var ack protocol.Ack
	if err := json.Unmarshal(received(2)[1], &ack); err != nil || ack.Type != protocol.TypeAck || ack.RequestID == "" {
		t.Fatalf("report reply %s (%v): want an ack", received(2)[1], err)
	}

	// DynamoDB Streams would now deliver the queued item; dynalite has no
	// streams, so the record is built from the item as the table holds it,
	// and must pass the template's filter.
	item, err := ddb.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      aws.String(dynamo.RequestsTable(prefix)),
		Key:            map[string]types.AttributeValue{dynamo.AttrRequestID: &types.AttributeValueMemberS{Value: ack.RequestID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || item.Item == nil {
		t.Fatalf("GetItem %s: %v", ack.RequestID, err)
	}
	rec := events.DynamoDBEventRecord{
		EventID: "1", EventName: "INSERT", EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{dynamo.AttrRequestID: events.NewStringAttribute(ack.RequestID)},
			NewImage:       streamImage(t, item.Item),
			SequenceNumber: "200",
			StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
	_, ev := streamEvent(t, mustStack(t, loadTemplate(t, templateFile), params))
	if !filterMatches(t, filterPatterns(t, ev), rec) {
		t.Fatalf("the template's filter drops the queued request's record %s", jsonText(rec))
	}
	res := stream.invoke(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	var batch events.DynamoDBEventResponse
	if err := json.Unmarshal(res.body, &batch); err != nil || len(batch.BatchItemFailures) != 0 {
		t.Fatalf("stream answered %s (%v); log:\n%s", res.body, err, stream.log)
	}
	msgs := gw.Received(connID)
	var last protocol.Complete
	if err := json.Unmarshal(msgs[len(msgs)-1], &last); err != nil || last.Type != protocol.TypeComplete || last.RequestID != ack.RequestID || string(last.Result) != reportDone {
		t.Fatalf("last message %s (%v): want complete of %s with %s; all: %q", msgs[len(msgs)-1], err, ack.RequestID, reportDone, msgs)
	}

	// A request whose dispatch was lost an hour ago (queued by a store
	// whose clock says so, and never delivered by the stream) is run by
	// the scheduled sweep.
	past := dynamo.New(ddb, dynamo.WithPrefix(prefix), dynamo.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	if err := past.Enqueue(t.Context(), &store.AsyncRequest{RequestID: "r-stalled", ConnectionID: connID, Action: "report", Payload: json.RawMessage(`{"seconds":0}`)}); err != nil {
		t.Fatal(err)
	}
	res = sweep.invoke(t, struct{}{})
	if string(res.body) != `{"ran":1}` {
		t.Fatalf("sweep answered %s, want one request run; log:\n%s", res.body, sweep.log)
	}
	msgs = gw.Received(connID)
	if err := json.Unmarshal(msgs[len(msgs)-1], &last); err != nil || last.Type != protocol.TypeComplete || last.RequestID != "r-stalled" || string(last.Result) != reportDone {
		t.Fatalf("last message %s (%v): want complete of r-stalled; all: %q", msgs[len(msgs)-1], err, msgs)
	}

	// Channels: the $default function subscribes and publishes; its
	// fan-out (the join event, the publication) is posted before the
	// invocation returns, and $disconnect removes the subscription.
	chans := channel.NewDynamoStore(ddb, channel.WithDynamoPrefix(prefix))
	before := len(gw.Received(connID))
	for _, body := range []string{
		`{"type":"subscribe","id":"c-s","channel":"chat:lobby"}`,
		`{"type":"publish","id":"c-p","channel":"chat:lobby","data":{"text":"hello"}}`,
	} {
		if got := status(router, wsEvent("$default", "MESSAGE", body)); got != http.StatusOK {
			t.Errorf("%s answered %d", body, got)
		}
	}
	var kinds []string
	for _, m := range gw.Received(connID)[before:] {
		var head struct {
			Type      string `json:"type"`
			RequestID string `json:"request_id"`
			Offset    uint64 `json:"offset"`
		}
		if err := json.Unmarshal(m, &head); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, fmt.Sprintf("%s:%s:%d", head.Type, head.RequestID, head.Offset))
	}
	slices.Sort(kinds)
	if want := []string{"join::0", "publication::1", "response:c-p:0", "subscribed:c-s:0"}; !slices.Equal(kinds, want) {
		t.Errorf("channel messages %q, want %q; log:\n%s", kinds, want, router.log)
	}
	if subs, err := chans.Subscriptions(t.Context(), connID); err != nil || len(subs) != 1 {
		t.Errorf("subscriptions before $disconnect: %v (%v)", subs, err)
	}

	// Broadcast: the template sets no STREAMER_MANAGEMENT_ENDPOINT, so
	// the copies go out one Send per recipient, to the endpoint its
	// record names (an anonymous connection has no tenant and reaches
	// only itself); the copy is posted before the answer.
	before = len(gw.Received(connID))
	if got := status(router, wsEvent("$default", "MESSAGE", `{"type":"request","id":"c-b","action":"broadcast","payload":{"text":"all"}}`)); got != http.StatusOK {
		t.Errorf("broadcast answered %d", got)
	}
	posted := gw.Received(connID)[before:]
	var bresp protocol.Response
	relay := `{"v":1,"type":"relay","data":{"text":"all"},"info":{"user_id":"anonymous:` + connID + `"}}`
	if len(posted) != 2 || string(posted[0]) != relay ||
		json.Unmarshal(posted[1], &bresp) != nil || bresp.Type != protocol.TypeResponse || bresp.RequestID != "c-b" ||
		string(bresp.Data) != `{"recipients":1,"delivered":1}` {
		t.Errorf("broadcast posted %q, want the payload in a relay envelope then a response counting 1 of 1; log:\n%s", posted, router.log)
	}

	if got := status(disconnect, wsEvent("$disconnect", "DISCONNECT", "")); got != http.StatusOK {
		t.Errorf("$disconnect answered %d", got)
	}
	if subs, err := chans.Subscriptions(t.Context(), connID); err != nil || len(subs) != 0 {
		t.Errorf("subscriptions after $disconnect: %v (%v), want none", subs, err)
	}
	conn, err := ddb.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      aws.String(dynamo.ConnectionsTable(prefix)),
		Key:            map[string]types.AttributeValue{dynamo.AttrConnectionID: &types.AttributeValueMemberS{Value: connID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || conn.Item != nil {
		t.Errorf("after $disconnect the connection is %v (%v), want deleted", conn.Item, err)
	}
}

// reportDone is the result of report with {"seconds":0}.
const reportDone = `{"steps":1,"seconds":0}`

// streamImage converts an item as the SDK reads it into a stream image as
// aws-lambda-go delivers it: the inverse of awslambda.AttributeValues, for
// the types the store writes.
func streamImage(t testing.TB, item map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	t.Helper()
	out := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, v := range item {
		out[k] = streamValue(t, v)
	}
	return out
}

func streamValue(t testing.TB, v types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *types.AttributeValueMemberL:
		list := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			list[i] = streamValue(t, e)
		}
		return events.NewListAttribute(list)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(streamImage(t, v.Value))
	}
	t.Fatalf("attribute of type %T: extend streamValue", v)
	return events.DynamoDBAttributeValue{}
}

// BenchmarkFunctionInit measures a cold start of the deployed binary on
// this machine: process start, ConfigFromEnv, AWS config and clients, until
// it asks the Runtime API for its first event. Lambda adds its own sandbox
// and download time on top.
func BenchmarkFunctionInit(b *testing.B) {
	env := templateEnv(b, anonymous, "default")
	rt := newRuntimeAPI(b)
	bootstrap(b)
	for b.Loop() {
		f := startFunctionOn(b, rt, env)
		if !f.started(b) {
			b.Fatalf("exited: %v\n%s", f.err, f.log)
		}
		f.stop()
	}
}
