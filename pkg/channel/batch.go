package channel

import (
	"strconv"

	"github.com/streamer-go/streamer/pkg/protocol"
)

// MaxFrameBytes is the most a batch holds: API Gateway's WebSocket frame
// size, so a batch travels as one frame. A single message larger than
// this (up to the 128 KiB message limit) is sent on its own.
const MaxFrameBytes = 32 * 1024

// batchHead and batchTail enclose the messages of a batch frame; they
// spell protocol.NewBatch's encoding (pinned by a test).
var (
	batchHead = []byte(`{"v":` + strconv.Itoa(protocol.Version) + `,"type":"` + string(protocol.TypeBatch) + `","messages":[`)
	batchTail = []byte(`]}`)
)

// frame is one post of a round: data holds the next n queued messages.
type frame struct {
	data []byte
	n    int
}

// pack groups encoded messages, in order, into the fewest frames of at
// most MaxFrameBytes: a group of one is the message itself, a larger
// group a batch.
func pack(msgs []queued) []frame {
	var (
		frames []frame
		group  [][]byte
		size   = len(batchHead) + len(batchTail)
	)
	flush := func() {
		switch len(group) {
		case 0:
		case 1:
			frames = append(frames, frame{data: group[0], n: 1})
		default:
			b := make([]byte, 0, size)
			b = append(b, batchHead...)
			for i, m := range group {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, m...)
			}
			frames = append(frames, frame{data: append(b, batchTail...), n: len(group)})
		}
		group = group[:0]
		size = len(batchHead) + len(batchTail)
	}
	for _, m := range msgs {
		if len(group) > 0 && size+len(m.data)+1 > MaxFrameBytes {
			flush()
		}
		group = append(group, m.data)
		size += len(m.data) + 1
	}
	flush()
	return frames
}
