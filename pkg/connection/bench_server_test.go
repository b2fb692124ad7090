package connection_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
)

// benchServerEnv makes this test binary run as a benchmark's @connections
// server instead of running tests, so that the benchmark measures the
// client's CPU alone (getrusage of its own process), as `streamer bench`
// does with its gateway process.
const benchServerEnv = "STREAMER_CONNECTION_BENCH_SERVER"

// runBenchServer serves a connectiontest server, prints its URL and
// stops when stdin closes (the benchmark ended or died).
func runBenchServer() int {
	srv := connectiontest.NewServer()
	defer srv.Close()
	fmt.Println(srv.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startBenchServer starts the server process; it stops at cleanup.
func startBenchServer(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	return strings.TrimSpace(line)
}
