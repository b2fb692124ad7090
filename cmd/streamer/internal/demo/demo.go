package demo

import (
	"github.com/streamer-go/streamer/examples/demoapp"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// The identity every connection gets while auth is off.
const (
	AnonymousUser = "anonymous"
	DefaultTenant = "default"
)

// The actions the demo registers: examples/demoapp's, the same code
// examples/lambda deploys.
const (
	ActionEcho      = demoapp.ActionEcho
	ActionWhoami    = demoapp.ActionWhoami
	ActionBroadcast = demoapp.ActionBroadcast
	ActionReport    = demoapp.ActionReport
)

// Report's pacing (see demoapp).
const (
	DefaultReportSeconds = demoapp.DefaultReportSeconds
	MaxReportSeconds     = demoapp.MaxReportSeconds
	ReportInterval       = demoapp.ReportInterval
)

// The actions' data, as demoapp defines them.
type (
	Broadcaster     = demoapp.Broadcaster
	Identity        = demoapp.Identity
	BroadcastResult = demoapp.BroadcastResult
	ReportRequest   = demoapp.ReportRequest
	ReportResult    = demoapp.ReportResult
)

// AnonymousIdentity is the identity of every connection while auth is off,
// for streamer.WithAnonymousIdentity. All anonymous connections are one
// user, so a reconnecting client can resume its requests.
func AnonymousIdentity(streamer.ConnectRequest) streamer.Identity {
	return streamer.Identity{UserID: AnonymousUser, TenantID: DefaultTenant}
}

// Register adds the demo's actions to r (demoapp.Register).
func Register(r *streamer.Router, conns store.ConnectionStore, b Broadcaster) {
	demoapp.Register(r, conns, b)
}
