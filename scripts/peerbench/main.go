// Command peerbench measures a chat app (AWS's simple-websockets-chat-app
// shape: $connect stores the connection in DynamoDB, $disconnect deletes
// it, sendmessage posts to every stored connection) served by a local
// WebSocket runtime, so `streamer dev --template` and a peer such as
// serverless-offline can be compared on the same app, in interleaved
// rounds. Each round starts the server fresh and measures, in order:
//
//   - cold: from launching the server's command to the first $connect
//     answered (the server's start and the $connect function's cold
//     start);
//   - connect: -connections clients connecting in batches of -batch;
//   - connect cpu: the CPU time the server and all its descendants spent
//     on those connects, per connect;
//   - pss: the PSS of the server and all its descendants while the
//     clients stay connected and idle, -settle after they connected;
//   - drain: the clients leave; time until the table is empty (every
//     $disconnect ran);
//   - fanout: -fanout clients connect, one sends a message; the median
//     over 5 sends of the time until all received it;
//   - fanout cpu: the CPU time (user and system) the server and all its
//     descendants spent per send over those 5 sends, a figure the load
//     of other processes on the machine does not change much.
//
// It prints one line per round and server, then the medians; with
// -batch-times, also when each batch of the connect phase completed. With
// serverless-offline prepared by offline/setup.sh in a scratch folder:
//
//	sh scripts/peerbench/offline/setup.sh /tmp/peer
//	go build -o /tmp/streamer ./cmd/streamer
//	./scripts/with-dynalite.sh sh -c 'go run ./scripts/peerbench -ddb "$STREAMER_DYNAMODB_ENDPOINT" -rounds 5 \
//	  -server "streamer=ws://127.0.0.1:{port}/Prod=exec /tmp/streamer dev --template cmd/streamer/testdata/chat/template.yaml --addr 127.0.0.1:{port} --dynamodb-endpoint {ddb} --parameter-overrides TableName={table} --no-watch --function-idle-timeout 10s --log-level error" \
//	  -server "offline=ws://127.0.0.1:{port}=exec /tmp/peer/run.sh {port} {table} {ddb}"'
//
// {port}, {table} and {ddb} are filled in per round; each command runs
// with its own process group and is stopped (SIGINT, then SIGKILL) at the
// end of its round. Commands run through sh -c.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"
)

type server struct{ name, url, cmd string }

type serverList []server

func (l *serverList) String() string { return fmt.Sprint(*l) }

func (l *serverList) Set(v string) error {
	name, rest, ok1 := strings.Cut(v, "=")
	url, cmd, ok2 := strings.Cut(rest, "=")
	if !ok1 || !ok2 {
		return errors.New("want NAME=URL=COMMAND")
	}
	*l = append(*l, server{name, url, cmd})
	return nil
}

type result struct {
	cold, connect, drain, fanout time.Duration
	connectCPU, fanoutCPU        time.Duration
	pss                          int64 // KiB
}

