package invokeapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/runtime/invokeapi"
	"github.com/streamer-go/streamer/runtime/lambdart"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fn is a function that answers with answer, counting its invocations
// and reporting each payload on calls.
type fn struct {
	mu     sync.Mutex
	n      int
	answer func(n int, payload []byte) ([]byte, error)
	calls  chan string
}

func (f *fn) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if f.calls != nil {
		f.calls <- string(payload)
	}
	return f.answer(n, payload)
}

func echo(_ int, p []byte) ([]byte, error) { return p, nil }

func serve(t *testing.T, cfg invokeapi.Config) (*invokeapi.Server, *lambda.Client) {
	t.Helper()
	s := invokeapi.New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	client := lambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  ts.Client(),
	}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(ts.URL) })
	return s, client
}

func TestRequestResponseByEveryNameForm(t *testing.T) {
	_, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{"app-Echo": &fn{answer: echo}}})
	ctx := context.Background()
	for _, name := range []string{
		"app-Echo",
		"arn:aws:lambda:us-east-1:123456789012:function:app-Echo",
		"arn:aws:lambda:us-east-1:123456789012:function:app-Echo:$LATEST",
		"123456789012:function:app-Echo",
		"app-Echo:$LATEST",
	} {
		out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"n":1}`)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out.StatusCode != 200 || string(out.Payload) != `{"n":1}` || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" {
			t.Errorf("%s: %d %s %v", name, out.StatusCode, out.Payload, out.FunctionError)
		}
	}
	// No payload is an empty event, as Lambda passes it.
	out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("app-Echo")})
	if err != nil || string(out.Payload) != "{}" {
		t.Errorf("no payload: %s, %v", out.Payload, err)
	}
}

func TestUnknownFunctionsAreNotFound(t *testing.T) {
	_, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{"app-Echo": &fn{answer: echo}}})
	for _, name := range []string{
		"app-Other",
		"arn:aws:lambda:eu-west-1:123456789012:function:app-Echo", // another Region
		"999999999999:function:app-Echo",                          // another account
		"app-Echo:live",                                           // an alias
	} {
		_, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) || !strings.Contains(nf.ErrorMessage(), "Function not found: arn:aws:lambda:") {
			t.Errorf("%s: %v, want ResourceNotFoundException", name, err)
		}
	}
}

func TestFunctionErrorsAreUnhandled(t *testing.T) {
	_, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{
		"app-Fail": &fn{answer: func(int, []byte) ([]byte, error) {
			return nil, &lambdart.FunctionError{Type: "ValueError", Message: "bad input"}
		}},
		"app-Timeout": &fn{answer: func(int, []byte) ([]byte, error) { return nil, errors.Join(lambdart.ErrTimeout) }},
	}})
	out, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-Fail")})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(out.Payload, &doc)
	if aws.ToString(out.FunctionError) != "Unhandled" || doc["errorType"] != "ValueError" || doc["errorMessage"] != "bad input" {
		t.Errorf("function error: %v %s", out.FunctionError, out.Payload)
	}
	out, err = client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-Timeout")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "Task timed out") {
		t.Errorf("timeout: %v %s", out.FunctionError, out.Payload)
	}
}

func TestDryRunRunsNothing(t *testing.T) {
	f := &fn{answer: echo}
	_, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{"app-Echo": f}})
	out, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-Echo"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || out.StatusCode != http.StatusNoContent {
		t.Fatalf("%v %v", out, err)
	}
	if f.n != 0 {
		t.Errorf("DryRun invoked the function %d times", f.n)
	}
}

func TestEventRetriesTwiceThenDrops(t *testing.T) {
	flaky := &fn{calls: make(chan string, 8), answer: func(n int, p []byte) ([]byte, error) {
		if n < 3 {
			return nil, &lambdart.FunctionError{Type: "Error", Message: "not yet"}
		}
		return p, nil
	}}
	broken := &fn{calls: make(chan string, 8), answer: func(int, []byte) ([]byte, error) {
		return nil, &lambdart.FunctionError{Type: "Error", Message: "never"}
	}}
	s, client := serve(t, invokeapi.Config{
		Functions:   map[string]invokeapi.Function{"app-Flaky": flaky, "app-Broken": broken},
		RetryDelays: []time.Duration{time.Millisecond, 2 * time.Millisecond},
	})
	ctx := context.Background()
	for _, name := range []string{"app-Flaky", "app-Broken"} {
		out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"e":1}`)})
		if err != nil || out.StatusCode != http.StatusAccepted || len(out.Payload) != 0 {
			t.Fatalf("%s: %v, %v", name, out, err)
		}
	}
	for _, f := range []*fn{flaky, broken} {
		for i := 0; i < 3; i++ {
			if p := <-f.calls; p != `{"e":1}` {
				t.Errorf("attempt %d got %q", i+1, p)
			}
		}
	}
	// Every event is done once Shutdown returns: nothing else came.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if flaky.n != 3 || broken.n != 3 {
		t.Errorf("attempts: flaky %d (succeeded on the 3rd), broken %d; want 3 each (one try, two retries)", flaky.n, broken.n)
	}
}

func TestShutdownDropsWaitingRetries(t *testing.T) {
	f := &fn{calls: make(chan string, 1), answer: func(int, []byte) ([]byte, error) { return nil, errors.New("boom") }}
	s, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{"app-F": f}, RetryDelays: []time.Duration{time.Hour, time.Hour}})
	if _, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-F"), InvocationType: types.InvocationTypeEvent}); err != nil {
		t.Fatal(err)
	}
	<-f.calls
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown waited for an hour-long retry: %v", err)
	}
	_, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-F"), InvocationType: types.InvocationTypeEvent})
	var svc *types.ServiceException
	if !errors.As(err, &svc) {
		t.Errorf("after shutdown: %v, want ServiceException", err)
	}
}

func TestOtherOperationsAreNotEmulated(t *testing.T) {
	_, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{"app-Echo": &fn{answer: echo}}})
	_, err := client.ListFunctions(context.Background(), &lambda.ListFunctionsInput{}, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "NotEmulated" || !strings.Contains(api.ErrorMessage(), "not emulated: lambda GET") {
		t.Errorf("ListFunctions: %v", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	_, client := serve(t, invokeapi.Config{Functions: map[string]invokeapi.Function{"app-Echo": &fn{answer: echo}}})
	_, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-Echo"), Payload: []byte("{not json")})
	var bad *types.InvalidRequestContentException
	if !errors.As(err, &bad) {
		t.Errorf("invalid JSON: %v", err)
	}
	_, err = client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("app-Echo"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`"` + strings.Repeat("x", invokeapi.MaxAsyncPayload) + `"`)})
	var big *types.RequestTooLargeException
	if !errors.As(err, &big) {
		t.Errorf("oversized event: %v", err)
	}
}
