package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
)

func init() {
	register(command{name: "bench", summary: "load-test the local runtime on loopback (connections, RSS, fan-out)", run: runBench})
}

// The floors, checked with --check.
const (
	benchMaxRSSBytes   = 400 << 20 // 10,000 connections under 400 MB
	benchMinRawToNoop  = 0.5       // raw-poster delivery ≥ 0.5× the no-op POST rate
	benchRSSFloorConns = 10000
)

// benchOptions is `streamer bench`'s command line.
type benchOptions struct {
	connections     int
	workers         int
	payload         int
	dialConcurrency int
	rounds          int
	timeout         time.Duration
	check           bool
}

func parseBenchFlags(args []string, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := flag.NewFlagSet("streamer bench", flag.ContinueOnError)
	fs.IntVar(&o.connections, "connections", 10000, "WebSocket connections to hold (the fd limit of 20,000 per process allows 10,000 comfortably)")
	fs.IntVar(&o.workers, "workers", 64, "concurrent POSTs of each fan-out driver")
	fs.IntVar(&o.payload, "payload", 100, "message size in bytes")
	fs.IntVar(&o.dialConcurrency, "dial-concurrency", 64, "concurrent WebSocket dials")
	fs.IntVar(&o.rounds, "rounds", 3, "measurement rounds (no-op POST, raw fan-out, manager fan-out each); medians are reported, which tames a noisy machine")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "the whole run stops after this long")
	fs.BoolVar(&o.check, "check", false, "exit 1 if a floor is missed (RSS < 400 MB at 10,000 connections; raw fan-out ≥ 0.5× the no-op POST rate)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
	}
	switch {
	case o.connections < 1 || o.connections > 15000:
		return o, usageError{errors.New("--connections must be 1..15000 (client and gateway run as separate processes with 20,000 descriptors each)")}
	case o.workers < 1 || o.dialConcurrency < 1 || o.rounds < 1:
		return o, usageError{errors.New("--workers, --dial-concurrency and --rounds must be positive")}
	case o.payload < 16 || o.payload > connection.MaxMessageBytes:
		return o, usageError{fmt.Errorf("--payload must be 16..%d", connection.MaxMessageBytes)}
	case o.timeout <= 0:
		return o, usageError{errors.New("--timeout must be positive")}
	}
	return o, nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && args[0] == benchGatewayArg {
		return runBenchGateway(ctx, benchStdin, stdout, stderr)
	}
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	res, err := benchRun(ctx, o, stderr)
	if err != nil {
		return err
	}
	res.print(stdout, o)
	if o.check {
		if failed := res.missedFloors(o); len(failed) > 0 {
			return fmt.Errorf("floors missed: %s", strings.Join(failed, "; "))
		}
	}
	return nil
}

// fanout is the outcome of sending one message to every connection.
type fanout struct {
	delivered int
	errors    int
	elapsed   time.Duration // first POST to last receive
	p50, p99  time.Duration // POST → receive
}

func (f fanout) rate() float64 { return float64(f.delivered) / f.elapsed.Seconds() }

// benchRound is one measurement of each driver, taken back to back so
// that their ratio is fair even when the machine's load changes.
type benchRound struct {
	noopElapsed  time.Duration
	noopRequests int
	raw          fanout
	manager      fanout // Manager.Broadcast over the SDK client
	lean         fanout // Manager.Broadcast over the lean client (NewFastClient)
}

func (r benchRound) noopRate() float64  { return float64(r.noopRequests) / r.noopElapsed.Seconds() }
func (r benchRound) rawRatio() float64  { return r.raw.rate() / r.noopRate() }
func (r benchRound) mgrRatio() float64  { return r.manager.rate() / r.noopRate() }
func (r benchRound) leanRatio() float64 { return r.lean.rate() / r.noopRate() }
func (r benchRound) leanToSDK() float64 { return r.lean.rate() / r.manager.rate() }

type benchResult struct {
	pid                                int
	connectElapsed                     time.Duration
	rssIdle, rssConnected, rssFinished int64
	rounds                             []benchRound
}

