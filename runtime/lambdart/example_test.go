package lambdart_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// A Node.js function: the package's shim runs the handler and speaks the
// Runtime API for it.
func Example() {
	shims, err := lambdart.Shims(os.TempDir() + "/lambdart-shims")
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd, err := lambdart.Command("nodejs20.x", "/path/to/code", shims)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := lambdart.New(lambdart.Config{
		Name: "hello", Command: cmd, Dir: "/path/to/code", Handler: "app.handler", Runtime: "nodejs20.x",
		Timeout: 5 * time.Second, Concurrency: 2, Output: os.Stderr,
		Env: []string{"PATH=" + os.Getenv("PATH"), "TABLE=local-table"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	out, err := f.Invoke(context.Background(), []byte(`{"hello":"world"}`))
	fmt.Println(string(out), err)
}
