package stack

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/streamer-go/streamer/runtime/template"
)

// TestEsbuildArgs checks the esbuild command line of SAM's esbuild
// method, from each BuildProperties key and from their absence.
func TestEsbuildArgs(t *testing.T) {
	dir := t.TempDir()
	files(t, dir, map[string]string{
		"app.ts": "", "src/app.js": "", "src/a.ts": "", "lib/b.js": "", "src/both.ts": "", "src/both.js": "",
		"package.json": `{"dependencies": {"zod": "3", "@aws-sdk/client-dynamodb": "3"}, "devDependencies": {"esbuild": "0"}}`,
	})
	manifest := filepath.Join(dir, "package.json")
	fixed := []string{"--bundle", "--platform=node", "--outdir=/art"}
	defaults := append(append([]string(nil), fixed...), "--target=es2020", "--format=cjs", "--minify")
	for _, tc := range []struct {
		name        string
		props       map[string]any
		handler     string
		nodeOptions string
		want        []string
	}{
		{"defaults: the entry point from the Handler, .ts found", map[string]any{}, "app.handler", "",
			append([]string{"app.ts"}, defaults...)},
		{"the Handler's folder kept, .js when there is no .ts", map[string]any{}, "src/app.lambdaHandler", "",
			append([]string{"src/app.js"}, defaults...)},
		{".ts before .js", map[string]any{}, "src/both.handler", "",
			append([]string{"src/both.ts"}, defaults...)},
		{"empty EntryPoints: the Handler's", map[string]any{"EntryPoints": []string{}}, "app.handler", "",
			append([]string{"app.ts"}, defaults...)},
		{"every kind of property", map[string]any{
			"EntryPoints": []string{"src/a.ts", "lib/b"}, "Minify": false, "Target": "node22", "Format": "esm",
			"Sourcemap": true, "OutExtension": []string{".js=.mjs"}, "External": []string{"@aws-sdk/*", "pg-native"},
			"Loader": []string{".txt=text", ".png=dataurl"}, "MainFields": []string{"module", "main"},
			"Banner": "js=//b", "KeepNames": true, "TreeShaking": false, "UseNpmCi": true,
			"Bundle": false, "Platform": "browser", "Outdir": "elsewhere", "main_fields_extra": []string{"x"},
		}, "app.handler", "",
			append(append([]string{"src/a.ts", "lib/b.js"}, fixed...),
				"--banner=js=//b", "--external:@aws-sdk/*", "--external:pg-native", "--format=esm", "--keep-names",
				"--loader:.txt=text", "--loader:.png=dataurl", "--main-fields:module", "--main-fields:main",
				"--main-fields-extra:x", "--out-extension:.js=.mjs", "--sourcemap", "--target=node22")},
		{"External ./node_modules/*: the manifest's dependencies instead", map[string]any{
			"External": []string{"./node_modules/*", "other"}, "Minify": true,
		}, "app.handler", "",
			append([]string{"--external:@aws-sdk/client-dynamodb", "--external:zod", "app.ts"}, append(append([]string(nil), fixed...), "--target=es2020", "--format=cjs", "--minify")...)},
		{"NODE_OPTIONS --enable-source-maps turns Sourcemap on", map[string]any{}, "app.handler", "--max-old-space-size=512 --enable-source-maps",
			append(append([]string{"app.ts"}, defaults...), "--sourcemap")},
		{"an explicit Sourcemap wins over NODE_OPTIONS", map[string]any{"Sourcemap": false}, "app.handler", "--enable-source-maps",
			append([]string{"app.ts"}, defaults...)},
		{"a Sourcemap string", map[string]any{"Sourcemap": "inline"}, "app.handler", "",
			append(append([]string{"app.ts"}, defaults...), "--sourcemap=inline")},
	} {
		got, err := esbuildArgs(tc.props, tc.handler, tc.nodeOptions, dir, "/art", manifest)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		props map[string]any
	}{
		{"no file for the Handler's module", map[string]any{}},
		{"an entry point with its extension, missing", map[string]any{"EntryPoints": []string{"app.js"}}},
		{"an entry point without one, missing", map[string]any{"EntryPoints": []string{"lib/none"}}},
	} {
		handler := "missing.handler"
		if tc.props["EntryPoints"] != nil {
			handler = "app.handler"
		}
		if _, err := esbuildArgs(tc.props, handler, "", dir, "/art", manifest); !errors.Is(err, ErrEntryPointNotFound) {
			t.Errorf("%s: %v, want ErrEntryPointNotFound", tc.name, err)
		}
	}
}

