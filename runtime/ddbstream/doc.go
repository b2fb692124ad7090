// Package ddbstream delivers DynamoDB Streams locally, for DynamoDB-API
// servers that have none (dynalite) or for tests.
//
// A [Proxy] is a DynamoDB endpoint in front of the real one: it forwards
// every call, and around each write to a table with a [Stream]
// (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems)
// it reads the item before and after (consistent reads, writes to one
// table serialised), so it can append the INSERT, MODIFY or REMOVE record
// DynamoDB Streams would, with the images the stream's view type keeps,
// in write order. A write that changes nothing appends nothing, as in
// DynamoDB.
//
// A [Source] is a Lambda event source mapping on a stream: it reads the
// stream in order, drops records its filter criteria do not match,
// invokes the function with batches of at most BatchSize records, and
// retries as Lambda does: a failed batch again (halved with
// BisectBatchOnFunctionError) up to MaximumRetryAttempts, and with
// ReportBatchItemFailures from the first failed record on.
//
// The reads around a write are extra calls the real service does not
// make, carrying the original request's headers: servers that check
// SigV4 signatures would refuse them, so the proxy is for local servers.
//
// See https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html
// and https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html
package ddbstream
