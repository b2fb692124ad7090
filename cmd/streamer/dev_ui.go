package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/runtime/local"
)

// devUI puts the demo page (/) and the dev console (/_console) on the
// gateway's own listener, so they share its loopback address and port:
// one http.Server whose handler serves the UI's paths and passes the rest
// (the WebSocket at /{stage}, @connections) to the gateway.
type devUI struct {
	ui  *devui.UI
	srv *http.Server
}

// newDevUI builds the UI and its server before the gateway, which takes
// the UI as its Observer; requests reach s.gw, which is set before the
// server starts.
func newDevUI(o devOptions, s *devStack, conns store.ConnectionStore) (*devUI, error) {
	ui, err := devui.New(devui.Config{
		Stage:              o.stage,
		ManagementEndpoint: s.endpoint,
		Connections:        conns,
		AuthOn:             o.jwt.enabled(),
		HTTPClient:         consoleClient(local.DefaultRegion),
	})
	if err != nil {
		return nil, err
	}
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.gw.ServeHTTP(w, r) })
	return &devUI{ui: ui, srv: local.ServerTimeouts(&http.Server{Handler: ui.Handler(gateway)})}, nil
}

// serveUI runs the listener until shutdown; it returns
// http.ErrServerClosed then, like the gateway's own Serve.
func (s *devStack) serveUI(ln net.Listener) error {
	s.ui.ui.Attach(s.gw)
	return s.ui.srv.Serve(ln)
}

// shutdownUI stops the listener and waits for the page and console
// requests; the gateway's Shutdown then closes the WebSockets, which
// http.Server does not track once hijacked.
func (s *devStack) shutdownUI(ctx context.Context) error {
	if err := s.ui.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ui: %w", err)
	}
	return nil
}

// printDevUI names the page and the console on stdout.
func printDevUI(stdout io.Writer, s *devStack) {
	base := "http://" + s.addr
	fmt.Fprintf(stdout, "Demo page:           %s/\n", base)
	fmt.Fprintf(stdout, "Dev console:         %s%s\n", base, devui.PathConsole)
}