// TestEsbuildHandler checks the Handler `sam build` writes for an esbuild
// function: as written when the bundle is where it points, else its last
// element; and NODE_OPTIONS gaining --enable-source-maps with Sourcemap.
func TestEsbuildHandler(t *testing.T) {
	for _, tc := range []struct {
		props            map[string]any
		handler, want    string
		env, wantOptions string
	}{
		{map[string]any{}, "app.handler", "app.handler", "", ""},
		{map[string]any{}, "src/handlers/app.handler", "app.handler", "", ""},
		{map[string]any{"EntryPoints": []string{"src/handlers/app.ts"}}, "dist/handlers/app.handler", "app.handler", "", ""},
		// Two entry points land under their common folder, src.
		{map[string]any{"EntryPoints": []string{"src/a/app.ts", "src/b/other.ts"}}, "a/app.handler", "a/app.handler", "", ""},
		{map[string]any{"EntryPoints": []string{"src/a/app.ts", "src/b/other.ts"}}, "src/a/app.handler", "app.handler", "", ""},
		{map[string]any{"OutExtension": []string{".js=.mjs"}}, "src/app.handler", "app.handler", "", ""},
		{map[string]any{}, "/opt/nodejs/layer.handler", "/opt/nodejs/layer.handler", "", ""},
		{map[string]any{"Sourcemap": true}, "app.handler", "app.handler", "", "--enable-source-maps"},
		{map[string]any{"Sourcemap": true}, "app.handler", "app.handler", "--max-old-space-size=512", "--max-old-space-size=512 --enable-source-maps"},
		{map[string]any{"Sourcemap": true}, "app.handler", "app.handler", "--enable-source-maps", "--enable-source-maps"},
		{map[string]any{"Sourcemap": false}, "app.handler", "app.handler", "--inspect", "--inspect"},
	} {
		f := &template.Function{LogicalID: "Fn", Runtime: "nodejs22.x", Handler: tc.handler,
			Environment: map[string]string{}, Build: template.Build{Method: template.BuildEsbuild, Properties: tc.props}}
		if tc.env != "" {
			f.Environment["NODE_OPTIONS"] = tc.env
		}
		handler, options := builtFunction(f)
		if handler != tc.want || options != tc.wantOptions {
			t.Errorf("%v, Handler %s, NODE_OPTIONS %q: got %s, %q; want %s, %q", tc.props, tc.handler, tc.env, handler, options, tc.want, tc.wantOptions)
		}
	}
	plain := &template.Function{Handler: "src/app.handler", Environment: map[string]string{"NODE_OPTIONS": "--inspect"}}
	if h, o := builtFunction(plain); h != "src/app.handler" || o != "--inspect" {
		t.Errorf("a function without esbuild: %s, %q", h, o)
	}
}

