package lambdart

import (
	"testing"
	"time"
)

// TestNeedProcess: a backlog of short invocations drains through the
// warm processes; one that would take them longer than a cold start, or
// processes stuck in invocations longer than a cold start, starts
// another; Concurrency caps the pool and the CPUs the cold starts at
// once.
func TestNeedProcess(t *testing.T) {
	now := time.Now()
	pool := func(waiting, concurrency int, runs int, avgRun, avgCold time.Duration, procs ...*process) *Function {
		f := &Function{cfg: Config{Concurrency: concurrency}, procs: map[*process]bool{}, waiting: waiting, runs: runs, avgRun: avgRun, avgCold: avgCold}
		for _, p := range procs {
			f.procs[p] = true
		}
		return f
	}
	busy := func(since time.Duration) *process { return &process{busy: true, ready: true, takenAt: now.Add(-since)} }
	idle := func() *process { return &process{ready: true} }
	starting := func() *process { return &process{} }
	withDebt := func(f *Function, d time.Duration) *Function { f.debt, f.debtAt = d, now; return f }
	busies := func(n int) []*process {
		out := make([]*process, n)
		for i := range out {
			out[i] = busy(0)
		}
		return out
	}
	starts := func(n int) []*process {
		out := make([]*process, n)
		for i := range out {
			out[i] = starting()
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		f     *Function
		start bool
	}{
		{"nothing waits", pool(0, 8, 10, time.Millisecond, 100*time.Millisecond, busy(0)), false},
		{"an idle process takes it", pool(1, 8, 10, time.Millisecond, 100*time.Millisecond, idle()), false},
		{"no process yet", pool(1, 8, 0, 0, 0), true},
		{"no measurement yet", pool(2, 8, 0, 0, 0, busy(0)), true},
		{"only a cold start measured, short", pool(2, 8, 0, time.Millisecond, 100*time.Millisecond, idle(), busy(0)), false},
		{"short backlog drains", pool(50, 8, 10, time.Millisecond, 100*time.Millisecond, busy(0), busy(0)), false},
		{"a backlog below shortPool grows", pool(500, 64, 10, time.Millisecond, 100*time.Millisecond, busy(0)), true},
		{"a short backlog stops at shortPool", pool(200, 64, 10, time.Millisecond, 100*time.Millisecond, busies(shortPool)...), false},
		{"a large backlog of short invocations stops at shortPool", pool(5000, 64, 10, time.Millisecond, 100*time.Millisecond, busies(shortPool)...), false},
		{"waits adding up stop at shortPool", withDebt(pool(20, 64, 10, time.Millisecond, 100*time.Millisecond, busies(shortPool)...), time.Second), false},
		{"waits adding up grow a pool below shortPool", withDebt(pool(20, 64, 10, time.Millisecond, 100*time.Millisecond, busy(0)), time.Second), true},
		{"slow invocations grow past shortPool", pool(5000, 64, 10, time.Second, 100*time.Millisecond, busies(shortPool)...), true},
		{"a starting process counts as free", pool(1, 8, 10, time.Second, 100*time.Millisecond, busy(0), starting()), false},
		{"cold starts at once are bounded", pool(maxColdStarts+5, 64, 0, 0, 0, starts(maxColdStarts)...), false},
		{"a burst before any measurement starts processes", pool(50, 64, 0, 0, 0, busy(0)), true},
		{"stuck processes do not count", pool(1, 8, 10, time.Millisecond, 100*time.Millisecond, busy(time.Second)), true},
		{"at Concurrency", pool(500, 2, 10, time.Second, time.Millisecond, busy(0), busy(0)), false},
	} {
		f := tc.f
		f.mu.Lock()
		start, recheck := f.needProcessLocked()
		f.mu.Unlock()
		if start != tc.start {
			t.Errorf("%s: start %v, want %v", tc.name, start, tc.start)
		}
		if tc.name == "short backlog drains" && recheck <= 0 {
			t.Errorf("%s: no recheck while invocations wait", tc.name)
		}
	}
}

func TestConcurrencyFor(t *testing.T) {
	for mem, want := range map[uint64]int{0: 16, 1 << 30: 4, 16 << 30: 32, 24 << 30: 48, 256 << 30: 64} {
		if got := concurrencyFor(mem); got != want {
			t.Errorf("concurrencyFor(%d GiB) = %d, want %d", mem>>30, got, want)
		}
	}
}
