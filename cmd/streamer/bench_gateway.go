package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/runtime/local"
)

// benchGatewayArg makes `streamer bench` run as the benchmark's gateway
// process instead of its load client. It is not a listed flag: only the
// bench re-executes itself with it.
const benchGatewayArg = "--internal-bench-gateway"

// benchReadyPrefix starts the line the gateway process prints once it
// listens: "READY wsURL managementEndpoint noopURL".
const benchReadyPrefix = "READY "

// runBenchGateway is the gateway process: a local.Gateway on loopback whose
// $default route answers a client with its connection ID (a two-way route,
// so the load client learns the IDs to post to), and a no-op HTTP handler
// for the raw-POST baseline, in the same process so that both are measured
// under the same conditions. It runs until SIGTERM or until its stdin
// closes (the load client died).
func runBenchGateway(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	whoami := func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: req.RequestContext.ConnectionID}, nil
	}
	gw, err := local.New(local.Config{
		Routes:       map[string]local.Handler{local.RouteDefault: whoami},
		TwoWayRoutes: []string{local.RouteDefault},
		// The bench ends on its own; these only keep a long run open.
		IdleTimeout: time.Hour,
		MaxLifetime: 2 * time.Hour,
	})
	if err != nil {
		return err
	}
	if err := gw.Start(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gw.Close()
		return err
	}
	noop := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	served := make(chan error, 1)
	go func() { served <- noop.Serve(ln) }()
	fmt.Fprintf(stdout, "%s%s %s http://%s/noop\n", benchReadyPrefix, gw.URL(), gw.ManagementEndpoint(), ln.Addr())

	eof := make(chan struct{})
	go func() {
		// Ends with the process if ctx ends first.
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = errors.Join(gw.Shutdown(sctx), noop.Shutdown(sctx))
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench gateway: %v\n", err)
	}
	return err
}

// benchStdin is the gateway process's stdin, a variable so that the
// command's run function keeps the (ctx, args, stdout, stderr) shape.
var benchStdin io.Reader = os.Stdin
