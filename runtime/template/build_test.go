package template

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// buildTemplate is a template whose functions' Metadata say how `sam
// build` makes them; dir is its folder.
const buildTemplate = `
Resources:
  Made:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
      ProjectRootDirectory: .
      ContextPath: made/ctx
      WorkingDirectory: made/src
    Properties: {CodeUri: made/src, Handler: bootstrap, Runtime: provided.al2023}
  Plain:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties: {CodeUri: plain, Runtime: provided.al2023}
  ByDefault:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: bydefault, Runtime: provided.al2023}
  GoNamed:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: go1.x}
    Properties: {CodeUri: gonamed, Runtime: provided.al2023}
  GoGuessed:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: goguessed, Runtime: provided.al2}
  Prebuilt:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: prebuilt, Runtime: provided.al2023}
  Node:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: esbuild
      ProjectRootDirectory: elsewhere
      BuildProperties:
        Minify: false
        Target: es2022
        EntryPoints: [src/app.ts]
        Loader: [.txt=text]
    Properties: {CodeUri: node, Handler: app.handler, Runtime: nodejs22.x}
`

func TestBuildMetadata(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ByDefault has a Makefile, which SAM's default build for provided
	// runtimes runs even beside .go files; Prebuilt has a bootstrap
	// beside its Makefile and .go files, which runs as it is; GoNamed has
	// a bootstrap and still builds, as BuildMethod go1.x says.
	write("bydefault/Makefile")
	write("bydefault/main.go")
	write("prebuilt/Makefile")
	write("prebuilt/main.go")
	write("prebuilt/bootstrap")
	write("gonamed/main.go")
	write("gonamed/bootstrap")
	write("goguessed/main.go")
	app, err := Parse([]byte(buildTemplate), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	made := app.Functions["Made"].Build
	want := Build{Method: BuildMakefile, SourceDir: dir, Makefile: filepath.Join(dir, "made/ctx/Makefile"), WorkingDirectory: filepath.Join(dir, "made/src")}
	if !reflect.DeepEqual(made, want) {
		t.Errorf("Made: %+v\nwant %+v", made, want)
	}
	plain := app.Functions["Plain"].Build
	if want := (Build{Method: BuildMakefile, SourceDir: filepath.Join(dir, "plain"), Makefile: filepath.Join(dir, "plain/Makefile")}); !reflect.DeepEqual(plain, want) {
		t.Errorf("Plain: %+v\nwant %+v", plain, want)
	}
	for id, wantMake := range map[string]bool{"Made": true, "Plain": true, "ByDefault": true, "GoNamed": false, "GoGuessed": false, "Prebuilt": false, "Node": false} {
		if got := app.Functions[id].MakeBuilt(); got != wantMake {
			t.Errorf("%s: MakeBuilt = %v, want %v", id, got, wantMake)
		}
	}
	for id, wantGo := range map[string]bool{"Made": false, "Plain": false, "ByDefault": false, "GoNamed": true, "GoGuessed": true, "Prebuilt": false, "Node": false} {
		if got := app.Functions[id].GoPackage(); got != wantGo {
			t.Errorf("%s: GoPackage = %v, want %v", id, got, wantGo)
		}
	}
	// SAM reads ProjectRootDirectory for the makefile method only: an
	// esbuild function builds CodeUri, with its BuildProperties as typed.
	node := app.Functions["Node"].Build
	wantNode := Build{Method: BuildEsbuild, SourceDir: filepath.Join(dir, "node"), Properties: map[string]any{
		"Minify": false, "Target": "es2022", "EntryPoints": []string{"src/app.ts"}, "Loader": []string{".txt=text"},
	}}
	if !reflect.DeepEqual(node, wantNode) {
		t.Errorf("Node: %+v\nwant %+v", node, wantNode)
	}
}

func TestBuildMetadataErrors(t *testing.T) {
	for _, tc := range []struct{ meta, field string }{
		{`Metadata: [makefile]`, "Metadata"},
		{`Metadata: {BuildMethod: 3}`, "Metadata.BuildMethod"},
		{`Metadata: {BuildMethod: makefile, ContextPath: {Ref: X}}`, "Metadata.ContextPath"},
		{`Metadata: {BuildMethod: makefile, WorkingDirectory: ""}`, "Metadata.WorkingDirectory"},
		// What `sam build` cannot turn into esbuild flags.
		{`Metadata: {BuildMethod: esbuild, BuildProperties: [Minify]}`, "Metadata.BuildProperties"},
		{`Metadata: {BuildMethod: esbuild, BuildProperties: {Target: 2020}}`, "Metadata.BuildProperties.Target"},
		{`Metadata: {BuildMethod: esbuild, BuildProperties: {Define: {X: "1"}}}`, "Metadata.BuildProperties.Define"},
		{`Metadata: {BuildMethod: esbuild, BuildProperties: {Loader: [.png=file, 3]}}`, "Metadata.BuildProperties.Loader"},
		{`Metadata: {BuildMethod: esbuild, BuildProperties: {EntryPoints: app.ts}}`, "Metadata.BuildProperties.EntryPoints"},
	} {
		src := "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    " + tc.meta + "\n    Properties: {CodeUri: fn, Runtime: provided.al2023}\n"
		_, err := Parse([]byte(src), t.TempDir(), Options{})
		var te *Error
		if !errors.As(err, &te) || te.Resource != "Fn" || te.Field != tc.field {
			t.Errorf("%s: %v, want an error at Fn %s", tc.meta, err, tc.field)
		}
	}
}
