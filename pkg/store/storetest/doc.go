// Package storetest is the contract suite every store implementation must
// pass: one set of tests, run against package memory and against package
// dynamo on a real DynamoDB-API server, so that both stores mean the same
// thing by every method and every error.
//
// Call [Run] from a test with a [Factory] that returns fresh, isolated
// stores whose clock is the one the suite passes in:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) storetest.Stores {
//			s := memory.New(memory.WithClock(now))
//			return storetest.Stores{Connections: s, Requests: s}
//		})
//	}
//
// The suite covers every method of [store.ConnectionStore] and
// [store.RequestStore], every sentinel error, a 100-way claim race and a
// 100-way race to take over an expired lease, Cancel racing Complete,
// lease expiry and take-over, retries up to a maximum, TTL expiry,
// pagination past one page (a cursor works only on the list it came
// from), which requests count as stalled (ListStalled, at the exact grace
// and lease boundaries), the permissions a request keeps, and bad input
// (empty IDs, invalid JSON, a negative TTL, records over
// [store.MaxItemBytes]).
//
// The semantics it checks are those documented on the interfaces, in the
// style of Amazon DynamoDB conditional writes:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
package storetest
