package main

import (
	"path/filepath"
	"testing"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// BenchmarkDevTemplate runs BenchmarkDev's load through `streamer dev
// --template deploy/template.json`: the same messages, answered by the
// examples/lambda binary in provided.al2023 processes behind the Lambda
// Runtime API (DynamoDB through the stream proxy, replies over the TLS
// management endpoint). Compare with BenchmarkDev/store=dynamodb, the same
// handlers in process.
//
//	./scripts/with-dynalite.sh go test -run '^$' -bench 'Dev(Template)?$/store=dynamodb|DevTemplate' -benchtime 3s ./cmd/streamer/
func BenchmarkDevTemplate(b *testing.B) {
	endpoint := dynamotest.Endpoint(b)
	bin := buildBinary(b)
	dir := exampleLambda(b)
	prefix := dynamotest.Prefix("tplbench")
	b.Run("store=dynamodb", func(b *testing.B) {
		benchDev(b, bin, "--template", filepath.Join(dir, "template.json"), "--dynamodb-endpoint", endpoint, "--no-watch",
			"--function-concurrency", "16", "--parameter-overrides", "AllowAnonymous=true StageName=dev TablePrefix="+prefix)
	})
}
