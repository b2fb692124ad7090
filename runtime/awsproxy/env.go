package awsproxy

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed nodehook.cjs
var nodeHook []byte

// NoProxy is the NO_PROXY list Env sets: the local runtime's own
// endpoints (the Lambda Runtime API, the gateway's domainName, a DynamoDB
// endpoint on loopback) are reached directly.
const NoProxy = "localhost,127.0.0.1,::1,.localhost"

// WriteNodeHook writes the Node.js module that Env preloads into dir and
// returns its path.
func WriteNodeHook(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("awsproxy: %w", err)
	}
	path := filepath.Join(dir, "aws-endpoints.cjs")
	if err := os.WriteFile(path, nodeHook, 0o644); err != nil {
		return "", fmt.Errorf("awsproxy: %w", err)
	}
	return path, nil
}

// Env is the environment that sends a function's AWS calls to the door at
// addr: HTTPS_PROXY for the clients that honour it, and for Node.js the
// hook at nodeHook (see WriteNodeHook) preloaded through NODE_OPTIONS,
// after nodeOptions (the function's own NODE_OPTIONS, kept).
func Env(addr, nodeHook, nodeOptions string) []string {
	u := "http://" + addr
	opts := "--require " + quoteNodeOption(nodeHook)
	if nodeOptions = strings.TrimSpace(nodeOptions); nodeOptions != "" {
		opts += " " + nodeOptions
	}
	return []string{
		"HTTPS_PROXY=" + u,
		"https_proxy=" + u,
		"NO_PROXY=" + NoProxy,
		"no_proxy=" + NoProxy,
		"STREAMER_AWS_PROXY=" + addr,
		"NODE_OPTIONS=" + opts,
	}
}

// LocalHTTPEnv is the variable that tells the Node.js hook which local
// servers (host:port, as an https URL names them) also serve plain HTTP
// on the same port, as the gateway's tlsmux port does: the hook sends
// the https requests to them over plain HTTP on loopback through one
// keep-alive Agent per process (see the package doc).
func LocalHTTPEnv(hostPorts ...string) string {
	return "STREAMER_LOCAL_HTTP=" + strings.Join(hostPorts, ",")
}

// quoteNodeOption quotes a path for NODE_OPTIONS, which splits on spaces
// and takes double quotes with backslash escapes.
func quoteNodeOption(s string) string {
	if !strings.ContainsAny(s, " \"\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
