package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestBucketsPartitionTheValues(t *testing.T) {
	// Every value lands in the bucket whose bounds contain it, and buckets
	// are contiguous and ordered.
	var next uint64
	for i := 0; i < numBuckets; i++ {
		lower, width := bounds(i)
		if lower != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lower, next)
		}
		if bucketOf(lower) != i || bucketOf(lower+width-1) != i {
			t.Fatalf("bucket %d [%d, %d] does not map back to itself", i, lower, lower+width-1)
		}
		next = lower + width
	}
	if next != 0 { // wrapped around: the buckets cover all of uint64
		t.Fatalf("buckets end at %d, want to cover every uint64", next)
	}
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Fatalf("max value in bucket %d", got)
	}
}

func TestQuantilesWithinThreePercent(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(3, 4))
	samples := make([]int64, 100000)
	for i := range samples {
		// Log-normal-ish latencies from 50 µs to several seconds.
		samples[i] = int64(math.Exp(r.NormFloat64()*1.5 + 8))
		h.Record(samples[i])
	}
	slices.Sort(samples)
	s := h.Snapshot()
	if s.Count != uint64(len(samples)) {
		t.Fatalf("Count = %d", s.Count)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := float64(samples[int(math.Ceil(q*float64(len(samples))))-1])
		got := s.Quantile(q)
		if math.Abs(got-exact)/exact > 0.035 {
			t.Errorf("q%.3f = %.0f, exact %.0f", q, got, exact)
		}
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 10; v++ {
		h.Record(v)
	}
	h.Record(-5) // counts as zero
	s := h.Snapshot()
	if got := s.Quantile(0); got != 0 {
		t.Errorf("min = %v, want 0", got)
	}
	if got := s.Quantile(0.5); got != 5 {
		t.Errorf("median of 0..10 = %v, want 5", got)
	}
	if got := s.Quantile(1); got != 10 {
		t.Errorf("max = %v, want 10", got)
	}
	if s.Sum != 55 {
		t.Errorf("Sum = %d, want 55", s.Sum)
	}
	var empty Histogram
	if got := empty.Snapshot().Quantile(0.99); got != 0 {
		t.Errorf("empty quantile = %v", got)
	}
}

func TestConcurrentRecordLosesNothing(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 10000; i++ {
				h.Record(int64(i))
			}
		})
	}
	wg.Wait()
	if s := h.Snapshot(); s.Count != 80000 {
		t.Fatalf("Count = %d, want 80000", s.Count)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		v := int64(1)
		for pb.Next() {
			h.Record(v)
			v = v*7 + 13&0xfffff
		}
	})
}

func BenchmarkSnapshotQuantile(b *testing.B) {
	var h Histogram
	for i := 0; i < 10000; i++ {
		h.Record(int64(i * 37))
	}
	b.ResetTimer()
	for b.Loop() {
		s := h.Snapshot()
		_ = s.Quantile(0.99)
	}
}
