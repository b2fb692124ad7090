package lambdart

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed shims/node.mjs
var nodeShim []byte

//go:embed shims/python.py
var pythonShim []byte

// ErrUnsupportedRuntime is returned by Command for a runtime it has no
// way to run.
var ErrUnsupportedRuntime = errors.New("lambdart: unsupported runtime")

// Shims writes this package's language shims into dir (made if missing)
// and returns it, for Command.
func Shims(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("lambdart: shims: %w", err)
	}
	for name, b := range map[string][]byte{"node.mjs": nodeShim, "python.py": pythonShim} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", fmt.Errorf("lambdart: shims: %w", err)
		}
	}
	return dir, nil
}

// Command returns the program that runs a function of runtime whose code
// is in codeDir: its bootstrap for provided.al2023 and provided.al2, the
// Node.js or Python shim (from shimDir, see Shims) for nodejs*.x and
// python3.*, with the host's node or python3.
func Command(runtime, codeDir, shimDir string) ([]string, error) {
	switch {
	case strings.HasPrefix(runtime, "provided"):
		p := filepath.Join(codeDir, "bootstrap")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %s needs an executable bootstrap in %s: %w", ErrUnsupportedRuntime, runtime, codeDir, err)
		}
		return []string{p}, nil
	case strings.HasPrefix(runtime, "nodejs"):
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, fmt.Errorf("%w: %s needs node on PATH: %w", ErrUnsupportedRuntime, runtime, err)
		}
		return []string{node, filepath.Join(shimDir, "node.mjs")}, nil
	case strings.HasPrefix(runtime, "python3"):
		py, err := exec.LookPath("python3")
		if err != nil {
			return nil, fmt.Errorf("%w: %s needs python3 on PATH: %w", ErrUnsupportedRuntime, runtime, err)
		}
		return []string{realPython(py), "-u", filepath.Join(shimDir, "python.py")}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedRuntime, runtime)
}

// realPython resolves a python3 found on PATH to the interpreter itself:
// version managers (pyenv) put a shell script there that costs about a
// second at every cold start.
func realPython(py string) string {
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return py
	}
	if p := strings.TrimSpace(string(out)); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return py
}
