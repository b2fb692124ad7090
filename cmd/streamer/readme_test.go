package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	lang, heading, text string
	line                int
}

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	var cur *readmeBlock
	heading := ""
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &readmeBlock{lang: strings.TrimPrefix(l, "```"), heading: heading, line: i + 1}
		case cur != nil && l == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case strings.HasPrefix(l, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(l, "#"))
		}
	}
	return blocks
}

// Shell blocks the transcript test does not run, and what runs them instead.
var readmeShellElsewhere = map[string]string{
	"go get github.com/streamer-go/streamer@latest": "needs the module published; go.mod and the install lines are checked by hand",
	"mkdir -p .run/template/build":                  "the --template tests build examples/lambda next to a copy of the template, as this block does, and serve it (dev_template_test.go)",
	"make test":                                     "it is the test run itself",
	"npm install /path/to/streamer/clients/js":      "clients/js/test/readme.test.mjs installs the client from the path and runs the js block",
}

// TestREADMEShellSnippets runs README.md's shell blocks as a reader would,
// in order, against real `streamer dev` processes: commands run with `go
// run ./cmd/streamer` replaced by the test binary and 127.0.0.1:8080 by the
// process's address; a `websocat URL` line opens a WebSocket; lines that
// start with {"type": are sent on it, other JSON lines are what must come
// back (connection IDs aside), and "..." skips messages until the next
// expected one. So the quick start, the replay of a repeated id, the curl
// POST and the token example cannot drift from what the binary does.
func TestREADMEShellSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	r := &readmeRun{t: t, bin: bin, dir: t.TempDir(), ids: map[string]string{}, byID: map[string]*client{}}
	ran := 0
	for _, b := range readmeBlocks(t) {
		if b.lang != "sh" {
			continue
		}
		if why := elsewhere(b.text); why != "" {
			t.Logf("README.md:%d (%s) not run here: %s", b.line, b.heading, why)
			continue
		}
		r.block(b)
		ran++
	}
	if ran < 5 {
		t.Errorf("ran %d shell blocks of README.md, want the quick start's 5 at least", ran)
	}
}

func elsewhere(text string) string {
	for prefix, why := range readmeShellElsewhere {
		if strings.HasPrefix(text, prefix) {
			return why
		}
	}
	return ""
}

// readmeRun is the state a reader carries from block to block: the
// running process, the open WebSocket, and the connection IDs the README
// shows mapped to the ones this run got.
type readmeRun struct {
	t    *testing.T
	bin  string
	dir  string
	dev  *devProcess
	conn *client
	ids  map[string]string  // README's connection ID → this run's
	byID map[string]*client // this run's connection ID → its WebSocket
}

func (r *readmeRun) block(b readmeBlock) {
	t := r.t
	lines := strings.Split(strings.TrimRight(b.text, "\n"), "\n")
	skipping := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(lines[i])
		}
		where := fmt.Sprintf("README.md:%d (%s)", b.line+1+i, b.heading)
		cmd := strings.TrimSpace(regexp.MustCompile(`\s+#.*$`).ReplaceAllString(l, ""))
		switch {
		case cmd == "" || strings.HasPrefix(cmd, "#"):
		case cmd == "...":
			skipping = true
		case strings.HasPrefix(cmd, "go run ./cmd/streamer dev"):
			r.startDev(where, strings.Fields(strings.TrimPrefix(cmd, "go run ./cmd/streamer dev")))
			// The banner the README shows follows, up to a blank line: each
			// line must be printed, in order.
			var banner []string
			for i+1 < len(lines) && lines[i+1] != "" {
				i++
				banner = append(banner, r.subst(lines[i]))
			}
			r.checkBanner(where, banner)
		case strings.HasPrefix(cmd, "websocat "):
			u := r.shellOut(where, "printf %s "+strings.TrimPrefix(cmd, "websocat "))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.conn = dialDev(ctx, t, u, nil)
			cancel()
		case strings.HasPrefix(cmd, `{"type":`):
			if r.conn == nil {
				t.Fatalf("%s: a message to send, but no websocat line opened a connection", where)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.conn.send(ctx, cmd)
			cancel()
		case strings.HasPrefix(cmd, "{"):
			r.expect(where, cmd, skipping)
			skipping = false
		case strings.HasPrefix(cmd, "curl "):
			r.shellOut(where, cmd)
			// The README's connection ID in the URL names the socket that
			// must get the posted data.
			if m := regexp.MustCompile(`--data '([^']*)'`).FindStringSubmatch(cmd); m != nil {
				var to *client
				for readme, got := range r.ids {
					if strings.Contains(cmd, url.QueryEscape(readme)) {
						to = r.byID[got]
					}
				}
				if to == nil {
					t.Fatalf("%s: posts to no connection the README opened before", where)
				}
				r.expectRaw(where, to, m[1])
			}
		default:
			r.shellOut(where, cmd)
		}
	}
}

// subst turns what the README shows into what this run has.
func (r *readmeRun) subst(s string) string {
	if r.dev != nil {
		host := strings.SplitN(strings.TrimPrefix(r.dev.wsURL, "ws://"), "/", 2)[0]
		s = strings.ReplaceAll(s, "127.0.0.1:8080", host)
	}
	s = strings.ReplaceAll(s, "go run ./cmd/streamer", r.bin)
	for readme, got := range r.ids {
		s = strings.ReplaceAll(s, url.QueryEscape(readme), url.QueryEscape(got))
		s = strings.ReplaceAll(s, readme, got)
	}
	return s
}

func (r *readmeRun) shellOut(where, cmd string) string {
	r.t.Helper()
	c := exec.Command("sh", "-c", r.subst(cmd))
	c.Dir = r.dir
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		r.t.Fatalf("%s: %s: %v\n%s", where, cmd, err, stderr.String())
	}
	return string(out)
}

