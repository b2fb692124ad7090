package connection

import (
	"encoding/json"
	"fmt"
)

// MaxMessageBytes is the largest message API Gateway delivers: 128 KiB.
const MaxMessageBytes = 131072

// Encode returns the bytes Send and Broadcast put on the wire for message:
// a []byte, json.RawMessage or string as-is (never base64), anything else
// as its JSON encoding. It fails with ErrInvalidMessage when marshalling
// fails and ErrMessageTooLarge beyond MaxMessageBytes. Fakes in users'
// tests (connectiontest.Recorder) use it to behave like the Manager.
func Encode(message any) ([]byte, error) {
	var data []byte
	switch m := message.(type) {
	case []byte:
		data = m
	case json.RawMessage:
		data = m
	case string:
		data = []byte(m)
	default:
		b, err := json.Marshal(message)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
		data = b
	}
	if data == nil {
		// An empty message is valid on the wire; the SDK refuses a nil
		// Data field as missing.
		data = []byte{}
	}
	if len(data) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(data), MaxMessageBytes)
	}
	return data, nil
}
