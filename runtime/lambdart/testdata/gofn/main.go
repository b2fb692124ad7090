// Command gofn is a provided.al2023 function for lambdart's tests: the
// event's "op" picks what it does, and FAULT=garbage makes it speak the
// Runtime API wrongly.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op  string `json:"op"`
	Ms  int    `json:"ms"`
	Env string `json:"env"`
}

func handle(ctx context.Context, ev event) (any, error) {
	switch ev.Op {
	case "echo":
		return ev, nil
	case "pid":
		return os.Getpid(), nil
	case "env":
		return os.Getenv(ev.Env), nil
	case "sleep":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return "slept", nil
	case "sleepPid":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return os.Getpid(), nil
	case "hang":
		select {}
	case "crash":
		fmt.Println("about to crash")
		os.Exit(3)
	case "error":
		return nil, errors.New("it failed")
	case "log":
		lc, _ := lambdacontext.FromContext(ctx)
		fmt.Println("hello from", lc.AwsRequestID)
		fmt.Fprintln(os.Stderr, "to stderr")
		return "logged", nil
	}
	return nil, fmt.Errorf("unknown op %q", ev.Op)
}

func main() {
	switch os.Getenv("FAULT") {
	case "garbage":
		// Take an invocation, then answer for a request that does not exist.
		api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
		for {
			resp, err := http.Get(api + "next")
			if err != nil {
				os.Exit(1)
			}
			resp.Body.Close()
			r, err := http.Post(api+"not-a-request/response", "application/json", strings.NewReader("{{{garbage"))
			if err == nil {
				r.Body.Close()
			}
		}
	case "init":
		panic("cannot start")
	}
	lambda.Start(handle)
}
