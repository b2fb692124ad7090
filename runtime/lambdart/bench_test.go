package lambdart_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// benchRuntimes are the functions the benchmarks start: the Go
// provided.al2023 test function and the Node.js and Python shims with
// trivial handlers.
func benchConfig(b *testing.B, runtime string) lambdart.Config {
	b.Helper()
	cfg := lambdart.Config{Name: "bench", Runtime: runtime, Timeout: 30 * time.Second, Env: []string{"PATH=" + os.Getenv("PATH")}}
	switch runtime {
	case "provided.al2023":
		cfg.Command, cfg.Dir, cfg.Handler = []string{goBootstrap}, filepath.Dir(goBootstrap), "bootstrap"
		return cfg
	case "nodejs20.x":
		cfg.Handler = "app.handler"
		cfg.Dir, _ = filepath.Abs("testdata/node")
	case "python3.12":
		cfg.Handler = "app.handler"
		cfg.Dir, _ = filepath.Abs("testdata/python")
	}
	shims, err := lambdart.Shims(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if cfg.Command, err = lambdart.Command(runtime, cfg.Dir, shims); err != nil {
		b.Skip(err)
	}
	return cfg
}

var benchRuntimes = []string{"provided.al2023", "nodejs20.x", "python3.12"}

// payloadFor is an event each test handler answers.
func payloadFor(runtime string) []byte {
	if runtime == "provided.al2023" {
		return []byte(`{"op":"echo"}`)
	}
	return []byte(`{"n":1}`)
}

// BenchmarkColdStart measures a cold start to the first answer: the
// process starts, initialises its runtime and handler, polls the Runtime
// API and answers one invocation.
//
//	go test -run '^$' -bench ColdStart -benchtime 20x ./runtime/lambdart/
func BenchmarkColdStart(b *testing.B) {
	for _, rt := range benchRuntimes {
		b.Run(rt, func(b *testing.B) {
			cfg := benchConfig(b, rt)
			payload := payloadFor(rt)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				f, err := lambdart.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				f.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkWarmInvoke measures one invocation of a warm process through
// the Runtime API, and reports the CPU time the process spends on each
// (fn-cpu-µs/op, with 1,000 invocations or more) and its resident memory.
//
//	go test -run '^$' -bench WarmInvoke -benchtime 2000x ./runtime/lambdart/
func BenchmarkWarmInvoke(b *testing.B) {
	for _, rt := range benchRuntimes {
		b.Run(rt, func(b *testing.B) {
			cfg := benchConfig(b, rt)
			cfg.Concurrency = 1
			f, err := lambdart.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			payload := payloadFor(rt)
			ctx := context.Background()
			if _, err := f.Invoke(ctx, payload); err != nil {
				b.Fatal(err)
			}
			pids := f.PIDs()
			cpu := cpuTicks(pids)
			b.ResetTimer()
			for range b.N {
				if _, err := f.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if ticks := cpuTicks(pids) - cpu; cpu >= 0 && b.N >= 1000 {
				// A clock tick is 10 ms: over fewer invocations the
				// figure is mostly rounding.
				b.ReportMetric(float64(ticks)*10e3/float64(b.N), "fn-cpu-µs/op")
			}
			for _, pid := range pids {
				if kb := rssKB(pid); kb > 0 {
					b.ReportMetric(float64(kb)/1024, "rss-MB")
				}
			}
		})
	}
}

// rssKB is a process's resident set (VmRSS) from /proc, 0 where there is
// no /proc.
func rssKB(pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// cpuTicks is the CPU time (user and system, in 10 ms clock ticks) the
// processes pids have spent, from /proc; -1 where there is no /proc.
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return -1
		}
		// The fields after the command name, which is in parentheses.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return -1
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		total += utime + stime
	}
	return total
}

// BenchmarkBurst measures a burst of 1,000 concurrent invocations of a
// short handler on a warm process (a thousand $disconnects at once): the
// pool decides how many processes to add while the backlog drains.
//
//	go test -run '^$' -bench Burst -benchtime 3x ./runtime/lambdart/
func BenchmarkBurst(b *testing.B) {
	for _, rt := range []string{"provided.al2023", "nodejs20.x"} {
		for _, conc := range []int{4, 48} {
			b.Run(rt+"/concurrency="+strconv.Itoa(conc), func(b *testing.B) {
				cfg := benchConfig(b, rt)
				cfg.Concurrency = conc
				f, err := lambdart.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				ctx := context.Background()
				if _, err := f.Invoke(ctx, payloadFor(rt)); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					var wg sync.WaitGroup
					for range 1000 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if _, err := f.Invoke(ctx, payloadFor(rt)); err != nil {
								b.Error(err)
							}
						}()
					}
					wg.Wait()
				}
				b.ReportMetric(float64(f.Processes()), "processes")
			})
		}
	}
}