func main() {
	var servers serverList
	ddb := flag.String("ddb", "", "DynamoDB endpoint (dynalite)")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	conns := flag.Int("connections", 1000, "clients for connect, PSS and drain")
	batch := flag.Int("batch", 50, "clients connecting at once")
	fanout := flag.Int("fanout", 100, "clients for the fan-out")
	settle := flag.Duration("settle", 15*time.Second, "wait after connecting before PSS (longer than the servers' idle reap)")
	flag.BoolVar(&batchTimes, "batch-times", false, "print when each batch of the connect phase completed")
	flag.BoolVar(&cpuByProcess, "cpu-by-process", false, "print the connect and drain phases' CPU time by process, and the machine's idle time")
	flag.Var(&servers, "server", "NAME=URL=COMMAND (repeatable)")
	flag.Parse()
	if *ddb == "" || len(servers) == 0 {
		fmt.Fprintln(os.Stderr, "peerbench: -ddb and -server are required")
		os.Exit(2)
	}
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: ddb,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	all := map[string][]result{}
	for r := range *rounds {
		for _, s := range servers {
			res, err := round(client, *ddb, s, r, *conns, *batch, *fanout, *settle)
			if err != nil {
				// A round that fails is reported and left out of the
				// medians; the others still compare.
				fmt.Printf("round %d %-10s failed: %v\n", r, s.name, err)
				continue
			}
			fmt.Printf("round %d %-10s cold %7.1f ms  connect %6.2f s  connect cpu %5.2f ms  pss %6.1f MiB  drain %6.2f s  fanout %6.1f ms  fanout cpu %6.1f ms\n",
				r, s.name, ms(res.cold), res.connect.Seconds(), ms(res.connectCPU), float64(res.pss)/1024, res.drain.Seconds(), ms(res.fanout), ms(res.fanoutCPU))
			all[s.name] = append(all[s.name], res)
		}
	}
	fmt.Println("medians:")
	for _, s := range servers {
		rs := all[s.name]
		if len(rs) == 0 {
			fmt.Printf("%-10s no round completed\n", s.name)
			continue
		}
		med := func(f func(result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		fmt.Printf("%-10s cold %7.1f ms  connect %6.2f s  connect cpu %5.2f ms  pss %6.1f MiB  drain %6.2f s  fanout %6.1f ms  fanout cpu %6.1f ms\n", s.name,
			med(func(r result) float64 { return ms(r.cold) }), med(func(r result) float64 { return r.connect.Seconds() }),
			med(func(r result) float64 { return ms(r.connectCPU) }),
			med(func(r result) float64 { return float64(r.pss) / 1024 }), med(func(r result) float64 { return r.drain.Seconds() }),
			med(func(r result) float64 { return ms(r.fanout) }), med(func(r result) float64 { return ms(r.fanoutCPU) }))
	}
}

// batchTimes prints the connect phase batch by batch (-batch-times).
var batchTimes bool

// cpuByProcess prints the connect and drain phases' CPU time process by
// process (-cpu-by-process).
var cpuByProcess bool

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round(client *dynamodb.Client, ddb string, s server, r, conns, batch, fanout int, settle time.Duration) (res result, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	port, err := freePort()
	if err != nil {
		return res, err
	}
	table := fmt.Sprintf("peerbench_%s_%d_%d", s.name, r, time.Now().UnixNano()%1e6)
	defer client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	fill := strings.NewReplacer("{port}", strconv.Itoa(port), "{table}", table, "{ddb}", ddb)
	url := fill.Replace(s.url)
	cmd := exec.Command("sh", "-c", fill.Replace(s.cmd))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.CreateTemp("", "peerbench-"+s.name+"-*.log")
	if err != nil {
		return res, err
	}
	defer os.Remove(logf.Name())
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer stop(cmd)
	if err := waitPort(ctx, port); err != nil {
		out, _ := os.ReadFile(logf.Name())
		return res, fmt.Errorf("%w\n%s", err, out)
	}
	// A server that creates the template's tables has made it by now.
	if _, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
		var inUse *types.ResourceInUseException
		if err := createTable(ctx, client, table); err != nil && !errors.As(err, &inUse) {
			return res, err
		}
	}

	first, err := dial(ctx, url)
	if err != nil {
		out, _ := os.ReadFile(logf.Name())
		return res, fmt.Errorf("first connect: %w\n%s", err, out)
	}
	res.cold = time.Since(launched)
	first.CloseNow()
	if err := waitCount(ctx, client, table, 0); err != nil {
		return res, err
	}

	cpu := treeCPU(cmd.Process.Pid)
	machine := machineCPU()
	start := time.Now()
	clients, err := connect(ctx, url, conns, batch)
	if err != nil {
		out, _ := os.ReadFile(logf.Name())
		return res, fmt.Errorf("%w\nserver output:\n%s", err, tail(string(out), 30))
	}
	res.connect = time.Since(start)
	end := treeCPU(cmd.Process.Pid)
	res.connectCPU = cpuSince(cpu, end) / time.Duration(conns)
	if cpuByProcess {
		printPhaseCPU(s.name, "connect", machine, cpu, end)
	}
	if err := waitCount(ctx, client, table, conns); err != nil {
		return res, err
	}
	time.Sleep(settle)
	res.pss = treePSS(cmd.Process.Pid)

	// Everyone leaves at once; a close handshake waits for the server's
	// answer, so the closes run side by side.
	start = time.Now()
	cpu, machine = treeCPU(cmd.Process.Pid), machineCPU()
	var closing sync.WaitGroup
	for _, c := range clients {
		closing.Add(1)
		go func() {
			defer closing.Done()
			c.Close(websocket.StatusNormalClosure, "")
		}()
	}
	closing.Wait()
	if err := waitCount(ctx, client, table, 0); err != nil {
		return res, err
	}
	res.drain = time.Since(start)
	if cpuByProcess {
		printPhaseCPU(s.name, "drain", machine, cpu, treeCPU(cmd.Process.Pid))
	}

	clients, err = connect(ctx, url, fanout, batch)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, c := range clients {
			c.CloseNow()
		}
	}()
	if err := waitCount(ctx, client, table, fanout); err != nil {
		return res, err
	}
	var times []time.Duration
	for i := range 6 {
		if i == 1 {
			cpu = treeCPU(cmd.Process.Pid)
		}
		msg := fmt.Sprintf("hello %d", i)
		start := time.Now()
		if err := clients[0].Write(ctx, websocket.MessageText, []byte(`{"action":"sendmessage","data":"`+msg+`"}`)); err != nil {
			return res, err
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(clients))
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				_, b, err := c.Read(rctx)
				if err == nil && string(b) != msg {
					err = fmt.Errorf("got %q, want %q", b, msg)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return res, fmt.Errorf("fan-out: %w", err)
		}
		if i > 0 { // the first send warms sendmessage
			times = append(times, time.Since(start))
		}
	}
	res.fanoutCPU = cpuSince(cpu, treeCPU(cmd.Process.Pid)) / time.Duration(len(times))
	slices.Sort(times)
	res.fanout = times[len(times)/2]
	return res, nil
}

