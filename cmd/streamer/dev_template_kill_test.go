//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTemplateFunctionsDieWithTheRuntime kills `streamer dev --template`
// with SIGKILL while a function is busy: its function processes, in
// process groups of their own, stop with it instead of lingering.
func TestTemplateFunctionsDieWithTheRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	p := startDevProcess(t, buildBinary(t), "--template", "../../runtime/stack/testdata/tplapp/template.yaml", "--no-watch")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dialDev(ctx, t, p.wsURL+"?token=good", nil)
	c.send(ctx, `{"action":"pid"}`)
	_, b, err := c.c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatalf("pid answer %q", b)
	}
	if !alive(pid) {
		t.Fatalf("function process %d not found", pid)
	}
	// The process is busy in a handler that sleeps (it would not notice
	// the Runtime API going away) when the runtime is killed. The
	// function's Timeout is 2 s: the kill comes well before it.
	c.send(ctx, `{"action":"hang"}`)
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for range p.lines {
	}
	<-p.exited
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Fatalf("function process %d outlived the killed runtime", pid)
}

// alive reports whether pid runs: a zombie (dead, not yet reaped by
// whoever inherited it) does not count.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