// median of f over the rounds.
func (r benchResult) median(f func(benchRound) float64) float64 {
	v := make([]float64, len(r.rounds))
	for i, rd := range r.rounds {
		v[i] = f(rd)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func (r benchResult) missedFloors(o benchOptions) []string {
	var failed []string
	if o.connections >= benchRSSFloorConns && r.rssConnected >= benchMaxRSSBytes {
		failed = append(failed, fmt.Sprintf("gateway RSS %s at %d connections, want < 400 MB", mb(r.rssConnected), o.connections))
	}
	if ratio := r.median(benchRound.rawRatio); ratio < benchMinRawToNoop {
		failed = append(failed, fmt.Sprintf("raw fan-out at %.2f× the no-op POST rate (median), want ≥ %.1f×", ratio, benchMinRawToNoop))
	}
	for _, rd := range r.rounds {
		if rd.raw.delivered < o.connections || rd.manager.delivered < o.connections || rd.lean.delivered < o.connections {
			failed = append(failed, "not every message was delivered")
			break
		}
	}
	return failed
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func (r benchResult) print(w io.Writer, o benchOptions) {
	fmt.Fprintf(w, "streamer bench: %d connections, %d workers, %d-byte messages, %d rounds, loopback, gateway in process %d\n",
		o.connections, o.workers, o.payload, len(r.rounds), r.pid)
	fmt.Fprintf(w, "connect        %d in %v (%.0f/s)\n", o.connections, r.connectElapsed.Round(time.Millisecond), float64(o.connections)/r.connectElapsed.Seconds())
	fmt.Fprintf(w, "gateway RSS    idle %s; holding %d connections %s (%.1f KB per connection); after the fan-outs %s\n",
		mb(r.rssIdle), o.connections, mb(r.rssConnected), float64(r.rssConnected-r.rssIdle)/1024/float64(o.connections), mb(r.rssFinished))
	fmt.Fprintf(w, "fan-out: one %d-byte message to each of %d connections; rate = delivered / (first POST → last receive); sdk = Manager over the SDK client, lean = Manager over NewFastClient (pacing unlimited)\n", o.payload, o.connections)
	for i, rd := range r.rounds {
		fmt.Fprintf(w, "round %d        no-op POST %6.0f req/s | raw %6.0f msg/s (%.2f×) p50 %v p99 %v | sdk manager %6.0f msg/s (%.2f×) p50 %v p99 %v | lean manager %6.0f msg/s (%.2f×) p50 %v p99 %v | lean/sdk %.2f×",
			i+1, rd.noopRate(), rd.raw.rate(), rd.rawRatio(), ms(rd.raw.p50), ms(rd.raw.p99),
			rd.manager.rate(), rd.mgrRatio(), ms(rd.manager.p50), ms(rd.manager.p99),
			rd.lean.rate(), rd.leanRatio(), ms(rd.lean.p50), ms(rd.lean.p99), rd.leanToSDK())
		if rd.raw.errors+rd.manager.errors+rd.lean.errors > 0 || rd.raw.delivered < o.connections || rd.manager.delivered < o.connections || rd.lean.delivered < o.connections {
			fmt.Fprintf(w, " | delivered raw %d sdk %d lean %d, POST errors raw %d sdk %d lean %d",
				rd.raw.delivered, rd.manager.delivered, rd.lean.delivered, rd.raw.errors, rd.manager.errors, rd.lean.errors)
		}
		fmt.Fprintln(w)
	}
	med := func(f func(benchRound) float64) float64 { return r.median(f) }
	dur := func(f func(benchRound) time.Duration) time.Duration {
		return time.Duration(med(func(rd benchRound) float64 { return float64(f(rd)) }))
	}
	fmt.Fprintf(w, "median         no-op POST %6.0f req/s | raw %6.0f msg/s (%.2f×) p50 %v p99 %v | sdk manager %6.0f msg/s (%.2f×) p50 %v p99 %v | lean manager %6.0f msg/s (%.2f×) p50 %v p99 %v | lean/sdk %.2f×\n",
		med(benchRound.noopRate), med(func(rd benchRound) float64 { return rd.raw.rate() }), med(benchRound.rawRatio),
		ms(dur(func(rd benchRound) time.Duration { return rd.raw.p50 })), ms(dur(func(rd benchRound) time.Duration { return rd.raw.p99 })),
		med(func(rd benchRound) float64 { return rd.manager.rate() }), med(benchRound.mgrRatio),
		ms(dur(func(rd benchRound) time.Duration { return rd.manager.p50 })), ms(dur(func(rd benchRound) time.Duration { return rd.manager.p99 })),
		med(func(rd benchRound) float64 { return rd.lean.rate() }), med(benchRound.leanRatio),
		ms(dur(func(rd benchRound) time.Duration { return rd.lean.p50 })), ms(dur(func(rd benchRound) time.Duration { return rd.lean.p99 })),
		med(benchRound.leanToSDK))
	for _, v := range r.verdicts(o) {
		fmt.Fprintf(w, "floor          %s\n", v)
	}
}

// verdicts says, floor by floor, what this run measured against it, and
// says so when the run could not measure it (fewer connections than the
// floor names).
func (r benchResult) verdicts(o benchOptions) []string {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	var v []string
	if o.connections >= benchRSSFloorConns {
		v = append(v, fmt.Sprintf("gateway RSS < 400 MB at 10,000 connections: %s (%s at %d)",
			met(r.rssConnected < benchMaxRSSBytes), mb(r.rssConnected), o.connections))
	} else {
		v = append(v, fmt.Sprintf("gateway RSS < 400 MB at 10,000 connections: not measured (this run held %d; run with --connections 10000)", o.connections))
	}
	ratio := r.median(benchRound.rawRatio)
	v = append(v, fmt.Sprintf("raw fan-out ≥ %.1f× the no-op POST rate: %s (%.2f×, median of %d rounds at %d connections)",
		benchMinRawToNoop, met(ratio >= benchMinRawToNoop), ratio, len(r.rounds), o.connections))
	all := true
	for _, rd := range r.rounds {
		all = all && rd.raw.delivered >= o.connections && rd.manager.delivered >= o.connections && rd.lean.delivered >= o.connections
	}
	v = append(v, fmt.Sprintf("every message delivered: %s", met(all)))
	return v
}

// ms rounds a latency for printing.
func ms(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// benchRun starts the gateway process, holds the connections, measures,
// and stops everything before it returns.
func benchRun(ctx context.Context, o benchOptions, stderr io.Writer) (res benchResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	began := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench %6.2fs: %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	progress("starting the gateway process")
	gw, err := startBenchGateway(ctx, stderr)
	if err != nil {
		return res, err
	}
	defer func() {
		progress("stopping the gateway process")
		err = errors.Join(err, gw.stop())
		progress("done")
	}()
	res.pid = gw.pid()
	if res.rssIdle, err = processRSS(res.pid); err != nil {
		return res, err
	}

	b := &benchClients{start: time.Now(), payload: o.payload}
	defer func() {
		progress("closing the clients")
		b.closeAll()
	}()
	progress("connecting %d clients", o.connections)
	t0 := time.Now()
	if err := b.connect(ctx, gw.wsURL, o.connections, o.dialConcurrency); err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	res.connectElapsed = time.Since(t0)
	if res.rssConnected, err = processRSS(res.pid); err != nil {
		return res, err
	}

	// The same pooled client for the baseline and the raw driver.
	tr := &http.Transport{MaxIdleConns: o.workers, MaxIdleConnsPerHost: o.workers, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	mgr, err := newBenchManager(ctx, b, gw.endpoint, o.workers, false)
	if err != nil {
		return res, err
	}
	defer mgr.close(ctx)
	lean, err := newBenchManager(ctx, b, gw.endpoint, o.workers, true)
	if err != nil {
		return res, err
	}
	defer lean.close(ctx)
	progress("warming the HTTP pools")
	noopMsg := b.message("noop")
	if err := errors.Join(
		concurrently(o.workers, func(int) error { return post(ctx, hc, gw.noopURL, noopMsg) }),
		concurrently(o.workers, func(i int) error { return get(ctx, hc, b.rawURL(gw.endpoint, i%len(b.ids))) }),
		mgr.warm(ctx, o.workers),
		lean.warm(ctx, o.workers),
	); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	for i := range o.rounds {
		var rd benchRound
		rd.noopRequests = o.connections
		progress("round %d: no-op POST baseline", i+1)
		if rd.noopElapsed, err = benchNoop(ctx, hc, gw.noopURL, o.connections, o.workers, noopMsg); err != nil {
			return res, fmt.Errorf("no-op POST: %w", err)
		}
		// The three fan-outs in an order rotated per round, so that a
		// change in the machine's load does not always hit the same one.
		drivers := []struct {
			name string
			into *fanout
			tag  string
			send func(ctx context.Context, msg []byte) int
		}{
			{"the raw poster", &rd.raw, "raw", func(ctx context.Context, msg []byte) int {
				return b.postRaw(ctx, hc, gw.endpoint, o.workers, msg)
			}},
			{"the ConnectionManager over the SDK client", &rd.manager, "mgr", mgr.broadcast},
			{"the ConnectionManager over the lean client", &rd.lean, "lean", lean.broadcast},
		}
		for k := range drivers {
			d := drivers[(k+i)%len(drivers)]
			progress("round %d: fan-out with %s", i+1, d.name)
			if *d.into, err = b.fanout(ctx, fmt.Sprintf("%s%d", d.tag, i), d.send); err != nil {
				return res, fmt.Errorf("fan-out with %s: %w", d.name, err)
			}
		}
		res.rounds = append(res.rounds, rd)
	}
	if res.rssFinished, err = processRSS(res.pid); err != nil {
		return res, err
	}
	return res, nil
}

// benchGateway is the running gateway process.
type benchGateway struct {
	cmd                      *exec.Cmd
	stdin                    io.WriteCloser
	exited                   chan error
	wsURL, endpoint, noopURL string
}

func (g *benchGateway) pid() int { return g.cmd.Process.Pid }

func startBenchGateway(ctx context.Context, stderr io.Writer) (*benchGateway, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench", benchGatewayArg)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway process: %w", err)
	}
	g := &benchGateway{cmd: cmd, stdin: stdin, exited: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), benchReadyPrefix); ok {
				ready <- l
			}
		}
		g.exited <- cmd.Wait()
	}()
	select {
	case l := <-ready:
		f := strings.Fields(l)
		if len(f) != 3 {
			g.stop()
			return nil, fmt.Errorf("gateway process printed %q", l)
		}
		g.wsURL, g.endpoint, g.noopURL = f[0], f[1], f[2]
		return g, nil
	case err := <-g.exited:
		return nil, fmt.Errorf("gateway process exited before it was ready: %v", err)
	case <-ctx.Done():
		g.stop()
		return nil, ctx.Err()
	}
}

// stop asks the gateway process to shut down (SIGTERM, and its stdin
// closes) and waits for it, killing it after 30 s.
func (g *benchGateway) stop() error {
	g.stdin.Close()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.exited:
		if err != nil {
			return fmt.Errorf("gateway process: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		return errors.New("gateway process did not stop within 30 s; killed")
	}
}

// processRSS reads VmRSS of a process from /proc, in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// benchNoop POSTs msg n times to the no-op handler with workers
// concurrent requests and returns how long it took.
func benchNoop(ctx context.Context, hc *http.Client, noopURL string, n, workers int, msg []byte) (time.Duration, error) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if post(ctx, hc, noopURL, msg) != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 0, fmt.Errorf("%d of %d POSTs failed", failed.Load(), n)
	}
	return time.Since(t0), nil
}

func post(ctx context.Context, hc *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	return drain(resp)
}

func get(ctx context.Context, hc *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	return drain(resp)
}

func drain(resp *http.Response) error {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
