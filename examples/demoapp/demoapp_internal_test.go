package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBroadcastThroughRecords is broadcast as the template deploys it: a
// Manager without an endpoint, SendEach posting to the endpoint each
// record names on a real @connections server. The caller's tenant gets
// the payload in a relay envelope, a gone connection is counted out, another tenant gets
// nothing.
func TestBroadcastThroughRecords(t *testing.T) {
	srv := connectiontest.NewServer()
	client := srv.FastClient()
	conns := memory.New()
	mgr := connection.NewManager(conns, client, "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mgr.Shutdown(ctx)
		srv.Close()
	})
	ctx := t.Context()
	for id, tenant := range map[string]string{"a": "acme", "b": "acme", "gone": "acme", "x": "globex"} {
		if err := conns.Save(ctx, &store.Connection{ConnectionID: id, UserID: "u-" + id, TenantID: tenant, Endpoint: srv.URL, TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Disconnect("gone")
	b := &broadcaster{conns: conns, send: channel.SendEach(mgr, 0)}

	got, err := b.serve(ctx, &streamer.Request{ConnectionID: "a", Identity: streamer.Identity{TenantID: "acme"}, Payload: json.RawMessage(`{"text":"all"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (BroadcastResult{Recipients: 3, Delivered: 2}); got != want {
		t.Errorf("answer %+v, want %+v", got, want)
	}
	for id, want := range map[string][]string{"a": {`{"v":1,"type":"relay","data":{"text":"all"},"info":{"user_id":""}}`}, "b": {`{"v":1,"type":"relay","data":{"text":"all"},"info":{"user_id":""}}`}, "x": {}} {
		if got := texts(srv.Received(id)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s received %q, want %q", id, got, want)
		}
	}

	// Without a tenant (anonymous), the caller is its only recipient.
	got, err = b.serve(ctx, &streamer.Request{ConnectionID: "x", Payload: json.RawMessage(`"solo"`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (BroadcastResult{Recipients: 1, Delivered: 1}); got != want {
		t.Errorf("anonymous answer %+v, want %+v", got, want)
	}
	if got, want := texts(srv.Received("x")), []string{`{"v":1,"type":"relay","data":"solo","info":{"user_id":""}}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("x received %q, want %q", got, want)
	}

	_, err = b.serve(ctx, &streamer.Request{ConnectionID: "a", Identity: streamer.Identity{TenantID: "acme"}})
	if ce := (*streamer.ClientError)(nil); !errors.As(err, &ce) || ce.Code != protocol.CodeInvalidMessage {
		t.Errorf("broadcast without a payload: %v, want %s", err, protocol.CodeInvalidMessage)
	}
}

func texts(msgs [][]byte) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, string(m))
	}
	return out
}

// reports records progress updates (a fake for this unit test; the real
// reporter runs in TestTemplateParityWithTheDemo and deploy's tests).
type reports []string

func (r *reports) Report(pct float64, msg string) error {
	*r = append(*r, fmt.Sprintf("%g %s", pct, msg))
	return nil
}

func (r *reports) ReportDetails(pct float64, msg string, _ any) error { return r.Report(pct, msg) }

func TestReport(t *testing.T) {
	seconds := func(s float64) ReportRequest { return ReportRequest{Seconds: &s} }
	for _, tc := range []struct {
		in      ReportRequest
		want    any
		reports []string
	}{
		{seconds(0), ReportResult{Steps: 1, Seconds: 0}, []string{"100 done"}},
		{seconds(0.25), ReportResult{Steps: 3, Seconds: 0.25}, []string{"33.333333333333336 step 1 of 3", "66.66666666666667 step 2 of 3", "100 step 3 of 3"}},
	} {
		var r reports
		got, err := report(t.Context(), &streamer.Request{}, tc.in, &r)
		if err != nil || got != tc.want || !reflect.DeepEqual([]string(r), tc.reports) {
			t.Errorf("report(%g) = %+v, %v with %q; want %+v with %q", *tc.in.Seconds, got, err, r, tc.want, tc.reports)
		}
	}
	for _, bad := range []ReportRequest{seconds(-1), seconds(MaxReportSeconds + 1)} {
		var r reports
		_, err := report(t.Context(), &streamer.Request{}, bad, &r)
		if ce := (*streamer.ClientError)(nil); !errors.As(err, &ce) || ce.Code != protocol.CodeInvalidMessage || len(r) != 0 {
			t.Errorf("report(%g): %v with %q, want %s and no progress", *bad.Seconds, err, r, protocol.CodeInvalidMessage)
		}
	}
	// A cancelled run stops at once with the context's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var r reports
	if _, err := report(ctx, &streamer.Request{}, seconds(MaxReportSeconds), &r); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled report: %v, want context.Canceled", err)
	}
}