func dial(ctx context.Context, url string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, nil)
	return c, err
}

func connect(ctx context.Context, url string, n, batch int) ([]*websocket.Conn, error) {
	out := make([]*websocket.Conn, 0, n)
	start := time.Now()
	var done []string
	defer func() {
		if batchTimes && len(done) > 1 {
			fmt.Printf("  batches done at (ms): %s\n", strings.Join(done, " "))
		}
	}()
	for len(out) < n {
		k := min(batch, n-len(out))
		got := make([]*websocket.Conn, k)
		errs := make([]error, k)
		var wg sync.WaitGroup
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = dial(ctx, url)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		done = append(done, strconv.FormatInt(time.Since(start).Milliseconds(), 10))
		out = append(out, got...)
	}
	return out, nil
}

func createTable(ctx context.Context, c *dynamodb.Client, name string) error {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("connectionId"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("connectionId"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	return err
}

// waitCount polls the table until it holds n items, for a minute at most.
func waitCount(ctx context.Context, c *dynamodb.Client, table string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount, ConsistentRead: aws.Bool(true)})
		if err == nil && int(out.Count) == n {
			return nil
		}
		select {
		case <-ctx.Done():
			got := -1
			if out != nil {
				got = int(out.Count)
			}
			return fmt.Errorf("table %s: %d items, want %d: %w (%v)", table, got, n, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(ctx context.Context, port int) error {
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("port %d never opened: %w", port, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func stop(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	// Function processes have process groups of their own; they die with
	// their parent (PDEATHSIG) or here.
	for _, pid := range descendants(cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// descendants lists pid's child processes, recursively, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		p, _ := strconv.Atoi(strings.Fields(s)[0])
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// treePSS sums the Pss of pid and its descendants, in KiB.
func treePSS(pid int) int64 {
	var total int64
	for _, p := range append([]int{pid}, descendants(pid)...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb
			}
		}
	}
	return total
}

// treeCPU is the CPU time (user and system, in clock ticks) that pid and
// each of its descendants has spent so far, from /proc/PID/stat.
func treeCPU(pid int) map[int]int64 {
	ticks := map[int]int64{}
	for _, p := range append([]int{pid}, descendants(pid)...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks[p] = utime + stime
	}
	return ticks
}

// cpuSince is the CPU time the processes of end spent since start (a
// process that started in between counts whole; one that exited in
// between is not counted). A clock tick is 10 ms.
func cpuSince(start, end map[int]int64) time.Duration {
	var ticks int64
	for p, t := range end {
		ticks += t - start[p]
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// machineTicks is the machine's CPU time from /proc/stat: busy (all but
// idle and iowait) and idle, in clock ticks.
type machineTicks struct{ busy, idle int64 }

func machineCPU() machineTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var t machineTicks
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i == 3 || i == 4 {
			t.idle += v
		} else if i < 8 {
			t.busy += v
		}
	}
	return t
}

// since is the busy and idle CPU time of the machine between start and t.
func (t machineTicks) since(start machineTicks) (busy, idle time.Duration) {
	return time.Duration(t.busy-start.busy) * 10 * time.Millisecond, time.Duration(t.idle-start.idle) * 10 * time.Millisecond
}

// printPhaseCPU prints the machine's busy and idle time since machine,
// and the CPU time each process of end spent since start with its command
// line, to show where a phase's CPU goes.
func printPhaseCPU(name, phase string, machine machineTicks, start, end map[int]int64) {
	busy, idle := machineCPU().since(machine)
	fmt.Printf("  %-10s %s: machine busy %5d ms idle %5d ms\n", name, phase, busy.Milliseconds(), idle.Milliseconds())
	pids := make([]int, 0, len(end))
	for p := range end {
		pids = append(pids, p)
	}
	slices.Sort(pids)
	for _, p := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		args := strings.Fields(strings.ReplaceAll(string(cmdline), "\x00", " "))
		fmt.Printf("  %-10s pid %-7d cpu %5d ms  %s\n", name, p, (end[p]-start[p])*10, strings.Join(args[:min(len(args), 3)], " "))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
