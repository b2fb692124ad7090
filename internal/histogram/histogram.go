// Package histogram is a streaming, fixed-memory latency histogram with
// log-linear buckets (16 per power of two, so any quantile it reports is
// within about 3 % of the true value).
//
// Recording is one atomic add on the value's bucket plus one on the sum:
// O(1), no lock, so concurrent senders never queue behind each other. A
// snapshot copies the buckets and answers quantiles by one linear scan of
// a fixed number of buckets, whatever the number of samples.
//
// Hand-written because the alternatives do not fit: sorting recent samples
// is O(n log n) under a lock, so every snapshot would stall the senders, and
// prometheus' own histogram only answers bucket counts, not percentiles.
package histogram

import (
	"math/bits"
	"sync/atomic"
)

const (
	subBits    = 4
	subBuckets = 1 << subBits // buckets per power of two
	// numBuckets covers every uint64: values below subBuckets get one
	// bucket each, then 16 buckets for each of the remaining exponents.
	numBuckets = (64 - subBits + 1) * subBuckets
)

// Histogram counts non-negative integer samples (the caller picks the unit,
// e.g. microseconds). The zero value is ready to use and safe for
// concurrent use.
type Histogram struct {
	buckets [numBuckets]atomic.Uint64
	sum     atomic.Uint64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	exp := bits.Len64(v) - 1 // >= subBits
	mantissa := (v >> (exp - subBits)) & (subBuckets - 1)
	return (exp-subBits+1)*subBuckets + int(mantissa)
}

// bounds returns the smallest value of bucket i and the bucket's width.
func bounds(i int) (lower, width uint64) {
	if i < subBuckets {
		return uint64(i), 1
	}
	exp := i/subBuckets + subBits - 1
	m := uint64(i % subBuckets)
	width = 1 << (exp - subBits)
	return (subBuckets + m) * width, width
}

// Record adds one sample. Negative values count as zero.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.buckets[bucketOf(uint64(v))].Add(1)
	h.sum.Add(uint64(v))
}

// Snapshot is a point-in-time copy of a Histogram.
type Snapshot struct {
	counts [numBuckets]uint64
	// Count is the number of samples.
	Count uint64
	// Sum is the sum of all samples.
	Sum uint64
}

// Snapshot copies the current counts. Samples recorded while it runs may or
// may not be included.
func (h *Histogram) Snapshot() *Snapshot {
	s := &Snapshot{}
	for i := range h.buckets {
		c := h.buckets[i].Load()
		s.counts[i] = c
		s.Count += c
	}
	s.Sum = h.sum.Load()
	return s
}

// Quantile returns an estimate of the q-quantile (0 <= q <= 1): the
// midpoint of the bucket holding the sample of that rank. It returns 0 when
// there are no samples.
func (s *Snapshot) Quantile(q float64) float64 {
	if s.Count == 0 {
		return 0
	}
	if q < 0 {
		q = 0
	}
	if q > 1 {
		q = 1
	}
	// rank is 1-based: the smallest sample has rank 1.
	rank := uint64(q*float64(s.Count) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > s.Count {
		rank = s.Count
	}
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			lower, width := bounds(i)
			return float64(lower) + float64(width-1)/2
		}
	}
	return 0 // unreachable: the counts add up to Count
}