// fakeTools writes, into a folder it returns for PATH, an esbuild that
// records where it ran, with what and beside which files, and writes
// app.js into --outdir (or fails, given --fail; --version prints
// FAKE_ESBUILD_VERSION, else 0.28.2), and an npm that records
// the same and installs that esbuild into node_modules/.bin. record is
// the folder they record into, esbuild under a name that says which
// folder it ran from.
func fakeTools(t *testing.T, record string) string {
	t.Helper()
	bin := t.TempDir()
	esbuild := `#!/bin/sh
[ "$1" = --version ] && { echo "${FAKE_ESBUILD_VERSION:-0.28.2}"; exit 0; }
{ pwd; echo "$@"; ls -A | LC_ALL=C sort | tr '\n' ' '; echo; } > "` + record + `/esbuild-$(basename "$(dirname "$0")")"
for a in "$@"; do case $a in --outdir=*) out=${a#--outdir=};; --fail) echo bundling failed >&2; exit 1;; esac; done
echo bundled > "$out/app.js"
`
	npm := `#!/bin/sh
{ pwd; echo "$@"; ls -A | LC_ALL=C sort | tr '\n' ' '; echo; } > "` + record + `/npm"
mkdir -p node_modules/.bin
cp "` + filepath.Join(bin, "esbuild") + `" node_modules/.bin/esbuild
`
	files(t, bin, map[string]string{"npm": npm, "esbuild": esbuild})
	for _, name := range []string{"npm", "esbuild"} {
		if err := os.Chmod(filepath.Join(bin, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func esbuildFunction(src string, props map[string]any) *template.Function {
	return &template.Function{LogicalID: "Fn", Runtime: "nodejs22.x", Handler: "app.handler", CodeDir: src,
		Environment: map[string]string{}, Build: template.Build{Method: template.BuildEsbuild, SourceDir: src, Properties: props}}
}

// TestEsbuildBuildContract checks where SAM's esbuild method runs what:
// with a package.json and no node_modules, CodeUri copied to a scratch
// folder (without .git, .aws-sam and node_modules), the production
// dependencies installed there by npm (npm ci with UseNpmCi and a
// lockfile), the esbuild npm put in its node_modules/.bin run there into
// a fresh artifacts folder, which becomes the function's code; with the
// project's node_modules, that linked in place of the install and its
// esbuild run, with a start-up line saying so; without a package.json,
// esbuild from PATH run in CodeUri. The source folder is left as it was.
func TestEsbuildBuildContract(t *testing.T) {
	record := t.TempDir()
	bin := fakeTools(t, record)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	line := func(name string, n int) string {
		t.Helper()
		return strings.Split(read(t, filepath.Join(record, name)), "\n")[n]
	}
	var lines notices
	build := func(f *template.Function) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "Fn")
		lines = nil
		code, build, err := functionCode(f, out, lines.add)
		if err != nil || build == nil || code != out {
			t.Fatalf("functionCode = %q, build %v, %v", code, build != nil, err)
		}
		files(t, out, map[string]string{"stale": ""})
		if err := build(context.Background()); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) != 1 || entries[0].Name() != "app.js" {
			t.Errorf("artifacts hold %v, want app.js alone", entries)
		}
		return out
	}

	src := t.TempDir()
	files(t, src, map[string]string{
		"app.ts": "", "package.json": `{"dependencies": {"zod": "3"}}`, "package-lock.json": "{}",
		".git/HEAD": "", ".aws-sam/build.toml": "", "lib/.aws-sam/x": "", "lib/util.ts": "",
	})
	out := build(esbuildFunction(src, map[string]any{}))
	scratch := line("npm", 0)
	if scratch == src || !strings.HasPrefix(scratch, filepath.Dir(out)) {
		t.Errorf("npm ran in %s, want a scratch folder beside the artifacts", scratch)
	}
	if got, want := line("npm", 1), "install -q --no-audit --no-save --unsafe-perm --omit=dev"; got != want {
		t.Errorf("npm %s, want npm %s", got, want)
	}
	if got, want := line("npm", 2), "app.ts lib package-lock.json package.json"; got != want {
		t.Errorf("scratch copy holds %q, want %q", got, want)
	}
	if got := line("esbuild-.bin", 0); got != scratch {
		t.Errorf("esbuild ran in %s, want the scratch folder %s", got, scratch)
	}
	if got, want := line("esbuild-.bin", 1), "app.ts --bundle --platform=node --outdir="+out+" --target=es2020 --format=cjs --minify"; got != want {
		t.Errorf("esbuild %s\nwant esbuild %s", got, want)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("scratch folder left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, "node_modules")); !os.IsNotExist(err) {
		t.Errorf("the build installed into the source folder: %v", err)
	}
	if len(lines) != 0 {
		t.Errorf("notices %q, want none", lines)
	}

	build(esbuildFunction(src, map[string]any{"UseNpmCi": true}))
	if got := line("npm", 1); got != "ci" {
		t.Errorf("UseNpmCi with a lockfile: npm %s, want npm ci", got)
	}

	// The project's own node_modules, with its esbuild: no npm runs.
	os.Remove(filepath.Join(record, "npm"))
	files(t, src, map[string]string{"node_modules/.bin/esbuild": read(t, filepath.Join(bin, "esbuild")), "node_modules/zod/index.js": ""})
	if err := os.Chmod(filepath.Join(src, "node_modules/.bin/esbuild"), 0o755); err != nil {
		t.Fatal(err)
	}
	build(esbuildFunction(src, map[string]any{}))
	if _, err := os.Stat(filepath.Join(record, "npm")); !os.IsNotExist(err) {
		t.Errorf("npm ran although the project has node_modules: %v", err)
	}
	if got, want := line("esbuild-.bin", 2), "app.ts lib node_modules package-lock.json package.json"; got != want {
		t.Errorf("scratch copy holds %q, want %q", got, want)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "not emulated: function Fn bundles the dependencies in "+filepath.Join(src, "node_modules")+" as installed") {
		t.Errorf("notices %q, want one saying the project's node_modules is used as installed", lines)
	}

	// Each build looks at CodeUri afresh: a project that loses its
	// node_modules after the start has its dependencies installed.
	os.Remove(filepath.Join(record, "npm"))
	_, rebuild, err := functionCode(esbuildFunction(src, map[string]any{}), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(src, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := line("npm", 1); !strings.HasPrefix(got, "install ") {
		t.Errorf("after node_modules went: npm %q, want npm install", got)
	}
	os.Remove(filepath.Join(record, "npm"))

	// No package.json: esbuild (PATH's) runs in CodeUri, nothing copied.
	plain := t.TempDir()
	files(t, plain, map[string]string{"app.ts": ""})
	build(esbuildFunction(plain, map[string]any{"Minify": false}))
	if got := line("esbuild-"+filepath.Base(bin), 0); got != plain {
		t.Errorf("without package.json esbuild ran in %s, want CodeUri %s", got, plain)
	}
	if _, err := os.Stat(filepath.Join(record, "npm")); !os.IsNotExist(err) {
		t.Errorf("npm ran without a package.json: %v", err)
	}
}

// TestEsbuildBuildFailures checks that a build `sam build` would fail
// fails with a BuildError naming the function and the method: no esbuild
// and no npm at start, a missing entry point, an esbuild older than
// 0.14.13 with External ./node_modules/*, and a failing bundle (with
// esbuild's output) when the build runs.
func TestEsbuildBuildFailures(t *testing.T) {
	check := func(what string, err, cause error) *BuildError {
		t.Helper()
		var be *BuildError
		if !errors.As(err, &be) || be.Function != "Fn" || be.Method != template.BuildEsbuild || !strings.HasPrefix(err.Error(), "function Fn: esbuild: ") {
			t.Fatalf("%s: %v, want a BuildError for Fn, esbuild", what, err)
		}
		if cause != nil && !errors.Is(err, cause) {
			t.Errorf("%s: %v, want %v", what, err, cause)
		}
		return be
	}
	record := t.TempDir()
	bin := fakeTools(t, record)
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir())

	src := t.TempDir()
	files(t, src, map[string]string{"app.ts": ""})
	_, build, err := functionCode(esbuildFunction(src, map[string]any{}), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
	if build != nil {
		t.Error("no esbuild: a build was returned")
	}
	check("no esbuild", err, ErrEsbuildNotFound)

	files(t, src, map[string]string{"package.json": `{"dependencies": {"zod": "3"}}`})
	_, _, err = functionCode(esbuildFunction(src, map[string]any{}), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
	check("no npm for the dependencies", err, ErrNpmNotFound)

	t.Setenv("PATH", bin+string(os.PathListSeparator)+path)
	runBuild := func(f *template.Function) error {
		t.Helper()
		_, build, err := functionCode(f, filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
		if err != nil {
			t.Fatal(err)
		}
		return build(context.Background())
	}
	f := esbuildFunction(src, map[string]any{})
	f.Handler = "missing.handler"
	check("no entry point", runBuild(f), ErrEntryPointNotFound)

	// External ./node_modules/* wants esbuild 0.14.13 or later.
	external := map[string]any{"External": []string{"./node_modules/*"}}
	t.Setenv("FAKE_ESBUILD_VERSION", "0.14.12")
	check("esbuild 0.14.12", runBuild(esbuildFunction(src, external)), ErrEsbuildTooOld)
	for _, v := range []string{"0.14.13", "0.15", "1.0.0"} {
		t.Setenv("FAKE_ESBUILD_VERSION", v)
		if err := runBuild(esbuildFunction(src, external)); err != nil {
			t.Errorf("esbuild %s: %v", v, err)
		}
	}
	t.Setenv("FAKE_ESBUILD_VERSION", "0.14.12")
	if err := runBuild(esbuildFunction(src, map[string]any{})); err != nil {
		t.Errorf("esbuild 0.14.12 without External ./node_modules/*: %v", err)
	}
	t.Setenv("FAKE_ESBUILD_VERSION", "")

	be := check("failing bundle", runBuild(esbuildFunction(src, map[string]any{"Fail": true})), nil)
	var exit *exec.ExitError
	if !errors.As(be, &exit) || !strings.Contains(be.Error(), "bundling failed") {
		t.Errorf("failing bundle: %v, want esbuild's exit status and its output", be)
	}
}
