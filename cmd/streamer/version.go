package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// versionLine is what `streamer --version` prints: the module version the
// binary was built from (a tag such as v0.3.0 when installed with
// `go install github.com/streamer-go/streamer/cmd/streamer@v0.3.0`,
// "(devel)" when built from a checkout), the VCS revision when the build
// recorded it, and the Go toolchain and platform.
func versionLine(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "streamer (unknown version: no build information)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "streamer %s", v)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " %s %s", settings["vcs"], rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " %s", t)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString(" modified")
		}
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	if goos, goarch := settings["GOOS"], settings["GOARCH"]; goos != "" && goarch != "" {
		fmt.Fprintf(&b, " %s/%s", goos, goarch)
	}
	return b.String()
}
