package dynalite

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is the dynalite version Install fetches: the one the
// repository's .tools pins.
const Version = "4.0.0"

// ErrNotAvailable: dynalite is not installed in any of the folders and
// could not be installed (no Node.js ≥ 20, no npm, or npm failed).
var ErrNotAvailable = errors.New("dynalite: not available")

// keepAlive is preloaded into dynalite: a client that drops a request
// part-way (a cancelled Go context) must not take the server down.
//
//go:embed keepalive.js
var keepAlive []byte

// Options configure Start.
type Options struct {
	// Dirs are the folders searched for node_modules/dynalite, in order.
	Dirs []string
	// Install, when dynalite is in none of Dirs, installs Version into
	// InstallDir with npm.
	Install    bool
	InstallDir string
	// Progress receives the install's announcement. Nil discards it.
	Progress io.Writer
	// Output receives dynalite's own output. Nil discards it.
	Output io.Writer
}

// Server is a running dynalite.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string
	// Dir is the folder it runs from.
	Dir string

	cmd      *exec.Cmd
	exited   chan struct{}
	once     sync.Once
	tmp      string
	closeErr error
}

// Start finds (or installs) dynalite and starts it on a free loopback
// port. ctx bounds the install and the wait for the port.
func Start(ctx context.Context, o Options) (*Server, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node is not on PATH: %w", ErrNotAvailable, err)
	}
	if out, err := exec.CommandContext(ctx, node, "-p", "process.versions.node.split('.')[0]").Output(); err != nil {
		return nil, fmt.Errorf("%w: node: %w", ErrNotAvailable, err)
	} else if major, _ := strconv.Atoi(strings.TrimSpace(string(out))); major < 20 {
		return nil, fmt.Errorf("%w: dynalite %s needs Node.js 20 or newer, node is %s", ErrNotAvailable, Version, strings.TrimSpace(string(out)))
	}
	dir := find(o.Dirs)
	if dir == "" {
		if !o.Install || o.InstallDir == "" {
			return nil, fmt.Errorf("%w: not installed in %s", ErrNotAvailable, strings.Join(o.Dirs, ", "))
		}
		if err := install(ctx, o.InstallDir, o.Progress); err != nil {
			return nil, err
		}
		dir = o.InstallDir
	}
	tmp, err := os.MkdirTemp("", "dynalite-")
	if err != nil {
		return nil, fmt.Errorf("dynalite: %w", err)
	}
	hook := filepath.Join(tmp, "keepalive.js")
	if err := os.WriteFile(hook, keepAlive, 0o644); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("dynalite: %w", err)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	cmd := exec.Command(node, "--require", hook, filepath.Join(dir, "node_modules", "dynalite", "cli.js"),
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	cmd.Stdout, cmd.Stderr = o.Output, o.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("dynalite: start: %w", err)
	}
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), Dir: dir, cmd: cmd, exited: make(chan struct{}), tmp: tmp}
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			s.Close()
			return nil, fmt.Errorf("dynalite: exited at start: %v", cmd.ProcessState)
		case <-ctx.Done():
			s.Close()
			return nil, fmt.Errorf("dynalite: waiting for port %d: %w", port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the server and waits for it to exit. A second call returns
// the first one's result.
func (s *Server) Close() error {
	s.once.Do(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(5 * time.Second):
				s.cmd.Process.Kill()
				<-s.exited
			}
		}
		os.RemoveAll(s.tmp)
	})
	return s.closeErr
}

// find returns the first of dirs that holds dynalite.
func find(dirs []string) string {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "node_modules", "dynalite", "cli.js")); err == nil {
			return d
		}
	}
	return ""
}

// install puts dynalite Version into dir with npm.
func install(ctx context.Context, dir string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%w: npm is not on PATH to install it: %w", ErrNotAvailable, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAvailable, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"streamer-dynalite","private":true}`+"\n"), 0o644); err != nil {
			return fmt.Errorf("%w: %w", ErrNotAvailable, err)
		}
	}
	fmt.Fprintf(progress, "installing dynalite %s (a DynamoDB-API server, once) into %s with npm ...\n", Version, dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", dir, "dynalite@"+Version)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: npm install dynalite@%s: %w: %s", ErrNotAvailable, Version, err, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(progress, "installed dynalite in %.1f s\n", time.Since(start).Seconds())
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dynalite: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
