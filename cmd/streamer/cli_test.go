package main

import (
	"bytes"
	"context"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

func TestUsageListsEveryCommandAndDevsMainFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, io.Discard, &out); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	help := out.String()
	for name := range commands {
		if !strings.Contains(help, "\n  "+name+" ") {
			t.Errorf("top-level help does not list %q:\n%s", name, help)
		}
	}
	for _, want := range []string{"--version", "--template PATH", "--dynamodb-endpoint URL", "--jwt-algorithms LIST"} {
		if !strings.Contains(help, want) {
			t.Errorf("top-level help does not mention %q:\n%s", want, help)
		}
	}
}

// TestUsageNamesDevFlagsThatExist keeps devMainFlags true to `streamer dev`.
func TestUsageNamesDevFlagsThatExist(t *testing.T) {
	var devHelp bytes.Buffer
	if _, err := parseDevFlags([]string{"-h"}, &devHelp); err == nil {
		t.Fatal("dev -h: want flag.ErrHelp")
	}
	for _, f := range devMainFlags {
		if !strings.Contains(devHelp.String(), "  -"+f.name+" ") && !strings.Contains(devHelp.String(), "  -"+f.name+"\n") {
			t.Errorf("top-level help names --%s, which `streamer dev -h` does not list", f.name)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, io.Discard); code != 0 {
		t.Fatalf("--version exit code %d", code)
	}
	if got := out.String(); !strings.HasPrefix(got, "streamer ") || !strings.Contains(got, "go1.") {
		t.Errorf("--version printed %q, want \"streamer <version> ... go1.x\"", got)
	}
}

func TestVersionLine(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/streamer-go/streamer", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "75c7af6d0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-12-03T14:07:09Z"}, {Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"tagged with VCS", info, true, "streamer v0.3.0 git 75c7af6d0123 2026-12-03T14:07:09Z modified go1.26.8 linux/arm64"},
		{"checkout without VCS", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true, "streamer (devel) go1.26.8"},
		{"no build info", nil, false, "streamer (unknown version: no build information)"},
	} {
		if got := versionLine(tc.info, tc.ok); got != tc.want {
			t.Errorf("%s: versionLine = %q, want %q", tc.name, got, tc.want)
		}
	}
}
