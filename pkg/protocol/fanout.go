package protocol

// The channel fan-out's own wire: batch frames and the OVERLOADED refusal.

import "encoding/json"

// TypeBatch is a server message holding several channel messages
// (publications, joins and leaves) delivered in one @connections post.
const TypeBatch MessageType = "batch"

// CodeOverloaded refuses a publish because the channel's fan-out cannot
// keep up; nothing was stored. The error's RetryAfterMs (retry_after_ms)
// says when to try again.
const CodeOverloaded ErrorCode = "OVERLOADED"

// Batch carries channel messages in the order the client is to handle
// them, as if each had arrived on its own. The server sends one when a
// subscriber has several pending; a batch fits in one 32 KiB WebSocket
// frame, and a single message too large for that travels on its own.
type Batch struct {
	Version  int               `json:"v"`
	Type     MessageType       `json:"type"`
	Messages []json.RawMessage `json:"messages"`
}

// NewBatch returns a batch of encoded messages.
func NewBatch(messages []json.RawMessage) Batch {
	return Batch{Version: Version, Type: TypeBatch, Messages: messages}
}
