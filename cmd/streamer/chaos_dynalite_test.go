package main

// A dynalite server the chaos test starts, pauses, kills and restarts
// itself (the shared one of scripts/with-dynalite.sh must not be touched).

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// dynalite is a dynalite server process the test controls.
type dynalite struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	log  *strings.Builder
}

func dynalitePaths(t *testing.T) (node, cli, keepalive string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cli = filepath.Join(root, ".tools", "node_modules", "dynalite", "cli.js")
	keepalive = filepath.Join(root, "runtime", "dynalite", "keepalive.js")
	node, err = exec.LookPath("node")
	_, statErr := os.Stat(cli)
	if err != nil || statErr != nil {
		if os.Getenv(dynamotest.RequireEnv) == "1" {
			t.Fatalf("the chaos test needs node and %s (make tools): %v %v", cli, err, statErr)
		}
		t.Skip("node or dynalite missing; run make tools")
	}
	return node, cli, keepalive
}

func startDynalite(t *testing.T, port int) *dynalite {
	t.Helper()
	node, cli, keepalive := dynalitePaths(t)
	d := &dynalite{t: t, port: port, log: new(strings.Builder)}
	d.cmd = exec.Command(node, "--require", keepalive, cli, "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.addr(), time.Second)
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("dynalite did not listen within 20 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *dynalite) addr() string     { return fmt.Sprintf("127.0.0.1:%d", d.port) }
func (d *dynalite) endpoint() string { return "http://" + d.addr() }

func (d *dynalite) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("dynalite %v: %v", sig, err)
	}
}

// kill stops the server (resuming it first, or SIGKILL would wait for a
// stopped process to run) and waits for it.
func (d *dynalite) kill() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGCONT)
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
