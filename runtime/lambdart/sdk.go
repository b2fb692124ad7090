package lambdart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NodeSDKPackages are the packages of the AWS SDK for JavaScript v3 that
// NodeSDK installs: the clients WebSocket apps call, with the DynamoDB
// document client. Lambda's runtimes bundle every client; a handler that
// imports one not listed here fails to load as it would with no SDK.
var NodeSDKPackages = []string{
	"@aws-sdk/client-apigatewaymanagementapi",
	"@aws-sdk/client-dynamodb",
	"@aws-sdk/lib-dynamodb",
	"@aws-sdk/util-dynamodb",
	"@aws-sdk/client-lambda",
	"@aws-sdk/client-sqs",
	"@aws-sdk/client-sns",
	"@aws-sdk/client-s3",
	"@aws-sdk/client-eventbridge",
	"@aws-sdk/client-ssm",
	"@aws-sdk/client-secrets-manager",
	"@aws-sdk/client-sts",
	"@aws-sdk/client-cognito-identity-provider",
}

// ErrNoSDK is returned by NodeSDK when the SDK cannot be installed.
var ErrNoSDK = errors.New("lambdart: the AWS SDK for JavaScript v3 is not available")

// NodeSDK makes dir hold NodeSDKPackages under dir/node_modules, for
// Runtimes.NodeSDK: at once when an earlier call filled it, otherwise by
// one `npm install` (tens of seconds), announced on progress first and
// timed after. A failed install leaves no half-filled marker, so the next
// call tries again.
func NodeSDK(ctx context.Context, dir string, progress io.Writer) error {
	marker := filepath.Join(dir, ".complete")
	if want, err := os.ReadFile(marker); err == nil && string(want) == strings.Join(NodeSDKPackages, "\n") {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%w: npm is not on PATH to install it: %w", ErrNoSDK, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrNoSDK, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"streamer-lambda-sdk","private":true}`+"\n"), 0o644); err != nil {
			return fmt.Errorf("%w: %w", ErrNoSDK, err)
		}
	}
	fmt.Fprintf(progress, "installing the AWS SDK for JavaScript v3 that Lambda's Node.js runtimes bundle (%d packages, once) into %s ...\n", len(NodeSDKPackages), dir)
	start := time.Now()
	args := append([]string{"install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", dir}, NodeSDKPackages...)
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: npm install: %w: %s", ErrNoSDK, err, strings.TrimSpace(lastLines(string(out), 5)))
	}
	if err := os.WriteFile(marker, []byte(strings.Join(NodeSDKPackages, "\n")), 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrNoSDK, err)
	}
	fmt.Fprintf(progress, "installed the AWS SDK for JavaScript v3 in %.1f s\n", time.Since(start).Seconds())
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
