package channel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/streamer-go/streamer/pkg/protocol"
)

// pack keeps order, fills frames up to MaxFrameBytes, sends a lone or
// oversize message as itself, and spells a batch as protocol.NewBatch
// encodes.
func TestPack(t *testing.T) {
	msg := func(n, size int) queued {
		return queued{data: fmt.Appendf(nil, `{"n":%d,"pad":%q}`, n, strings.Repeat("x", size))}
	}
	if got := pack([]queued{msg(0, 10)}); len(got) != 1 || got[0].n != 1 || !bytes.Equal(got[0].data, msg(0, 10).data) {
		t.Fatalf("one message: %v", got)
	}
	var msgs []queued
	for n := range 300 {
		size := 300
		if n == 150 {
			size = 40000 // over a frame: alone
		}
		msgs = append(msgs, msg(n, size))
	}
	frames := pack(msgs)
	next := 0
	for _, fr := range frames {
		f, first := fr.data, next
		var b protocol.Batch
		if err := json.Unmarshal(f, &b); err != nil {
			t.Fatal(err)
		}
		if b.Type != protocol.TypeBatch {
			if !bytes.Equal(f, msgs[next].data) {
				t.Fatalf("frame %s is not message %d", f, next)
			}
			next++
			if fr.n != 1 {
				t.Fatalf("frame of one message counts %d", fr.n)
			}
			continue
		}
		if len(f) > MaxFrameBytes {
			t.Errorf("batch of %d bytes", len(f))
		}
		want, err := json.Marshal(protocol.NewBatch(b.Messages))
		if err != nil || !bytes.Equal(f, want) {
			t.Errorf("batch spelled %.80s, want %.80s", f, want)
		}
		for _, m := range b.Messages {
			if !bytes.Equal(m, msgs[next].data) {
				t.Fatalf("batch holds %.40s where message %d belongs", m, next)
			}
			next++
		}
		if fr.n != next-first {
			t.Fatalf("batch of %d messages counts %d", next-first, fr.n)
		}
	}
	if next != len(msgs) {
		t.Fatalf("frames hold %d of %d messages", next, len(msgs))
	}
	// 299 messages of ~310 bytes in 32 KiB frames, and the big one alone.
	if len(frames) > 5 {
		t.Errorf("%d frames", len(frames))
	}
}
