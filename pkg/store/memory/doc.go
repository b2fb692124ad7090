// Package memory is the in-process store: one [Store] that implements both
// [store.ConnectionStore] and [store.RequestStore] with maps behind a mutex.
// It is the embedded default of the local runtime (streamer dev) and the
// store of choice in unit tests.
//
// Start with [New]; inject a clock with [WithClock] to test TTL expiry and
// lease take-over without sleeping. Records are copied in and out, so a
// caller never mutates what is stored. The store refuses records over
// [store.MaxItemBytes] like DynamoDB does, so code tested here does not fail
// later on package dynamo; both pass the contract suite in package
// storetest.
//
// It mirrors the semantics of Amazon DynamoDB conditional writes:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
package memory
