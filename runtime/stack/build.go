package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/streamer-go/streamer/runtime/template"
)

// ErrMakeNotFound is the cause in the BuildError of a function built with
// its Makefile when no make is on PATH.
var ErrMakeNotFound = errors.New("stack: make is not on PATH")

// ErrMakefileNotFound is the cause in the BuildError of a function built
// with its Makefile when the Makefile is missing.
var ErrMakefileNotFound = errors.New("stack: no Makefile")

// ErrEsbuildNotFound is the cause in the BuildError of a function built
// with esbuild when no esbuild is found, neither in the project's
// node_modules/.bin nor on PATH. `sam build` does not bring one either.
var ErrEsbuildNotFound = errors.New("stack: cannot find esbuild; install it on PATH (npm install --global esbuild) or as a dependency of the function's project (npm install esbuild in CodeUri)")

// ErrNpmNotFound is the cause in the BuildError of a function built with
// esbuild whose dependencies need installing when no npm is on PATH.
var ErrNpmNotFound = errors.New("stack: npm is not on PATH (the esbuild build method installs the dependencies of package.json with it)")

// ErrEsbuildTooOld is the cause in the BuildError of a function built
// with esbuild whose External names ./node_modules/* when the esbuild
// found is older than minEsbuildForExternal, as `sam build` refuses it.
var ErrEsbuildTooOld = errors.New("stack: esbuild is too old to leave the dependencies out of the bundle (External ./node_modules/*)")

// minEsbuildForExternal is the oldest esbuild SAM's esbuild method runs
// with External ./node_modules/*.
var minEsbuildForExternal = []int{0, 14, 13}

// ErrEntryPointNotFound is the cause in the BuildError of a function
// built with esbuild when an entry point is not in CodeUri.
var ErrEntryPointNotFound = errors.New("stack: esbuild entry point does not exist")

// BuildError is a function's build failing where `sam build` fails: no
// make, no Makefile, a Makefile without the function's target, a recipe
// or a go build that fails, no esbuild, a bundle that fails.
type BuildError struct {
	// Function is the function's logical ID.
	Function string
	// Method is the build method: template.BuildMakefile,
	// template.BuildGo or template.BuildEsbuild.
	Method string
	// Target is the make target, build-{LogicalId}; empty for the other
	// methods.
	Target string
	// Err is the cause: ErrMakeNotFound, ErrMakefileNotFound,
	// ErrEsbuildNotFound, ErrNpmNotFound, ErrEsbuildTooOld,
	// ErrEntryPointNotFound, the build command's *exec.ExitError, a copy
	// that failed.
	Err error
	// Output is what the build command printed.
	Output []byte
}

func (e *BuildError) Error() string {
	what := e.Method
	switch {
	case e.Target != "":
		what = "make " + e.Target
	case e.Method == template.BuildGo:
		what = "go build"
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
// CodeUri into dir/bootstrap for a Go package, an esbuild bundle into dir
// for BuildMethod esbuild; CodeUri and no build for the rest. A build
// that cannot run (no make, no Makefile, no esbuild) is an error here,
// before anything starts.
func functionCode(f *template.Function, dir string, notice func(string, ...any)) (string, func(context.Context) error, error) {
	switch {
	case f.Build.Method == template.BuildEsbuild:
		build, err := esbuildBuild(f, dir, notice)
		return dir, build, err
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
		scratch, err := scratchCopy(b.SourceDir, artifacts, makeExcluded)
		if err != nil {
			return fail(err, nil)
		}
		defer os.RemoveAll(scratch)
		cmd := exec.CommandContext(ctx, mk, "--makefile", b.Makefile, target)
		cmd.Dir = makeDir(b, scratch)
		cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+artifacts)
		if out, err := runBuild(cmd); err != nil {
			return fail(err, out)
		}
		return nil
	}, nil
}

// makeExcluded names what SAM's makefile method leaves out of the
// scratch copy, at any depth.
var makeExcluded = []string{".aws-sam", ".git"}

// scratchCopy copies the folder src, without the names in exclude, to a
// new scratch folder beside artifacts, and makes artifacts a fresh empty
// folder: where a build starts. The caller removes the scratch folder.
func scratchCopy(src, artifacts string, exclude []string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(artifacts), 0o755); err != nil {
		return "", err
	}
	scratch, err := os.MkdirTemp(filepath.Dir(artifacts), "scratch-")
	if err != nil {
		return "", err
	}
	if err := copyTree(src, scratch, exclude, 0); err != nil {
		os.RemoveAll(scratch)
		return "", err
	}
	if err := freshDir(artifacts); err != nil {
		os.RemoveAll(scratch)
		return "", err
	}
	return scratch, nil
}

