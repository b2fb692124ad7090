// Package httppool is the FastClient's keep-alive HTTP/1.1 pool: requests
// written and answers read in place on the caller's goroutine, bounded by
// the caller's context and by Bounds (an attempt's deadline and a stop
// flag), for callers that do not derive a context per call.
//
// It has no public face: the FastClient (package connection) owns one
// Pools per client and hands the Manager's attempts their Bounds.
package httppool
