package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
	"github.com/streamer-go/streamer/runtime/local"
	"github.com/streamer-go/streamer/runtime/stack"
)

// templateTools are the dev console (/_console) and /metrics of template
// mode, on the API's port as in the demo mode (the demo page, which
// speaks the demo app's protocol, is not served: / leads to the console).
type templateTools struct {
	o          devOptions
	log        *slog.Logger
	consoleURL string
	metrics    *devMetrics
}

// extend is the stack's Config.Extend: the console and the metrics observe
// the gateway and serve their paths in front of it, behind its Host,
// Origin and token rules.
func (t *templateTools) extend(s *stack.Stack) (local.Observer, func(*local.Gateway) http.Handler, error) {
	base := strings.TrimSuffix(s.ManagementEndpoint(), "/"+s.Stage())
	ui, err := devui.New(devui.Config{
		Stage:              s.Stage(),
		ManagementEndpoint: s.ManagementEndpoint(),
		HTTPClient:         consoleClient(t.o.tpl.region),
		Logger:             t.log,
	})
	if err != nil {
		return nil, nil, err
	}
	m := &devMetrics{reg: prometheus.NewRegistry(), obs: newGatewayMetrics(s.RouteKeys()...), url: base + metricsPath}
	m.reg.MustRegister(m.obs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if t.o.metricsAddr != "" {
		ln, err := net.Listen("tcp", t.o.metricsAddr)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--metrics-addr: %w", err)}
		}
		m.own, m.url = ln, "http://"+ln.Addr().String()+metricsPath
	}
	t.metrics, t.consoleURL = m, base+devui.PathConsole
	wrap := func(gw *local.Gateway) http.Handler {
		ui.Attach(gw)
		m.reg.MustRegister(limitsCollector{gw})
		guard := func(h http.Handler) http.Handler { return gw.Guard(h, privatePaths...) }
		m.start(t.log, guard)
		console := ui.Handler(gw)
		return guard(m.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == devui.PathPage {
				http.Redirect(w, r, devui.PathConsole, http.StatusSeeOther)
				return
			}
			console.ServeHTTP(w, r)
		})))
	}
	return local.JoinObservers(ui, m.obs), wrap, nil
}

// shutdown stops --metrics-addr's server, if any (the console and the
// shared /metrics stop with the stack).
func (t *templateTools) shutdown(ctx context.Context) error {
	m := t.metrics
	if m == nil {
		return nil
	}
	if m.ownCh == nil {
		m.close()
		return nil
	}
	err := m.srv.Shutdown(ctx)
	if serr := <-m.ownCh; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