// freshDir makes dir an empty folder, removing what it held.
func freshDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
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
// symbolic links and leaving out anything named in exclude, as `sam
// build` copies a source folder to its scratch folder.
func copyTree(src, dst string, exclude []string, depth int) error {
	if depth > maxCopyDepth {
		return fmt.Errorf("copy %s: more than %d folders deep (a symbolic link loop?)", src, maxCopyDepth)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if slices.Contains(exclude, e.Name()) {
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
			if err := copyTree(from, to, exclude, depth+1); err != nil {
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

// esbuildExcluded names what SAM's esbuild method leaves out of the
// scratch copy, at any depth.
var esbuildExcluded = []string{".aws-sam", ".git", "node_modules"}

// esbuildBuild is SAM's esbuild build method for f (aws-lambda-builders'
// nodejs_npm_esbuild workflow), each run into a fresh artifacts folder,
// which becomes the function's code. With a package.json in CodeUri,
// CodeUri is copied to a scratch folder (without .aws-sam, .git and
// node_modules) where its dependencies are found and esbuild runs;
// without one, esbuild runs in CodeUri itself. The dependencies are the
// project's node_modules, linked into the scratch copy, when it has one;
// else they are installed there as `sam build` installs them (`npm
// install --omit=dev`, or `npm ci` with UseNpmCi and a lockfile).
// esbuild is the one in the project's node_modules/.bin, else the one on
// PATH. It fails at once, before any build, when esbuild (or npm, when
// needed) is missing. Linking the project's node_modules, which holds dev
// dependencies too, differs from `sam build`: notice says so.
func esbuildBuild(f *template.Function, artifacts string, notice func(string, ...any)) (func(context.Context) error, error) {
	src := f.Build.SourceDir
	fail := func(err error, out []byte) *BuildError {
		return &BuildError{Function: f.LogicalID, Method: template.BuildEsbuild, Err: err, Output: out}
	}
	manifest := filepath.Join(src, "package.json")
	modules := filepath.Join(src, "node_modules")
	// prepare looks at CodeUri as it is now (a watched project may gain
	// or lose its package.json or node_modules): whether it has a
	// package.json, and a node_modules; the npm that installs its
	// dependencies when it has the one and not the other; else whether
	// an esbuild is there to run.
	prepare := func() (hasManifest, installed bool, npm string, err error) {
		hasManifest, installed = isFile(manifest), isDir(modules)
		if hasManifest && !installed {
			if npm, err = exec.LookPath("npm"); err != nil {
				err = fmt.Errorf("%w: %w", ErrNpmNotFound, err)
			}
			return hasManifest, installed, npm, err
		}
		_, err = findEsbuild(filepath.Join(modules, ".bin"))
		return hasManifest, installed, "", err
	}
	hasManifest, installed, _, err := prepare()
	if err != nil {
		return nil, fail(err, nil)
	}
	if hasManifest && installed {
		notice("not emulated: function %s bundles the dependencies in %s as installed, dev dependencies included, rather than a fresh `npm install --omit=dev` as sam build makes", f.LogicalID, modules)
	}
	_, nodeOptions := builtFunction(f)
	return func(ctx context.Context) error {
		hasManifest, installed, npm, err := prepare()
		if err != nil {
			return fail(err, nil)
		}
		dir := src
		if hasManifest {
			scratch, err := scratchCopy(src, artifacts, esbuildExcluded)
			if err != nil {
				return fail(err, nil)
			}
			defer os.RemoveAll(scratch)
			if installed {
				if err := os.Symlink(modules, filepath.Join(scratch, "node_modules")); err != nil {
					return fail(err, nil)
				}
			} else if out, err := runBuild(npmInstall(ctx, npm, f.Build.Properties, src, scratch)); err != nil {
				return fail(err, out)
			}
			dir = scratch
		} else if err := freshDir(artifacts); err != nil {
			return fail(err, nil)
		}
		esbuild, err := findEsbuild(filepath.Join(dir, "node_modules", ".bin"))
		if err != nil {
			return fail(err, nil)
		}
		if externalDependencies(f.Build.Properties["External"]) {
			if out, err := checkEsbuildVersion(ctx, esbuild, dir); err != nil {
				return fail(err, out)
			}
		}
		args, err := esbuildArgs(f.Build.Properties, f.Handler, nodeOptions, dir, artifacts, manifest)
		if err != nil {
			return fail(err, nil)
		}
		cmd := exec.CommandContext(ctx, esbuild, args...)
		cmd.Dir = dir
		if out, err := runBuild(cmd); err != nil {
			return fail(err, out)
		}
		return nil
	}, nil
}

// checkEsbuildVersion asks esbuild, run in dir, for its version, and
// fails with ErrEsbuildTooOld below minEsbuildForExternal, comparing the
// dot-separated numbers in turn as SAM does. It returns what esbuild
// printed.
func checkEsbuildVersion(ctx context.Context, esbuild, dir string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, esbuild, "--version")
	cmd.Dir = dir
	out, err := runBuild(cmd)
	if err != nil {
		return out, err
	}
	v := strings.TrimSpace(string(out))
	var got []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, fmt.Errorf("cannot read esbuild's version %q", v)
		}
		got = append(got, n)
	}
	if slices.Compare(got, minEsbuildForExternal) < 0 {
		return out, fmt.Errorf("%w: %s, want 0.14.13 or later", ErrEsbuildTooOld, v)
	}
	return nil, nil
}

// npmInstall is how SAM's esbuild method installs the dependencies of
// the package.json in src into the scratch copy dir: `npm ci` when
// UseNpmCi is true and src has a lockfile, else an install of the
// production dependencies.
func npmInstall(ctx context.Context, npm string, props map[string]any, src, dir string) *exec.Cmd {
	args := []string{"install", "-q", "--no-audit", "--no-save", "--unsafe-perm", "--omit=dev"}
	if props["UseNpmCi"] == true && (isFile(filepath.Join(src, "package-lock.json")) || isFile(filepath.Join(src, "npm-shrinkwrap.json"))) {
		args = []string{"ci"}
	}
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	return cmd
}

// findEsbuild returns the esbuild in the folder bin, else the one on PATH.
func findEsbuild(bin string) (string, error) {
	if p := filepath.Join(bin, "esbuild"); isFile(p) {
		return p, nil
	}
	if p, err := exec.LookPath("esbuild"); err == nil {
		return p, nil
	}
	return "", ErrEsbuildNotFound
}

// esbuildFixed are the flags SAM's esbuild method sets itself, so that
// Lambda can run the bundle, whatever BuildProperties say; and the
// BuildProperties it reads for itself rather than pass to esbuild.
var (
	esbuildFixed   = []string{"bundle", "platform", "outdir"}
	esbuildOwnKeys = []string{"use-npm-ci", "entry-points"}
)

// esbuildArgs is the esbuild command line of SAM's esbuild method, run in
// dir, writing into artifacts, for a function with BuildProperties props,
// Handler handler and NODE_OPTIONS nodeOptions; manifest is CodeUri's
// package.json. In order:
//   - with External naming ./node_modules/*, --external:{name} for each of
//     the manifest's dependencies, in place of External's own flags;
//   - the entry points: EntryPoints, else the Handler's module (src/app
//     for src/app.handler), each relative to dir; one without an
//     extension is completed with .ts, else .js, whichever exists;
//   - --bundle --platform=node --outdir={artifacts}, and the defaults
//     --target=es2020, --format=cjs and --minify unless Target, Format or
//     Minify is set;
//   - each other property, its name from PascalCase to kebab-case
//     (MainFields → --main-fields): true gives --name, false nothing, a
//     string --name=value, a list --name:item for each item. Sourcemap
//     is true when unset and NODE_OPTIONS has --enable-source-maps.
//
// The properties come in the order of their names (SAM passes the
// template's order; esbuild's flags do not depend on it).
func esbuildArgs(props map[string]any, handler, nodeOptions, dir, artifacts, manifest string) ([]string, error) {
	flags := make(map[string]any, len(props)+1)
	for k, v := range props {
		flags[kebabCase(k)] = v
	}
	if _, ok := props["Sourcemap"]; !ok && hasSourceMapsOption(nodeOptions) {
		flags["sourcemap"] = true
	}
	var args []string
	if externalDependencies(flags["external"]) {
		deps, err := manifestDependencies(manifest)
		if err != nil {
			return nil, err
		}
		for _, d := range deps {
			args = append(args, "--external:"+d)
		}
		delete(flags, "external")
	}
	for _, e := range esbuildEntryPoints(props, handler) {
		resolved, err := resolveEntryPoint(dir, e)
		if err != nil {
			return nil, err
		}
		args = append(args, resolved)
	}
	args = append(args, "--bundle", "--platform=node", "--outdir="+artifacts)
	for _, d := range [][2]string{{"target", "--target=es2020"}, {"format", "--format=cjs"}, {"minify", "--minify"}} {
		if _, set := flags[d[0]]; !set {
			args = append(args, d[1])
		}
	}
	names := make([]string, 0, len(flags))
	for k := range flags {
		if !slices.Contains(esbuildFixed, k) && !slices.Contains(esbuildOwnKeys, k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		switch v := flags[k].(type) {
		case bool:
			if v {
				args = append(args, "--"+k)
			}
		case string:
			args = append(args, "--"+k+"="+v)
		case []string:
			for _, item := range v {
				args = append(args, "--"+k+":"+item)
			}
		}
	}
	return args, nil
}

// kebabCase turns a BuildProperties name into esbuild's flag name as SAM
// does, through snake_case: a dash before each upper-case letter but the
// first, all in lower case, underscores as dashes.
func kebabCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('-')
		}
		if r == '_' {
			r = '-'
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// externalDependencies reports whether External asks for every
// dependency of package.json to stay out of the bundle.
func externalDependencies(v any) bool {
	switch x := v.(type) {
	case []string:
		return slices.Contains(x, "./node_modules/*")
	case string:
		return strings.Contains(x, "./node_modules/*")
	}
	return false
}

// manifestDependencies returns the names of package.json's dependencies,
// sorted.
func manifestDependencies(manifest string) ([]string, error) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	var pkg struct {
		Dependencies map[string]any `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return nil, fmt.Errorf("%s: %w", manifest, err)
	}
	names := make([]string, 0, len(pkg.Dependencies))
	for n := range pkg.Dependencies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// esbuildEntryPoints are EntryPoints, else the module part of the Handler
// (up to its first dot), as SAM takes them.
func esbuildEntryPoints(props map[string]any, handler string) []string {
	if eps, _ := props["EntryPoints"].([]string); len(eps) > 0 {
		return eps
	}
	module, _, _ := strings.Cut(handler, ".")
	return []string{module}
}

// resolveEntryPoint returns the entry point e as esbuild gets it: as
// written when it has an extension, else with .ts or, failing that, .js;
// the file must be in dir.
func resolveEntryPoint(dir, e string) (string, error) {
	p := filepath.Join(dir, filepath.FromSlash(e))
	if filepath.Ext(e) != "" {
		if isFile(p) {
			return e, nil
		}
	} else {
		for _, ext := range []string{".ts", ".js"} {
			if isFile(p + ext) {
				return e + ext, nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s in CodeUri", ErrEntryPointNotFound, e)
}

// builtFunction returns f's Handler and NODE_OPTIONS as they are in the
// template `sam build` writes. For an esbuild function, Sourcemap adds
// --enable-source-maps to NODE_OPTIONS, and a Handler whose module is
// not where the bundle lands keeps only its last element, as SAM
// rewrites it (src/handlers/app.handler → app.handler, the bundle of
// one entry point being at the artifacts folder's root).
func builtFunction(f *template.Function) (handler, nodeOptions string) {
	handler, nodeOptions = f.Handler, f.Environment["NODE_OPTIONS"]
	if f.Build.Method != template.BuildEsbuild {
		return handler, nodeOptions
	}
	if truthy(f.Build.Properties["Sourcemap"]) && !hasSourceMapsOption(nodeOptions) {
		nodeOptions = strings.TrimSpace(nodeOptions + " --enable-source-maps")
	}
	return esbuildHandler(f.Build.Properties, handler), nodeOptions
}

// esbuildHandler is the Handler SAM writes for an esbuild function: as
// written when the bundle is at the path it names (its module with .js),
// a handler in a layer (/opt) too; else its last element.
func esbuildHandler(props map[string]any, handler string) string {
	if strings.HasPrefix(handler, "/opt") {
		return handler
	}
	dir, name := path.Split(handler)
	module := strings.TrimSuffix(name, path.Ext(name))
	want := path.Join(dir, module) + ".js"
	if slices.Contains(esbuildOutputs(props, handler), want) {
		return handler
	}
	return name
}

// esbuildOutputs are the files, relative to the artifacts folder, that
// esbuild writes for the entry points: each entry point's path from the
// entry points' lowest common folder (esbuild's default outbase), with
// the extension .js or the one OutExtension gives it.
func esbuildOutputs(props map[string]any, handler string) []string {
	ext := ".js"
	if oe, _ := props["OutExtension"].([]string); oe != nil {
		for _, m := range oe {
			if to, ok := strings.CutPrefix(m, ".js="); ok {
				ext = to
			}
		}
	}
	entries := esbuildEntryPoints(props, handler)
	dirs := make([][]string, len(entries))
	for i, e := range entries {
		dirs[i] = strings.Split(path.Dir(path.Clean(filepath.ToSlash(e))), "/")
	}
	common := dirs[0]
	for _, d := range dirs[1:] {
		n := 0
		for n < len(common) && n < len(d) && common[n] == d[n] {
			n++
		}
		common = common[:n]
	}
	outs := make([]string, len(entries))
	for i, e := range entries {
		e = path.Clean(filepath.ToSlash(e))
		rel := strings.Join(dirs[i][len(common):], "/")
		outs[i] = path.Join(rel, strings.TrimSuffix(path.Base(e), path.Ext(e))) + ext
	}
	return outs
}

// esbuildLeavesOutSDK reports whether an esbuild function's External
// leaves @aws-sdk packages out of the bundle (or every dependency), for
// the runtime to provide, as Lambda's Node.js runtimes bundle the SDK v3.
func esbuildLeavesOutSDK(props map[string]any) bool {
	ext := props["External"]
	if externalDependencies(ext) {
		return true
	}
	switch x := ext.(type) {
	case []string:
		return slices.ContainsFunc(x, func(s string) bool { return strings.HasPrefix(s, "@aws-sdk") })
	case string:
		return strings.HasPrefix(x, "@aws-sdk")
	}
	return false
}

// hasSourceMapsOption reports whether NODE_OPTIONS turns on source maps.
func hasSourceMapsOption(nodeOptions string) bool {
	return slices.Contains(strings.Fields(nodeOptions), "--enable-source-maps")
}

// truthy is a BuildProperties value as Python's truth test sees it.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x != ""
	case []string:
		return len(x) > 0
	}
	return false
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
