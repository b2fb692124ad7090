// Package dynamo stores connections and async requests in Amazon DynamoDB:
// one [Store] implements both [store.ConnectionStore] and
// [store.RequestStore] on the connections and requests tables, so that
// state survives across Lambda invocations. [Tables] also defines the
// third table of a deployment, channels, which pkg/channel uses.
//
// Start with [New] on a *dynamodb.Client, and create the tables once with
// [CreateTables] (or `streamer tables create`). The schema is defined once,
// in [Tables]: a connections table keyed by connection_id with indexes by
// user and tenant, and a requests table keyed by request_id with indexes by
// connection and user, both with a `ttl` attribute in epoch seconds. A
// third, sparse index on the requests table holds only the active requests
// (PENDING or PROCESSING), spread over [SweepShards] partitions, so that
// ListStalled reads the requests a sweep must rescue without scanning the
// table. [UnmarshalRequest] decodes a requests-table item, for instance a
// DynamoDB Streams image.
//
// Every state transition is one conditional PutItem or UpdateItem (no
// transactions, no delete-then-create), so concurrent workers never lose an
// update; when a condition fails the store reads the item once to tell
// ErrNotFound from ErrConflict. DynamoDB deletes expired items up to days
// late, so every read also filters on `ttl`. Errors wrap both a store
// sentinel and the SDK error, so errors.Is(err, store.ErrConflict) and
// errors.As(err, new(*types.ConditionalCheckFailedException)) both work.
//
// See https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
// and https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
package dynamo
