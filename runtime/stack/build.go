package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/streamer-go/streamer/runtime/template"
)

// ErrMakeNotFound is the cause in the BuildError of a function built with
// its Makefile when no make is on PATH.
var ErrMakeNotFound = errors.New("stack: make is not on PATH")

// ErrMakefileNotFound is the cause in the BuildError of a function built
// with its Makefile when the Makefile is missing.
var ErrMakefileNotFound = errors.New("stack: no Makefile")

// BuildError is a function's build failing where `sam build` fails: no
// make, no Makefile, a Makefile without the function's target, a recipe
// or a go build that fails.
type BuildError struct {
	// Function is the function's logical ID.
	Function string
	// Method is the build method: template.BuildMakefile or
	// template.BuildGo.
	Method string
	// Target is the make target, build-{LogicalId}; empty for a go build.
	Target string
	// Err is the cause: ErrMakeNotFound, ErrMakefileNotFound, the build
	// command's *exec.ExitError, a copy that failed.
	Err error
	// Output is what the build command printed.
	Output []byte
}

func (e *BuildError) Error() string {
	what := "go build"
	if e.Target != "" {
		what = "make " + e.Target
	}
	s := fmt.Sprintf("function %s: %s: %v", e.Function, what, e.Err)
	if out := strings.TrimRight(string(e.Output), "\n"); out != "" {
		s += "\n" + out
	}
	return s
}

func (e *BuildError) Unwrap() error { return e.Err }

// functionCode returns the folder f's code runs from and the build that
// makes it there, as `sam build` would: `make build-{LogicalId}` into
// the folder dir for a function built with its Makefile, a go build of
// CodeUri into dir/bootstrap for a Go package; CodeUri and no build for
// the rest. A build that cannot run (no make, no Makefile) is an error
// here, before anything starts.
func functionCode(f *template.Function, dir string, notice func(string, ...any)) (string, func(context.Context) error, error) {
	switch {
	case f.MakeBuilt():
		_, err := os.Stat(f.Build.Makefile)
		if err != nil && strings.HasPrefix(f.Runtime, "provided") {
			if _, berr := os.Stat(filepath.Join(f.CodeDir, "bootstrap")); berr == nil {
				// A template `sam build` wrote keeps BuildMethod and
				// points CodeUri at the built code.
				notice("not emulated: function %s names BuildMethod makefile but has no Makefile (%s); it runs the bootstrap in CodeUri as built", f.LogicalID, f.Build.Makefile)
				return f.CodeDir, nil, nil
			}
		}
		build, err := makeBuild(f, dir)
		return dir, build, err
	case f.GoPackage():
		return dir, goBuild(f, filepath.Join(dir, "bootstrap")), nil
	}
	if m := f.Build.Method; m != "" && m != template.BuildGo && m != f.Runtime {
		notice("not emulated: function %s names BuildMethod %s, which is not run; its code runs from CodeUri as it is", f.LogicalID, m)
	}
	return f.CodeDir, nil, nil
}

// goBuild builds the Go main package in f's CodeUri into out, as SAM's
// go1.x build method does for a provided runtime.
func goBuild(f *template.Function, out string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, ".")
		cmd.Dir = f.CodeDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := runBuild(cmd); err != nil {
			return &BuildError{Function: f.LogicalID, Method: template.BuildGo, Err: err, Output: b}
		}
		return nil
	}
}

// makeBuild is SAM's makefile build method for f, each run into a fresh
// artifacts folder: the source folder (f.Build.SourceDir) is copied to a
// scratch folder (without .aws-sam and .git), and `make --makefile
// {Makefile} build-{LogicalId}` runs there (or in WorkingDirectory) with
// ARTIFACTS_DIR naming artifacts, which becomes the function's code. It
// fails at once, before any build, when make or the Makefile is missing.
func makeBuild(f *template.Function, artifacts string) (func(context.Context) error, error) {
	b := f.Build
	target := "build-" + f.LogicalID
	fail := func(err error, out []byte) *BuildError {
		return &BuildError{Function: f.LogicalID, Method: template.BuildMakefile, Target: target, Err: err, Output: out}
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		return nil, fail(fmt.Errorf("%w: %w", ErrMakeNotFound, err), nil)
	}
	if _, err := os.Stat(b.Makefile); err != nil {
		return nil, fail(fmt.Errorf("%w: %w", ErrMakefileNotFound, err), nil)
	}
	return func(ctx context.Context) error {
		if err := os.MkdirAll(filepath.Dir(artifacts), 0o755); err != nil {
			return fail(err, nil)
		}
		scratch, err := os.MkdirTemp(filepath.Dir(artifacts), "scratch-")
		if err != nil {
			return fail(err, nil)
		}
		defer os.RemoveAll(scratch)
		if err := copyTree(b.SourceDir, scratch, 0); err != nil {
			return fail(err, nil)
		}
		if err := os.RemoveAll(artifacts); err != nil {
			return fail(err, nil)
		}
		if err := os.Mkdir(artifacts, 0o755); err != nil {
			return fail(err, nil)
		}
		cmd := exec.CommandContext(ctx, mk, "--makefile", b.Makefile, target)
		cmd.Dir = makeDir(b, scratch)
		cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+artifacts)
		if out, err := runBuild(cmd); err != nil {
			return fail(err, out)
		}
		return nil
	}, nil
}

// buildWaitDelay bounds how long a cancelled build waits for the
// processes its command started (go's compilers, a recipe's commands)
// to let go of its output, so a shutdown during a build is not held up
// by them.
const buildWaitDelay = 2 * time.Second

// runBuild runs a build command and returns what it printed.
func runBuild(cmd *exec.Cmd) ([]byte, error) {
	cmd.WaitDelay = buildWaitDelay
	return cmd.CombinedOutput()
}

// makeDir is where make runs: WorkingDirectory, moved into the scratch
// copy when it lies inside the source folder, as SAM does; else the
// scratch copy's root.
func makeDir(b template.Build, scratch string) string {
	wd := b.WorkingDirectory
	if wd == "" {
		return scratch
	}
	rel, err := filepath.Rel(b.SourceDir, wd)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return wd
	}
	return filepath.Join(scratch, rel)
}

// maxCopyDepth bounds copyTree, which follows symbolic links as SAM's
// copy does, against a link to a folder above it.
const maxCopyDepth = 64

// copyTree copies the folder src into the existing folder dst, following
// symbolic links and leaving out anything named .aws-sam or .git, as
// `sam build` copies a source folder to its scratch folder.
func copyTree(src, dst string, depth int) error {
	if depth > maxCopyDepth {
		return fmt.Errorf("copy %s: more than %d folders deep (a symbolic link loop?)", src, maxCopyDepth)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == ".aws-sam" || e.Name() == ".git" {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		info, err := os.Stat(from)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := os.Mkdir(to, info.Mode().Perm()|0o700); err != nil {
				return err
			}
			if err := copyTree(from, to, depth+1); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(from, to, info.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(from, to string, perm os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
