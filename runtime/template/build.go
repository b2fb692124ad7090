package template

import (
	"os"
	"path/filepath"
	"strings"
)

// Build methods `sam build` takes from a function's Metadata.BuildMethod
// that the local runtime runs.
const (
	// BuildMakefile runs `make build-{LogicalId}` (Build.Makefile).
	BuildMakefile = "makefile"
	// BuildGo builds a Go main package into bootstrap, for a provided
	// runtime.
	BuildGo = "go1.x"
	// BuildEsbuild bundles a Node.js function's entry points, TypeScript
	// or JavaScript, with esbuild (Build.Properties).
	BuildEsbuild = "esbuild"
)

// Build is how `sam build` makes a function's code, read from the
// function's Metadata resource attribute. Paths are absolute; relative
// ones start from the template's folder, as SAM resolves them.
type Build struct {
	// Method is Metadata.BuildMethod as written: BuildMakefile, BuildGo,
	// a runtime name, esbuild, ... Empty when the template names none.
	Method string
	// SourceDir is the folder `sam build` copies to a scratch folder and
	// builds there: Metadata.ProjectRootDirectory, else CodeUri; always
	// CodeUri for BuildEsbuild, as SAM reads ProjectRootDirectory only
	// for the makefile method.
	SourceDir string
	// Makefile is the Makefile of the makefile method: the one in
	// Metadata.ContextPath, else the one in SourceDir.
	Makefile string
	// WorkingDirectory is Metadata.WorkingDirectory: make runs there (in
	// the scratch copy when it lies inside SourceDir). Empty runs make in
	// the scratch copy's root.
	WorkingDirectory string
	// Properties is Metadata.BuildProperties of a BuildEsbuild function,
	// keyed as written (Minify, EntryPoints, ...), each value a bool, a
	// string or a []string: the only kinds `sam build` turns into esbuild
	// flags. Nil for other methods, whose BuildProperties are not read.
	Properties map[string]any
}

// buildMetadata reads the build keys of resource id's Metadata; codeDir
// is the function's CodeUri.
func (a *App) buildMetadata(id, codeDir string) (Build, error) {
	md := a.stack.resources[id].Metadata
	b := Build{SourceDir: codeDir}
	path := func(key string) (string, error) {
		v, ok := md[key]
		if !ok {
			return "", nil
		}
		s, isStr := v.(string)
		if !isStr || s == "" {
			return "", errorf(id, "Metadata."+key, "want a path, got %s", describe(v))
		}
		if !filepath.IsAbs(s) {
			s = filepath.Join(a.dir, s)
		}
		return filepath.Clean(s), nil
	}
	if v, ok := md["BuildMethod"]; ok {
		s, isStr := v.(string)
		if !isStr || s == "" {
			return Build{}, errorf(id, "Metadata.BuildMethod", "want a build method, got %s", describe(v))
		}
		b.Method = s
	}
	if b.Method == BuildEsbuild {
		props, err := esbuildProperties(id, md["BuildProperties"])
		if err != nil {
			return Build{}, err
		}
		b.Properties = props
		return b, nil
	}
	root, err := path("ProjectRootDirectory")
	if err != nil {
		return Build{}, err
	}
	if root != "" {
		b.SourceDir = root
	}
	ctxDir, err := path("ContextPath")
	if err != nil {
		return Build{}, err
	}
	if ctxDir == "" {
		ctxDir = b.SourceDir
	}
	b.Makefile = filepath.Join(ctxDir, "Makefile")
	if b.WorkingDirectory, err = path("WorkingDirectory"); err != nil {
		return Build{}, err
	}
	return b, nil
}

// MakeBuilt reports whether the function is built with its Makefile:
// BuildMethod makefile, or, SAM's default for a provided runtime, no
// BuildMethod and a Makefile where the build looks for one. A provided
// function with no BuildMethod and a bootstrap in CodeUri runs that
// bootstrap, as `sam local` runs a template it has not built.
func (f *Function) MakeBuilt() bool {
	switch f.Build.Method {
	case BuildMakefile:
		return true
	case "":
		if !strings.HasPrefix(f.Runtime, "provided") {
			return false
		}
		if _, err := os.Stat(filepath.Join(f.CodeDir, "bootstrap")); err == nil {
			return false
		}
		_, err := os.Stat(f.Build.Makefile)
		return err == nil
	}
	return false
}

// GoPackage reports whether the function is a Go main package to build
// into bootstrap, as SAM's go1.x build method does: a provided runtime
// whose CodeUri holds .go files, with BuildMethod go1.x, or with no
// BuildMethod, no bootstrap and no Makefile.
func (f *Function) GoPackage() bool {
	if !strings.HasPrefix(f.Runtime, "provided") {
		return false
	}
	if m, _ := filepath.Glob(filepath.Join(f.CodeDir, "*.go")); len(m) == 0 {
		return false
	}
	switch f.Build.Method {
	case BuildGo:
		return true
	case "":
		_, err := os.Stat(filepath.Join(f.CodeDir, "bootstrap"))
		return err != nil && !f.MakeBuilt()
	}
	return false
}

// esbuildProperties reads the BuildProperties v of an esbuild function.
// `sam build` turns a true into a flag, a string into --key=value and each
// item of a list into --key:item, and fails on any other kind; EntryPoints
// must be a list. A template that would fail that way is refused here.
func esbuildProperties(id string, v any) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(id, "Metadata.BuildProperties", "want an object, got %s", describe(v))
	}
	props := make(map[string]any, len(m))
	for k, v := range m {
		field := "Metadata.BuildProperties." + k
		switch x := v.(type) {
		case bool, string:
			if k == "EntryPoints" {
				return nil, errorf(id, field, "want a list of paths, got %s", describe(v))
			}
			props[k] = x
		case []any:
			items := make([]string, 0, len(x))
			for _, it := range x {
				s, isStr := it.(string)
				if !isStr {
					return nil, errorf(id, field, "want a list of strings, got an item %s", describe(it))
				}
				items = append(items, s)
			}
			props[k] = items
		default:
			return nil, errorf(id, field, "want a boolean, a string or a list of strings (what esbuild takes), got %s", describe(v))
		}
	}
	return props, nil
}
