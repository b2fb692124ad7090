package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// functionBaseEnv is what every function gets besides its own variables:
// dummy credentials (never the host's), the local DynamoDB endpoint, and
// the CA that signs the local TLS endpoints for each runtime's way of
// trusting one.
func functionBaseEnv(caFile, dynamoEndpoint string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_SESSION_TOKEN=local",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CA_BUNDLE=" + caFile,
		"NODE_EXTRA_CA_CERTS=" + caFile,
		"SSL_CERT_FILE=" + caFile,
		"REQUESTS_CA_BUNDLE=" + caFile,
	}
	if dynamoEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+dynamoEndpoint)
	}
	return env
}

// goBuild builds the Go main package in dir into out, as SAM's go1.x
// build method does for a provided runtime.
func goBuild(dir, out string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build in %s: %w\n%s", dir, err, b)
		}
		return nil
	}
}
