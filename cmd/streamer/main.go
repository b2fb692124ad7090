// Command streamer is Streamer's command line: the local runtime (dev), the
// DynamoDB table tool (tables) and the load benchmark (bench).
package main

import (
	"context"
	"os"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }
