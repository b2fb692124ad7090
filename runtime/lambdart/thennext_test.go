package lambdart_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// rawRuntimeEnv makes the test binary a function process that speaks the
// Runtime API by hand (rawRuntime).
const rawRuntimeEnv = "LAMBDART_TEST_RAW_RUNTIME"

// rawRuntime answers each invocation with its process id, alternating
// between the two ways of asking for the next one: an answer sent with
// Streamer-Then-Next must come back as the next invocation (200 and its
// request id), one sent without as Lambda's 202 before a GET next. Any
// other reply ends the process with status 3, which fails the test's
// invocation.
func rawRuntime() int {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	resp, err := http.Get(base + "next")
	for i := 0; ; i++ {
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "raw runtime: next:", err, status(resp))
			return 3
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, base+id+"/response", strings.NewReader(strconv.Itoa(os.Getpid())))
		thenNext := i%2 == 0
		if thenNext {
			req.Header.Set("Streamer-Then-Next", "1")
		}
		resp, err = http.DefaultClient.Do(req)
		if thenNext {
			// The reply is the next invocation, checked at the top.
			continue
		}
		if err != nil || resp.StatusCode != http.StatusAccepted {
			fmt.Fprintln(os.Stderr, "raw runtime: answer without Streamer-Then-Next:", err, status(resp))
			return 3
		}
		resp.Body.Close()
		resp, err = http.Get(base + "next")
	}
}

func status(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return resp.Status
}

// TestAnswerThenNext: a runtime that sends its answer with
// Streamer-Then-Next gets the next invocation as the reply, and one that
// does not gets Lambda's 202, taking turns in one process.
func TestAnswerThenNext(t *testing.T) {
	out := &syncBuffer{}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := lambdart.New(lambdart.Config{
		Name:    "raw",
		Command: []string{self},
		Dir:     t.TempDir(),
		Runtime: "provided.al2023",
		Handler: "raw",
		Env:     []string{rawRuntimeEnv + "=1"},
		Output:  out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pids []string
	for i := range 5 {
		b, err := invoke(t, f, fmt.Sprintf(`{"n":%d}`, i))
		if err != nil {
			t.Fatalf("invocation %d: %v\n%s", i, err, out.String())
		}
		pids = append(pids, string(b))
	}
	for _, p := range pids[1:] {
		if p != pids[0] {
			t.Fatalf("the invocations ran in processes %v, want one: a reply the runtime did not expect ended one\n%s", pids, out.String())
		}
	}
}
