package demoapp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// The actions the demo registers.
const (
	ActionEcho      = "echo"
	ActionWhoami    = "whoami"
	ActionBroadcast = "broadcast"
	ActionReport    = "report"
)

// Report's pacing: a run lasts DefaultReportSeconds unless the payload asks
// for another length up to MaxReportSeconds (inside the template's default
// ProcessorTimeout of 300 s), and reports progress every ReportInterval
// (the progress reporter's default rate, so none is coalesced away).
const (
	DefaultReportSeconds = 5.0
	MaxReportSeconds     = 60.0
	ReportInterval       = 100 * time.Millisecond
)

// Broadcaster is what broadcast needs to post: a *connection.Manager, or
// channel.SendEach on Lambda without a management endpoint of its own.
type Broadcaster interface {
	Broadcast(ctx context.Context, connectionIDs []string, message any) error
}

var _ Broadcaster = (*connection.Manager)(nil)

// Register adds the demo's actions to r. broadcast lists the caller's
// tenant in conns and sends through b.
func Register(r *streamer.Router, conns store.ConnectionStore, b Broadcaster) {
	r.HandleFunc(ActionEcho, echo)
	r.HandleFunc(ActionWhoami, whoami)
	r.HandleFunc(ActionBroadcast, (&broadcaster{conns: conns, send: b}).serve)
	r.HandleAsync(ActionReport, streamer.AsyncHandlerOf(report))
}

// echo answers with the payload (null when there is none).
func echo(_ context.Context, req *streamer.Request) (any, error) {
	if req.Payload == nil {
		return nil, nil
	}
	return req.Payload, nil
}

// Identity is whoami's data.
type Identity struct {
	ConnectionID string   `json:"connectionId"`
	UserID       string   `json:"userId"`
	TenantID     string   `json:"tenantId"`
	Permissions  []string `json:"permissions"`
}

// whoami answers with the identity the router read from the connection
// record; the payload is never consulted.
func whoami(_ context.Context, req *streamer.Request) (any, error) {
	perms := req.Identity.Permissions
	if perms == nil {
		perms = []string{}
	}
	return Identity{
		ConnectionID: req.ConnectionID,
		UserID:       req.Identity.UserID,
		TenantID:     req.Identity.TenantID,
		Permissions:  perms,
	}, nil
}

// BroadcastResult is broadcast's data: how many of the tenant's
// connections the payload reached.
type BroadcastResult struct {
	Recipients int `json:"recipients"`
	Delivered  int `json:"delivered"`
}

type broadcaster struct {
	conns store.ConnectionStore
	send  Broadcaster
}

// serve posts the payload, exactly as the caller sent it, to every
// connection of the caller's tenant (the caller's included), inside a
// relay envelope that names the sender: whatever the payload says, no
// client takes it for a protocol message. Sending finishes before the
// answer, so the caller gets its copy first; the answer is the count.
func (b *broadcaster) serve(ctx context.Context, req *streamer.Request) (any, error) {
	if req.Payload == nil {
		return nil, streamer.NewClientError(protocol.CodeInvalidMessage, "broadcast needs a payload")
	}
	ids, err := b.recipients(ctx, req)
	if err != nil {
		return nil, err
	}
	res := BroadcastResult{Recipients: len(ids), Delivered: len(ids)}
	if err := b.send.Broadcast(ctx, ids, protocol.NewRelay(req.Payload, &protocol.ClientInfo{UserID: req.Identity.UserID})); err != nil {
		// Gone connections are normal (the manager removed them): the
		// answer counts them out rather than failing the request.
		var be *connection.BroadcastError
		if !errors.As(err, &be) {
			return nil, fmt.Errorf("demoapp: broadcast: %w", err)
		}
		res.Delivered -= len(be.Failed)
	}
	return res, nil
}

// recipients lists the connections of the caller's tenant. A connection
// without a tenant (an anonymous connection on Lambda, each a user of its
// own) shares it with nobody, so it reaches only itself.
func (b *broadcaster) recipients(ctx context.Context, req *streamer.Request) ([]string, error) {
	if req.Identity.TenantID == "" {
		return []string{req.ConnectionID}, nil
	}
	conns, err := b.conns.ListByTenant(ctx, req.Identity.TenantID)
	if err != nil {
		return nil, fmt.Errorf("demoapp: list tenant: %w", err)
	}
	ids := make([]string, 0, len(conns))
	for _, c := range conns {
		ids = append(ids, c.ConnectionID)
	}
	return ids, nil
}

// ReportRequest is report's payload. Seconds is how long the run lasts
// (DefaultReportSeconds when absent, at most MaxReportSeconds).
type ReportRequest struct {
	Seconds *float64 `json:"seconds"`
}

// ReportResult is report's result.
type ReportResult struct {
	Steps   int     `json:"steps"`
	Seconds float64 `json:"seconds"`
}

// report pretends to work for the requested time, reporting progress every
// ReportInterval and 100 at the end. It stops as soon as ctx ends, which is
// how a client's cancel reaches it.
func report(ctx context.Context, _ *streamer.Request, in ReportRequest, p progress.Reporter) (any, error) {
	seconds := DefaultReportSeconds
	if in.Seconds != nil {
		seconds = *in.Seconds
	}
	if math.IsNaN(seconds) || seconds < 0 || seconds > MaxReportSeconds {
		return nil, streamer.NewClientError(protocol.CodeInvalidMessage,
			fmt.Sprintf("seconds must be between 0 and %g", MaxReportSeconds))
	}
	total := time.Duration(seconds * float64(time.Second))
	steps := int(math.Ceil(float64(total) / float64(ReportInterval)))
	if steps == 0 {
		if err := p.Report(100, "done"); err != nil {
			return nil, err
		}
		return ReportResult{Steps: 1, Seconds: seconds}, nil
	}
	tick := time.NewTicker(total / time.Duration(steps))
	defer tick.Stop()
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		msg := fmt.Sprintf("step %d of %d", i, steps)
		if err := p.Report(float64(100*i)/float64(steps), msg); err != nil {
			return nil, err
		}
	}
	return ReportResult{Steps: steps, Seconds: seconds}, nil
}
