package stack_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/stack"
)

// esbuildApp is our TypeScript app whose functions `sam build` bundles
// with esbuild; `make test-deps` installs its node_modules (esbuild and
// the management API client) from its lockfile.
const esbuildApp = "testdata/esbuildapp"

// needEsbuildApp skips a test without node or esbuildApp's node_modules.
func needEsbuildApp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat(filepath.Join(esbuildApp, "node_modules/.bin/esbuild")); err != nil {
		if os.Getenv(dynamotest.RequireEnv) == "1" {
			t.Fatal(esbuildApp + "/node_modules is missing: run `make test-deps` (make test does)")
		}
		t.Skip(esbuildApp + "/node_modules is missing: run `make test-deps`")
	}
}

// TestEsbuildTypeScriptApp runs testdata/esbuildapp, unbuilt: its
// TypeScript functions name BuildMethod esbuild and are bundled as `sam
// build` bundles them before they run. Two WebSocket clients each get
// their answer through the management API from the echo bundle, which
// carries the SDK client (the artifacts folder has no node_modules) and
// says how it was built: it runs from echo.js at the artifacts' root
// (its Handler src/handlers/echo.handler rewritten as SAM rewrites it),
// a stack frame maps back to src/lib/reply.ts (Sourcemap, with
// NODE_OPTIONS=--enable-source-maps), its local names are minified (the
// default Minify), and its greeting comes from a .txt file (Loader). The
// $connect function is an ES module bundle, connect.mjs (Format esm,
// OutExtension), which its Handler connect.handler finds as Lambda does.
// The source folder gets nothing from the build.
func TestEsbuildTypeScriptApp(t *testing.T) {
	short(t)
	needEsbuildApp(t)
	p := start(t, stack.Config{Template: filepath.Join(esbuildApp, "template.yaml"), StackName: "esbuild"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	a := dial(ctx, t, p.WebSocketURL(), nil)
	t.Logf("first $connect (esbuild, cold start) after %v", time.Since(start))
	b := dial(ctx, t, p.WebSocketURL(), nil)
	a.send(ctx, `from a`)
	b.send(ctx, `from b`)
	type reply struct {
		Text     string `json:"text"`
		Module   string `json:"module"`
		Frame    string `json:"frame"`
		Minified bool   `json:"minified"`
	}
	for _, tc := range []struct {
		c    *client
		want reply
	}{
		{a, reply{Text: "hello from a", Module: "echo.js", Frame: "mapped", Minified: true}},
		{b, reply{Text: "hello from b", Module: "echo.js", Frame: "mapped", Minified: true}},
	} {
		raw := tc.c.read(ctx)
		var got reply
		if err := json.Unmarshal([]byte(raw), &got); err != nil || got != tc.want {
			t.Errorf("read %s, want %+v", raw, tc.want)
		}
	}
	for _, leftover := range []string{"echo.js", "connect.js", "src/handlers/echo.js"} {
		if _, err := os.Stat(filepath.Join(esbuildApp, leftover)); !os.IsNotExist(err) {
			t.Errorf("the build wrote %s into the source folder: %v", leftover, err)
		}
	}
}

// TestEsbuildRebuildsOnChange runs a TypeScript function built with
// esbuild whose answer is a text file the bundle inlines (Loader): with
// Watch on, a change to that file makes the next invocation run a fresh
// bundle. The project's node_modules (esbuildApp's, linked) holds esbuild.
func TestEsbuildRebuildsOnChange(t *testing.T) {
	short(t)
	needEsbuildApp(t)
	dir := t.TempDir()
	tpl := strings.Replace(watchTemplate, "    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.12}\n",
		"    Metadata: {BuildMethod: esbuild, BuildProperties: {Loader: [.txt=text]}}\n    Properties: {CodeUri: src/, Handler: app.handler, Runtime: nodejs22.x}\n", 1)
	files := map[string]string{
		"template.yaml":    tpl,
		"src/package.json": `{"name": "watched", "private": true}`,
		"src/app.ts":       "import version from \"./version.txt\";\n\nexport const handler = async (): Promise<{ statusCode: number; body: string }> => ({ statusCode: 200, body: version.trim() });\n",
		"src/version.txt":  "v1",
	}
	writeTree(t, dir, files)
	modules, err := filepath.Abs(filepath.Join(esbuildApp, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(dir, "src/node_modules")); err != nil {
		t.Fatal(err)
	}
	awaitRebuild(t, dir, "app.js")
}

// TestEsbuildInstallsDependencies runs a TypeScript function built with
// esbuild whose project has a package.json and no node_modules: its
// dependencies are installed by npm into the scratch copy, as `sam build`
// installs them (a local file: dependency, so no registry is reached),
// and bundled; esbuild comes from PATH.
func TestEsbuildInstallsDependencies(t *testing.T) {
	short(t)
	needEsbuildApp(t)
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not installed")
	}
	bin, err := filepath.Abs(filepath.Join(esbuildApp, "node_modules/.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"template.yaml": strings.Replace(watchTemplate, "    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.12}\n",
			"    Metadata: {BuildMethod: esbuild}\n    Properties: {CodeUri: src/, Handler: app.handler, Runtime: nodejs22.x}\n", 1),
		"src/package.json":          `{"name": "installs", "private": true, "dependencies": {"greeting": "file:greeting"}}`,
		"src/greeting/package.json": `{"name": "greeting", "version": "1.0.0", "main": "index.js"}`,
		"src/greeting/index.js":     "exports.greeting = \"hello from a dependency\";\n",
		"src/app.ts":                "import { greeting } from \"greeting\";\n\nexport const handler = async (): Promise<{ statusCode: number; body: string }> => ({ statusCode: 200, body: greeting });\n",
	})
	p := start(t, stack.Config{Template: filepath.Join(dir, "template.yaml")})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dial(ctx, t, p.WebSocketURL(), nil)
	c.send(ctx, `{"action":"anything"}`)
	if got, want := c.read(ctx), "hello from a dependency"; got != want {
		t.Errorf("read %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "src/node_modules")); !os.IsNotExist(err) {
		t.Errorf("the install wrote into the source folder: %v", err)
	}
}

// TestEsbuildMissingFailsStart checks that a function built with esbuild
// when no esbuild is found (none in the project, none on PATH) stops the
// start with a BuildError naming it and saying how to install esbuild,
// rather than running its TypeScript unbundled.
func TestEsbuildMissingFailsStart(t *testing.T) {
	dir := t.TempDir()
	tpl := strings.Replace(watchTemplate, "    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.12}\n",
		"    Metadata: {BuildMethod: esbuild}\n    Properties: {CodeUri: src/, Handler: app.handler, Runtime: nodejs22.x}\n", 1)
	writeTree(t, dir, map[string]string{"src/app.ts": "export const handler = async () => ({ statusCode: 200 });\n"})
	t.Setenv("PATH", t.TempDir())
	err := startFails(t, dir, tpl)
	var be *stack.BuildError
	if !errors.As(err, &be) || be.Function != "Fn" || be.Method != "esbuild" || !errors.Is(err, stack.ErrEsbuildNotFound) {
		t.Fatalf("start: %v, want a BuildError for Fn, esbuild, ErrEsbuildNotFound", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "function Fn: esbuild:") || !strings.Contains(msg, "npm install") {
		t.Errorf("error %q does not name the function and how to install esbuild", msg)
	}
}
