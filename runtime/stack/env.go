package stack

import "os"

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
