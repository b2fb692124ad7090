package memory

import (
	"github.com/streamer-go/streamer/pkg/store"
)

// recordOverhead stands for the attribute names and fixed-size values
// (numbers, timestamps, status) of a DynamoDB item. It is rounded up, so
// the estimate below is at least the size DynamoDB would count; a record
// this store accepts is therefore also accepted by package dynamo.
const recordOverhead = 1024

// connectionSize estimates the DynamoDB item size of c: variable-length
// values at face value plus recordOverhead.
func connectionSize(c *store.Connection) int {
	n := recordOverhead + len(c.ConnectionID) + len(c.UserID) + len(c.TenantID) + len(c.Endpoint)
	for _, p := range c.Permissions {
		n += len(p) + 1
	}
	for k, v := range c.Metadata {
		n += len(k) + len(v) + 1
	}
	return n
}

// requestSize estimates the DynamoDB item size of r like connectionSize.
func requestSize(r *store.AsyncRequest) int {
	n := recordOverhead + len(r.RequestID) + len(r.ClientRequestID) + len(r.ConnectionID) +
		len(r.UserID) + len(r.TenantID) + len(r.Action) + len(r.Payload) +
		len(r.ProgressMessage) + len(r.Result) + len(r.LeaseOwner)
	for _, p := range r.Permissions {
		n += len(p) + 1
	}
	if r.Error != nil {
		n += len(r.Error.Code) + len(r.Error.Message)
	}
	return n
}
