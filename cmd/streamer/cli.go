package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/runtime/local"
)

// command is one subcommand. Each lives in its own file and registers
// itself from init, so adding a verb never edits a shared table.
type command struct {
	name    string
	summary string
	// run parses args (without the verb) and runs until done or ctx ends.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("streamer: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// run is the whole CLI minus process concerns, so tests call it directly.
// It returns the process exit code: 0 ok, 1 failure, 2 usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "streamer: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "streamer %s: %v\n", c.name, err)
			return 2
		}
		fmt.Fprintf(stderr, "streamer %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

// usageError marks a bad command line (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// parseFlags parses args into fs and turns parse failures into usageError.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	return nil
}

// devMainFlags are the flags of `streamer dev` the top-level help names,
// with a short gloss each; `streamer dev -h` lists them all.
// TestUsageNamesDevFlagsThatExist keeps the names true.
var devMainFlags = []struct{ name, arg, gloss string }{
	{"addr", "HOST:PORT", "listen address (default 127.0.0.1:8080; port 0 picks a free one)"},
	{"stage", "NAME", "stage: first path segment of the URLs (default " + local.DefaultStage + ")"},
	{"template", "PATH", "serve a SAM/CloudFormation template's own functions instead of the demo app"},
	{"dynamodb-endpoint", "URL", "keep connections, requests and channels in DynamoDB (e.g. dynalite) instead of memory"},
	{"table-prefix", "P", "DynamoDB table name prefix (default " + dynamo.DefaultPrefix + ")"},
	{"jwt-algorithms", "LIST", "turn on JWT auth on $connect (keys: --jwt-hmac-secret-file, --jwt-public-key, --jwt-jwks, --jwt-jwks-url)"},
	{"allowed-origins", "LIST", "browser origins allowed to connect (default any localhost origin)"},
	{"metrics-addr", "ADDR", "serve Prometheus /metrics on its own address"},
	{"log-level", "LEVEL", "debug, info, warn or error"},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: streamer <command> [flags]")
	fmt.Fprintln(w, "       streamer --version")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Main flags of 'streamer dev':")
	for _, f := range devMainFlags {
		fmt.Fprintf(w, "  --%-26s %s\n", f.name+" "+f.arg, f.gloss)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'streamer <command> -h' for all of a command's flags.")
}
