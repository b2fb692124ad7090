// Package dynamotest connects tests to a real DynamoDB-API server
// (dynalite under `make test`), so that every package testing against
// DynamoDB finds the server, skips and cleans up the same way.
//
// Start with [Client], which finds the server through the
// STREAMER_DYNAMODB_ENDPOINT environment variable (see [Endpoint]), and
// [Tables], which creates both of the store's tables under a prefix no
// other test uses and deletes them when the test ends:
//
//	func TestSomething(t *testing.T) {
//		client := dynamotest.Client(t) // skips without a server
//		prefix := dynamotest.Tables(t, client, "something")
//		st := dynamo.New(client, dynamo.WithPrefix(prefix))
//		...
//	}
//
// [NewCounter] wraps a client to count its calls by API name, for tests
// that pin what each store operation costs.
//
// Without STREAMER_DYNAMODB_ENDPOINT the test is skipped with a message
// saying how to run it, unless STREAMER_REQUIRE_DYNAMODB=1 (set by
// scripts/with-dynalite.sh), which turns the missing server into a
// failure so that `make test` cannot pass by skipping.
//
// Like storetest, this package exists only for tests: it reads environment
// variables, which library packages never do. The tables are those of
// [dynamo.CreateTables]:
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html
package dynamotest
