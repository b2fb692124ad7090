package dynamo

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
)

// connectionItem is a connections-table item. Its tags must match the Attr
// constants (a test checks). Empty values are omitted: index keys cannot be
// empty strings, and an absent user_id keeps the item out of the index.
type connectionItem struct {
	ConnectionID string            `dynamodbav:"connection_id"`
	UserID       string            `dynamodbav:"user_id,omitempty"`
	TenantID     string            `dynamodbav:"tenant_id,omitempty"`
	Endpoint     string            `dynamodbav:"endpoint,omitempty"`
	ConnectedAt  string            `dynamodbav:"connected_at,omitempty"`
	LastPing     string            `dynamodbav:"last_ping,omitempty"`
	Permissions  []string          `dynamodbav:"permissions,omitempty"`
	Metadata     map[string]string `dynamodbav:"metadata,omitempty"`
	TTL          int64             `dynamodbav:"ttl,omitempty"`
}

// requestItem is a requests-table item. Payload and Result hold JSON text
// rather than a binary or a DynamoDB map: it round-trips byte for byte and
// stays readable in the console and in stream images.
type requestItem struct {
	RequestID       string     `dynamodbav:"request_id"`
	ClientRequestID string     `dynamodbav:"client_request_id,omitempty"`
	ConnectionID    string     `dynamodbav:"connection_id,omitempty"`
	UserID          string     `dynamodbav:"user_id,omitempty"`
	TenantID        string     `dynamodbav:"tenant_id,omitempty"`
	Action          string     `dynamodbav:"action,omitempty"`
	Payload         string     `dynamodbav:"payload,omitempty"`
	Permissions     []string   `dynamodbav:"permissions,omitempty"`
	Status          string     `dynamodbav:"status"`
	Progress        float64    `dynamodbav:"progress"`
	ProgressMessage string     `dynamodbav:"progress_message,omitempty"`
	Result          string     `dynamodbav:"result,omitempty"`
	Error           *errorItem `dynamodbav:"error,omitempty"`
	Attempts        int        `dynamodbav:"attempts"`
	LeaseOwner      string     `dynamodbav:"lease_owner,omitempty"`
	LeaseUntil      string     `dynamodbav:"lease_until,omitempty"`
	CreatedAt       string     `dynamodbav:"created_at,omitempty"`
	UpdatedAt       string     `dynamodbav:"updated_at,omitempty"`
	StartedAt       string     `dynamodbav:"started_at,omitempty"`
	CompletedAt     string     `dynamodbav:"completed_at,omitempty"`
	TTL             int64      `dynamodbav:"ttl,omitempty"`
	// The keys of IndexRequestsToSweep, set while the request is active.
	SweepShard string `dynamodbav:"sweep_shard,omitempty"`
	SweepKey   string `dynamodbav:"sweep_key,omitempty"`
}

type errorItem struct {
	Code    string `dynamodbav:"code"`
	Message string `dynamodbav:"message"`
}

// formatTime renders t in TimeLayout; the zero time is "" (omitted).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

func parseTime(attr, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("dynamo: attribute %s: %w", attr, err)
	}
	return t, nil
}

func toConnectionItem(c *store.Connection) connectionItem {
	return connectionItem{
		ConnectionID: c.ConnectionID,
		UserID:       c.UserID,
		TenantID:     c.TenantID,
		Endpoint:     c.Endpoint,
		ConnectedAt:  formatTime(c.ConnectedAt),
		LastPing:     formatTime(c.LastPing),
		Permissions:  c.Permissions,
		Metadata:     c.Metadata,
		TTL:          c.TTL,
	}
}

func unmarshalConnection(av map[string]types.AttributeValue) (*store.Connection, error) {
	var it connectionItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("dynamo: decode connection: %w", err)
	}
	c := &store.Connection{
		ConnectionID: it.ConnectionID,
		UserID:       it.UserID,
		TenantID:     it.TenantID,
		Endpoint:     it.Endpoint,
		Permissions:  it.Permissions,
		Metadata:     it.Metadata,
		TTL:          it.TTL,
	}
	var err error
	if c.ConnectedAt, err = parseTime(AttrConnectedAt, it.ConnectedAt); err != nil {
		return nil, err
	}
	if c.LastPing, err = parseTime(AttrLastPing, it.LastPing); err != nil {
		return nil, err
	}
	return c, nil
}

func toRequestItem(r *store.AsyncRequest) requestItem {
	it := requestItem{
		RequestID:       r.RequestID,
		ClientRequestID: r.ClientRequestID,
		ConnectionID:    r.ConnectionID,
		UserID:          r.UserID,
		TenantID:        r.TenantID,
		Action:          r.Action,
		Payload:         string(r.Payload),
		Permissions:     r.Permissions,
		Status:          string(r.Status),
		Progress:        r.Progress,
		ProgressMessage: r.ProgressMessage,
		Result:          string(r.Result),
		Attempts:        r.Attempts,
		LeaseOwner:      r.LeaseOwner,
		LeaseUntil:      formatTime(r.LeaseUntil),
		CreatedAt:       formatTime(r.CreatedAt),
		UpdatedAt:       formatTime(r.UpdatedAt),
		StartedAt:       formatTime(r.StartedAt),
		CompletedAt:     formatTime(r.CompletedAt),
		TTL:             r.TTL,
	}
	if r.Error != nil {
		it.Error = &errorItem{Code: r.Error.Code, Message: r.Error.Message}
	}
	if !r.Status.Terminal() {
		it.SweepShard = sweepShard(r.RequestID)
		it.SweepKey = sweepKey(r)
	}
	return it
}

// UnmarshalRequest decodes a requests-table item, such as the NewImage of
// a DynamoDB Streams record converted to types.AttributeValue. It does not
// check the TTL: call Expired on the result when that matters.
func UnmarshalRequest(item map[string]types.AttributeValue) (*store.AsyncRequest, error) {
	var it requestItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, fmt.Errorf("dynamo: decode request: %w", err)
	}
	if it.RequestID == "" {
		return nil, fmt.Errorf("dynamo: decode request: no %s attribute", AttrRequestID)
	}
	r := &store.AsyncRequest{
		RequestID:       it.RequestID,
		ClientRequestID: it.ClientRequestID,
		ConnectionID:    it.ConnectionID,
		UserID:          it.UserID,
		TenantID:        it.TenantID,
		Action:          it.Action,
		Permissions:     it.Permissions,
		Status:          store.Status(it.Status),
		Progress:        it.Progress,
		ProgressMessage: it.ProgressMessage,
		Attempts:        it.Attempts,
		LeaseOwner:      it.LeaseOwner,
		TTL:             it.TTL,
	}
	if it.Payload != "" {
		r.Payload = json.RawMessage(it.Payload)
	}
	if it.Result != "" {
		r.Result = json.RawMessage(it.Result)
	}
	if it.Error != nil {
		r.Error = &store.RequestError{Code: it.Error.Code, Message: it.Error.Message}
	}
	for _, f := range []struct {
		attr string
		src  string
		dst  *time.Time
	}{
		{AttrLeaseUntil, it.LeaseUntil, &r.LeaseUntil},
		{AttrCreatedAt, it.CreatedAt, &r.CreatedAt},
		{AttrUpdatedAt, it.UpdatedAt, &r.UpdatedAt},
		{AttrStartedAt, it.StartedAt, &r.StartedAt},
		{AttrCompletedAt, it.CompletedAt, &r.CompletedAt},
	} {
		t, err := parseTime(f.attr, f.src)
		if err != nil {
			return nil, err
		}
		*f.dst = t
	}
	return r, nil
}
