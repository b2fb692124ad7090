package devui

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestEmbeddedClientIsFresh fails when clients/js changed after the
// embedded copy was built: assets/client/SOURCES must list the sha256 of
// every source file as it is now (the same manifest
// clients/js/scripts/build.mjs writes). No npm is needed to run it; the
// `node scripts/build.mjs --check` (make test-js) checks that the .js files are exactly the build's output.
func TestEmbeddedClientIsFresh(t *testing.T) {
	pkg := filepath.Join("..", "..", "..", "..", "clients", "js")
	src, err := filepath.Glob(filepath.Join(pkg, "src", "*.ts"))
	if err != nil || len(src) == 0 {
		t.Fatalf("no sources in %s (err %v)", pkg, err)
	}
	files := []string{"tsconfig.json"}
	for _, f := range src {
		files = append(files, "src/"+filepath.Base(f))
	}
	sort.Strings(files)
	var want strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(pkg, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		want.WriteString(hex.EncodeToString(sum[:]) + "  " + f + "\n")
	}
	got, err := assets.ReadFile("assets/client/SOURCES")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatalf("the embedded client is stale: run `make js-build` and commit cmd/streamer/internal/devui/assets/client\nembedded:\n%s\nsources now:\n%s", got, want.String())
	}
	for _, f := range []string{"index.js", "client.js", "subscription.js"} {
		if _, err := assets.ReadFile("assets/client/" + f); err != nil {
			t.Errorf("embedded client lacks %s: %v", f, err)
		}
	}
}
