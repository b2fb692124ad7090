package deploy

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cfn-lint is AWS's own template linter: it applies the SAM transform
// (aws-sam-translator) and checks every resource against CloudFormation's
// resource schemas, which the checks in this package do not know. It is a
// Python tool, so it is used when installed (machines of this project's
// kind have it) and the test says so when it is not; STREAMER_REQUIRE_CFNLINT=1
// turns the skip into a failure.
func TestTemplatePassesCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		const how = "cfn-lint is not installed (pip install cfn-lint); the template's CloudFormation schema checks did not run"
		if os.Getenv("STREAMER_REQUIRE_CFNLINT") == "1" {
			t.Fatal(how)
		}
		t.Skip(how)
	}
	// Informational checks too: they ask, for instance, for explicit
	// deletion policies on the tables.
	out, err := exec.Command(bin, "--include-checks", "I", "--", templateFile).CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", templateFile, err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("cfn-lint printed findings:\n%s", s)
	}
}