func (r *readmeRun) startDev(where string, args []string) {
	r.t.Helper()
	if r.dev != nil {
		r.dev.stop(r.t)
	}
	// startDevProcess adds --addr 127.0.0.1:0; relative paths are the
	// reader's working directory, this run's dir.
	for i, a := range args {
		if _, err := os.Stat(filepath.Join(r.dir, a)); err == nil {
			args[i] = filepath.Join(r.dir, a)
		}
	}
	r.dev = startDevProcess(r.t, r.bin, args...)
	r.conn = nil
	r.t.Cleanup(func() {
		if r.dev != nil && r.dev.cmd.ProcessState == nil {
			r.dev.stop(r.t)
		}
	})
}

func (r *readmeRun) checkBanner(where string, want []string) {
	r.t.Helper()
	got := append([]string(nil), r.dev.stdout...)
	deadline := time.After(5 * time.Second)
	for i := 0; i < len(want); {
		j := indexFrom(got, want[i], 0)
		if j >= 0 {
			got = got[j+1:]
			i++
			continue
		}
		select {
		case l, ok := <-r.dev.lines:
			if !ok {
				r.t.Fatalf("%s: streamer dev exited before printing %q", where, want[i])
			}
			r.dev.stdout = append(r.dev.stdout, l)
			got = append(got, l)
		case <-deadline:
			r.t.Fatalf("%s: streamer dev did not print the README's banner line\n  %s\nprinted:\n  %s", where, want[i], strings.Join(r.dev.stdout, "\n  "))
		}
	}
}

func indexFrom(lines []string, want string, from int) int {
	for i := from; i < len(lines); i++ {
		if strings.TrimRight(lines[i], " ") == strings.TrimRight(want, " ") {
			return i
		}
	}
	return -1
}

// expect reads the next message (skipping any that do not match when
// skipping) and compares it with the README's line: equal JSON, except
// that a connectionId may be any, and is remembered for later commands.
func (r *readmeRun) expect(where, want string, skipping bool) {
	r.t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		r.t.Fatalf("%s: not JSON: %s: %v", where, want, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		_, b, err := r.conn.c.Read(ctx)
		if err != nil {
			r.t.Fatalf("%s: waiting for %s: %v", where, want, err)
		}
		var g any
		if err := json.Unmarshal(b, &g); err != nil {
			r.t.Fatalf("%s: the server sent non-JSON %q, want %s", where, b, want)
		}
		ids := maps.Clone(r.ids)
		if sameShape(w, g, ids) {
			for k, v := range ids {
				if _, known := r.ids[k]; !known {
					r.ids[k] = v
					r.byID[v] = r.conn
				}
			}
			return
		}
		if !skipping {
			r.t.Fatalf("%s: got\n  %s\nwant (as the README shows)\n  %s", where, b, want)
		}
	}
}

func (r *readmeRun) expectRaw(where string, c *client, want string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil || string(b) != want {
		r.t.Fatalf("%s: the connection got %q (%v), want %q", where, b, err, want)
	}
}

// sameShape reports whether got equals want, except for the values of
// the keys that name things a run makes up (connectionId, and request_id,
// which the server may derive with a secret of its own): any non-empty
// string, the same one wherever the README repeats a value. ids holds the
// README's values already seen and gets the new ones.
func sameShape(want, got any, ids map[string]string) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(want, got)
	}
	gm, ok := got.(map[string]any)
	if !ok || len(wm) != len(gm) {
		return false
	}
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok {
			return false
		}
		if k == "connectionId" || k == "request_id" {
			ws, _ := wv.(string)
			gs, _ := gv.(string)
			if gs == "" {
				return false
			}
			if seen, ok := ids[ws]; ok && seen != gs {
				return false
			}
			ids[ws] = gs
			continue
		}
		if !sameShape(wv, gv, ids) {
			return false
		}
	}
	return true
}

// TestREADMEGoSnippets compiles README.md's Go blocks with what they assume
// around them (imports, ctx, cfg, endpoint, a connection ID, an event): the
// ConnectionManager block as one function, the two blocks of "Your own
// app" (the router, then the local gateway that serves it) as another.
// They are fragments, so they are compiled, not run; the same calls run in
// each package's Example functions and in cmd/streamer/dev.go.
func TestREADMEGoSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	bodies := map[string]string{}
	n := 0
	for _, b := range readmeBlocks(t) {
		if b.lang == "go" {
			bodies[b.heading] += b.text
			n++
		}
	}
	manager, app := bodies["Sending from Go: the ConnectionManager"], bodies["Your own app, locally and on Lambda"]
	if manager == "" || app == "" || n != 3 {
		t.Fatalf("README.md's Go blocks moved (%d blocks, under %v): update this test with them", n, reflect.ValueOf(bodies).MapKeys())
	}
	src := `package main

import (
	"context"
	"errors"
	"log"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

// Each import is used by one block or the other.
var _, _, _, _ = errors.Is, config.LoadDefaultConfig, awslambda.WithFlusher, local.New
var _ progress.Reporter

func connectionManager(ctx context.Context, connectionID string, event any) {
` + manager + `}

func app(ctx, shutdownCtx context.Context, cfg aws.Config, endpoint string) {
` + app + `}

func main() {}
`
	dir := t.TempDir()
	file := filepath.Join(dir, "main.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "snippets"), file).CombinedOutput()
	if err != nil {
		t.Fatalf("README.md's Go blocks do not compile: %v\n%s\n(line numbers are of this file:)\n%s", err, out, numbered(src))
	}
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, l)
	}
	return b.String()
}
