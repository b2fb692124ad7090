package lambdart

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Runtimes finds, on this machine, the interpreter each Lambda runtime
// names: nodejs22.x runs on a Node.js 22 and python3.12 on a Python 3.12,
// taken from Paths, else from PATH as node22 or python3.12, else from
// node or python3 when their version matches. When none has the version,
// the function runs on node or python3 anyway and the Launch says so in a
// Substitution line. It is safe for concurrent use; each interpreter is
// asked its version once.
type Runtimes struct {
	// Paths name the interpreter of a runtime identifier, as
	// `--runtime nodejs22.x=/path/to/node` gives it. They win over PATH.
	Paths map[string]string
	// NodeSDK is a folder whose node_modules holds the AWS SDK for
	// JavaScript v3, which Lambda's nodejs18.x and later runtimes bundle:
	// a handler that imports an @aws-sdk package it does not ship finds it
	// there (see NodeSDK). Empty provides none.
	NodeSDK string

	mu     sync.Mutex
	probes map[string]probe
}

// Launch is how a function of some runtime starts.
type Launch struct {
	// Command is the program and its arguments (Config.Command).
	Command []string
	// Env are variables the runtime needs (Config.Env).
	Env []string
	// Notes say, one line each, where the launch differs from Lambda: the
	// interpreter stands in for another version, the SDK Lambda bundles
	// is missing. Each reads after "not emulated: ".
	Notes []string
}

// probe is what an interpreter said about itself.
type probe struct {
	path    string // the interpreter itself (a pyenv shim resolved)
	version string // "22.11.0", "3.12.1"
	boto3   bool   // Python: import boto3 works
	err     error
}

// Launch returns how a function of runtime whose code is in codeDir
// starts: its bootstrap for provided.*, the Node.js or Python shim (from
// shimDir, see Shims) with the interpreter Runtimes finds for nodejs*.x
// and python3.*. name is the function's name, for the Notes.
func (r *Runtimes) Launch(ctx context.Context, name, runtime, codeDir, shimDir string) (*Launch, error) {
	switch {
	case strings.HasPrefix(runtime, "provided"):
		cmd, err := Command(runtime, codeDir, shimDir)
		if err != nil {
			return nil, err
		}
		return &Launch{Command: cmd}, nil
	case strings.HasPrefix(runtime, "nodejs"):
		want := strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
		p, note, err := r.find(ctx, runtime, want, []string{"node" + want, "node"}, nodeProbe)
		if err != nil {
			return nil, err
		}
		l := &Launch{Command: []string{p.path, filepath.Join(shimDir, "node.mjs")}}
		if note != "" {
			l.Notes = append(l.Notes, fmt.Sprintf("function %s names %s; %s", name, runtime, note))
		}
		if major, _ := strconv.Atoi(want); major >= 18 && r.NodeSDK != "" {
			// CommonJS require honours NODE_PATH; the shim's resolve hook
			// gives ES modules the same fallback.
			mods := filepath.Join(r.NodeSDK, "node_modules")
			l.Env = append(l.Env, "NODE_PATH="+mods, "STREAMER_NODE_SDK="+mods)
		}
		return l, nil
	case strings.HasPrefix(runtime, "python3"):
		want := strings.TrimPrefix(runtime, "python")
		p, note, err := r.find(ctx, runtime, want, []string{"python" + want, "python3"}, pythonProbe)
		if err != nil {
			return nil, err
		}
		l := &Launch{Command: []string{p.path, "-u", filepath.Join(shimDir, "python.py")}}
		if note != "" {
			l.Notes = append(l.Notes, fmt.Sprintf("function %s names %s; %s", name, runtime, note))
		}
		if !p.boto3 {
			l.Notes = append(l.Notes, fmt.Sprintf("boto3, which Lambda's %s runtime bundles, is not importable by %s (Python %s) and is not fetched (PyPI is not reached): function %s finds it only if its code ships it", runtime, p.path, p.version, name))
		}
		return l, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedRuntime, runtime)
}

// find picks the interpreter for runtime: Paths first, then the
// candidates on PATH whose version starts with want. A candidate that
// does not run (a version manager's shim for a version not selected) is
// passed over. note is empty when the version matches.
func (r *Runtimes) find(ctx context.Context, runtime, want string, candidates []string, ask func(context.Context, string) probe) (probe, string, error) {
	if given, ok := r.Paths[runtime]; ok {
		p := r.probe(ctx, given, ask)
		if p.err != nil {
			return probe{}, "", fmt.Errorf("%w: %s=%s: %w", ErrUnsupportedRuntime, runtime, given, p.err)
		}
		if !sameVersion(p.version, want) {
			return p, fmt.Sprintf("it runs on %s %s, given for it", p.path, p.version), nil
		}
		return p, "", nil
	}
	var fallback *probe
	for _, c := range candidates {
		bin, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		p := r.probe(ctx, bin, ask)
		if p.err != nil {
			continue
		}
		if sameVersion(p.version, want) {
			return p, "", nil
		}
		if fallback == nil {
			fallback = &p
		}
	}
	if fallback == nil {
		return probe{}, "", fmt.Errorf("%w: %s needs one of %s on PATH", ErrUnsupportedRuntime, runtime, strings.Join(candidates, ", "))
	}
	return *fallback, fmt.Sprintf("it runs on %s %s (no %s on PATH; give one with --runtime %s=/path/to/%s)",
		fallback.path, fallback.version, candidates[0], runtime, candidates[len(candidates)-1]), nil
}

// sameVersion: "22.11.0" is a 22, "3.12.1" a 3.12.
func sameVersion(version, want string) bool {
	return version == want || strings.HasPrefix(version, want+".")
}

func (r *Runtimes) probe(ctx context.Context, bin string, ask func(context.Context, string) probe) probe {
	r.mu.Lock()
	p, ok := r.probes[bin]
	r.mu.Unlock()
	if ok {
		return p
	}
	p = ask(ctx, bin)
	r.mu.Lock()
	if r.probes == nil {
		r.probes = map[string]probe{}
	}
	r.probes[bin] = p
	r.mu.Unlock()
	return p
}

// probeTimeout bounds asking an interpreter its version.
const probeTimeout = 10 * time.Second

func nodeProbe(ctx context.Context, bin string) probe {
	out, err := runProbe(ctx, bin, "-p", "process.execPath + '\\n' + process.versions.node")
	if err != nil {
		return probe{err: err}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return probe{err: fmt.Errorf("%s: unexpected answer %q", bin, out)}
	}
	return probe{path: lines[0], version: lines[1]}
}

// pythonProbe resolves the interpreter itself (a pyenv shim costs about a
// second at every cold start) and checks that boto3 imports.
func pythonProbe(ctx context.Context, bin string) probe {
	out, err := runProbe(ctx, bin, "-c", "import sys, importlib.util as u; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3]); print(u.find_spec('boto3') is not None)")
	if err != nil {
		return probe{err: err}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		return probe{err: fmt.Errorf("%s: unexpected answer %q", bin, out)}
	}
	p := probe{path: lines[0], version: lines[1], boto3: lines[2] == "True"}
	if _, err := os.Stat(p.path); err != nil {
		p.path = bin
	}
	return p
}

func runProbe(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", bin, err)
	}
	return string(out), nil
}
