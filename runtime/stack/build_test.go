package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/template"
)

// files writes name → content under dir.
func files(t *testing.T, dir string, fs map[string]string) {
	t.Helper()
	for name, content := range fs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// notices collects functionCode's start-up lines.
type notices []string

func (n *notices) add(format string, args ...any) { *n = append(*n, fmt.Sprintf(format, args...)) }

// madeFunction is a provided.al2023 function Fn built by the Makefile in
// src (BuildMethod makefile).
func madeFunction(src string) *template.Function {
	return &template.Function{LogicalID: "Fn", Runtime: "provided.al2023", CodeDir: src,
		Build: template.Build{Method: template.BuildMakefile, SourceDir: src, Makefile: filepath.Join(src, "Makefile")}}
}

// recordingMakefile's target writes what the build saw into
// ARTIFACTS_DIR: its working folder, ARTIFACTS_DIR itself and the files
// there; it writes a file into its working folder and a bootstrap.
const recordingMakefile = `build-Fn:
	pwd > "$(ARTIFACTS_DIR)/cwd"
	echo "$(ARTIFACTS_DIR)" > "$(ARTIFACTS_DIR)/artifacts"
	find . -type f | LC_ALL=C sort > "$(ARTIFACTS_DIR)/files"
	touch made-here
	printf '#!/bin/sh\n' > "$(ARTIFACTS_DIR)/bootstrap"

build-Other:
	true
`

// TestMakeBuildContract checks SAM's makefile build method: the source
// folder copied to a scratch folder (without .git and .aws-sam) where
// `make build-{LogicalId}` runs with ARTIFACTS_DIR naming a fresh folder
// that becomes the function's code, the source left untouched.
func TestMakeBuildContract(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "Fn")
	files(t, src, map[string]string{
		"Makefile": recordingMakefile, "main.go": "package main", "sub/data.txt": "x",
		".git/HEAD": "ref", ".aws-sam/build.toml": "", "sub/.git/config": "",
	})
	if err := os.Symlink(filepath.Join(src, "sub/data.txt"), filepath.Join(src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	var lines notices
	code, build, err := functionCode(madeFunction(src), out, lines.add)
	if err != nil || build == nil || code != out || len(lines) != 0 {
		t.Fatalf("functionCode = %q, build %v, %v, notices %q", code, build != nil, err, lines)
	}
	if err := build(context.Background()); err != nil {
		t.Fatal(err)
	}
	cwd := read(t, filepath.Join(out, "cwd"))
	if cwd == src || strings.HasPrefix(cwd, src+"/") || strings.HasPrefix(cwd, out) {
		t.Errorf("make ran in %s, want a scratch copy (source %s, artifacts %s)", cwd, src, out)
	}
	if _, err := os.Stat(cwd); !os.IsNotExist(err) {
		t.Errorf("scratch folder %s left behind: %v", cwd, err)
	}
	if got := read(t, filepath.Join(out, "artifacts")); got != out {
		t.Errorf("ARTIFACTS_DIR = %s, want %s", got, out)
	}
	if got, want := read(t, filepath.Join(out, "files")), "./Makefile\n./link.txt\n./main.go\n./sub/data.txt"; got != want {
		t.Errorf("scratch copy holds\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(src, "made-here")); !os.IsNotExist(err) {
		t.Errorf("the build wrote into the source folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "bootstrap")); err != nil {
		t.Error(err)
	}

	// Each build starts from an empty artifacts folder.
	files(t, out, map[string]string{"stale": ""})
	if err := build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "stale")); !os.IsNotExist(err) {
		t.Errorf("a file of the previous build is still there: %v", err)
	}
}

// TestMakeBuildPlaces checks Metadata's WorkingDirectory (inside the
// source: in the scratch copy; outside: as given) and ContextPath (the
// Makefile read from another folder).
func TestMakeBuildPlaces(t *testing.T) {
	src, other, ctxDir := t.TempDir(), t.TempDir(), t.TempDir()
	files(t, src, map[string]string{"sub/data.txt": "x"})
	files(t, ctxDir, map[string]string{"Makefile": recordingMakefile})
	for _, tc := range []struct {
		name, wd string
		want     func(cwd string) bool
	}{
		{"working directory inside the source", filepath.Join(src, "sub"), func(cwd string) bool {
			return filepath.Base(cwd) == "sub" && !strings.HasPrefix(cwd, src)
		}},
		{"working directory elsewhere", other, func(cwd string) bool { return cwd == other }},
	} {
		out := filepath.Join(t.TempDir(), "Fn")
		f := madeFunction(src)
		f.Build.Makefile = filepath.Join(ctxDir, "Makefile")
		f.Build.WorkingDirectory = tc.wd
		_, build, err := functionCode(f, out, (&notices{}).add)
		if err != nil {
			t.Fatal(err)
		}
		if err := build(context.Background()); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cwd := read(t, filepath.Join(out, "cwd")); !tc.want(cwd) {
			t.Errorf("%s: make ran in %s", tc.name, cwd)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "Makefile")); !os.IsNotExist(err) {
		t.Fatal("the source holds a Makefile; ContextPath is not tested")
	}
}

// TestMakeBuildFailures checks that a build `sam build` would fail fails
// with a BuildError naming the function and its target: no Makefile and
// no make at start, a Makefile without the target and a failing recipe
// when the build runs; nothing falls back to another build.
func TestMakeBuildFailures(t *testing.T) {
	check := func(what string, err error, cause error) {
		t.Helper()
		var be *BuildError
		if !errors.As(err, &be) || be.Function != "Fn" || be.Target != "build-Fn" || be.Method != template.BuildMakefile {
			t.Fatalf("%s: %v, want a BuildError for Fn, build-Fn", what, err)
		}
		if cause != nil && !errors.Is(err, cause) {
			t.Errorf("%s: %v, want %v", what, err, cause)
		}
		if !strings.Contains(err.Error(), "function Fn: make build-Fn: ") {
			t.Errorf("%s: message %q", what, err)
		}
	}

	src := t.TempDir()
	files(t, src, map[string]string{"main.go": "package main"})
	code, build, err := functionCode(madeFunction(src), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
	if build != nil || code == src {
		t.Errorf("no Makefile: a build or CodeUri was used anyway (%q)", code)
	}
	check("no Makefile", err, ErrMakefileNotFound)

	// runBuild builds src's function with the Makefile it holds now.
	runBuild := func() error {
		_, build, err := functionCode(madeFunction(src), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
		if err != nil {
			t.Fatal(err)
		}
		return build(context.Background())
	}
	files(t, src, map[string]string{"Makefile": "build-Other:\n\ttrue\n"})
	err = runBuild()
	check("no target", err, nil)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || len(err.(*BuildError).Output) == 0 {
		t.Errorf("no target: %v, want make's exit status and its output", err)
	}

	files(t, src, map[string]string{"Makefile": "build-Fn:\n\techo compiling; false\n"})
	err = runBuild()
	check("failing recipe", err, nil)
	if !strings.Contains(err.Error(), "compiling") {
		t.Errorf("failing recipe: %q does not carry make's output", err)
	}

	t.Setenv("PATH", t.TempDir())
	_, build, err = functionCode(madeFunction(src), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
	if build != nil {
		t.Error("no make: a build was returned")
	}
	check("no make", err, ErrMakeNotFound)
}

// TestFunctionCodeWithoutBuild checks the functions that run from CodeUri
// as they are: a template `sam build` wrote (BuildMethod makefile, no
// Makefile, a bootstrap) and a build method that is not run, each with a
// start-up line; a plain Node.js function, without one.
func TestFunctionCodeWithoutBuild(t *testing.T) {
	built := t.TempDir()
	files(t, built, map[string]string{"bootstrap": ""})
	node := t.TempDir()
	for _, tc := range []struct {
		f    *template.Function
		line string
	}{
		{madeFunction(built), "not emulated: function Fn names BuildMethod makefile but has no Makefile"},
		{&template.Function{LogicalID: "Rs", Runtime: "provided.al2023", CodeDir: built, Build: template.Build{Method: "rust-cargolambda", SourceDir: built}}, "not emulated: function Rs names BuildMethod rust-cargolambda, which is not run"},
		{&template.Function{LogicalID: "Plain", Runtime: "nodejs22.x", CodeDir: node, Build: template.Build{SourceDir: node}}, ""},
	} {
		var lines notices
		code, build, err := functionCode(tc.f, t.TempDir(), lines.add)
		if err != nil || build != nil || code != tc.f.CodeDir {
			t.Errorf("%s: code %q, build %v, %v", tc.f.LogicalID, code, build != nil, err)
		}
		if tc.line == "" && len(lines) != 0 || tc.line != "" && (len(lines) != 1 || !strings.HasPrefix(lines[0], tc.line)) {
			t.Errorf("%s: notices %q, want %q", tc.f.LogicalID, lines, tc.line)
		}
	}
}

// TestMakeBuildCancelled checks that a cancelled build (the stack shutting
// down) returns soon even when its recipe started a process that holds
// make's output open: make is stopped and the build does not wait for
// the rest.
func TestMakeBuildCancelled(t *testing.T) {
	src := t.TempDir()
	files(t, src, map[string]string{"Makefile": "build-Fn:\n\tsleep 20\n"})
	_, build, err := functionCode(madeFunction(src), filepath.Join(t.TempDir(), "Fn"), (&notices{}).add)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- build(ctx) }()
	time.Sleep(200 * time.Millisecond) // let make start its recipe
	cancel()
	select {
	case err := <-done:
		var be *BuildError
		if !errors.As(err, &be) {
			t.Errorf("cancelled build: %v, want a BuildError", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a cancelled build waits for its recipe's processes")
	}
}
