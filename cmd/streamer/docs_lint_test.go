package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The documents a reader follows, relative to the repository root.
var lintedDocs = []string{"README.md", "deploy/README.md", "clients/js/README.md", "docs/OPERATING.md", "docs/PROTOCOL.md", "docs/PERFORMANCE.md"}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// twoTables catches text written when Streamer had two DynamoDB tables; it
// has three (connections, requests, channels: dynamo.Tables).
var twoTables = regexp.MustCompile(`(?i)\b(both|two|2) (of the )?(dynamodb )?tables\b|\bconnections and requests tables\b|PREFIXconnections and PREFIXrequests\b`)

func TestDocsNameThreeTables(t *testing.T) {
	for _, name := range lintedDocs {
		for i, l := range strings.Split(readDoc(t, name), "\n") {
			if m := twoTables.FindString(l); m != "" {
				t.Errorf("%s:%d speaks of two tables (%q); there are three: connections, requests, channels", name, i+1, m)
			}
		}
	}
	var help bytes.Buffer
	parseTablesFlags([]string{"-h"}, &help)
	for _, want := range []string{"connections", "requests", "channels", "PREFIXchannels"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("streamer tables create -h does not mention %q:\n%s", want, help.String())
		}
	}
	if twoTables.MatchString(help.String()) {
		t.Errorf("streamer tables create -h speaks of two tables:\n%s", help.String())
	}
	// Every table of the stack, in its outputs, parameters and teardown.
	deploy := readDoc(t, "deploy/README.md")
	for _, want := range []string{"ChannelsTableName", "STREAMER_CHANNELS_TABLE", "{TablePrefix}channels", `for t in connections requests channels`} {
		if !strings.Contains(deploy, want) {
			t.Errorf("deploy/README.md does not mention %s", want)
		}
	}
}

// Flags the documents show for other tools, and the tool.
var otherToolsFlags = map[string]string{
	"--template-file": "sam", "--guided": "sam", "--capabilities": "sam", "--resolve-s3": "sam", "--lint": "sam validate",
	"--table-name": "aws dynamodb", "--data": "curl", "--test": "node",
}

// docFlag is a --flag standing alone (not an anchor, not a prefix such as
// --jwt-*).
var docFlag = regexp.MustCompile("(?:^|[\\s`(\\[\"'])(--[a-z][a-z0-9-]*[a-z0-9])(?:[^a-z0-9*-]|$)")

// TestDocsFlagsExist fails on a --flag in the documents that no streamer
// command (nor a tool the documents name) has: a renamed or removed flag
// leaves the docs stale.
func TestDocsFlagsExist(t *testing.T) {
	known := map[string]bool{"--version": true, "--help": true}
	for _, help := range []func(io.Writer){
		func(w io.Writer) { parseDevFlags([]string{"-h"}, w) },
		func(w io.Writer) { parseTokenFlags([]string{"-h"}, w) },
		func(w io.Writer) { parseBenchFlags([]string{"-h"}, w) },
		func(w io.Writer) { parseTablesFlags([]string{"-h"}, w) },
	} {
		var b bytes.Buffer
		help(&b)
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(b.String(), -1) {
			known["--"+m[1]] = true
		}
	}
	if len(known) < 30 || !known["--template"] || !known["--prefix"] {
		t.Fatalf("read only %d flags from the commands' help", len(known))
	}
	for _, name := range lintedDocs {
		for i, l := range strings.Split(readDoc(t, name), "\n") {
			for _, m := range docFlag.FindAllStringSubmatch(l, -1) {
				if f := m[1]; !known[f] && otherToolsFlags[f] == "" {
					t.Errorf("%s:%d: %s is no flag of any streamer command", name, i+1, f)
				}
			}
		}
	}
}
