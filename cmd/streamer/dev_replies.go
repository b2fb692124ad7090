package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/streamer-go/streamer/pkg/streamer"
)

// replyOptions are `streamer dev`'s flags about requests and their replies.
type replyOptions struct {
	keyFile string
	key     []byte // read from keyFile by load
}

// minRequestIDKey is the shortest key --request-id-key-file accepts.
const minRequestIDKey = 16

// replyFlags registers the flags on fs.
func replyFlags(fs *flag.FlagSet, o *replyOptions) {
	fs.StringVar(&o.keyFile, "request-id-key-file", "",
		"file holding the secret (at least 16 bytes) that keys async request ids; processes sharing a store (--dynamodb-endpoint) need the same one for a resubmission to reach the same request. Default: a random key per process")
}

// load reads the key file, if any.
func (o *replyOptions) load() error {
	if o.keyFile == "" {
		return nil
	}
	b, err := os.ReadFile(o.keyFile)
	if err != nil {
		return fmt.Errorf("--request-id-key-file: %w", err)
	}
	o.key = bytes.TrimSpace(b)
	if len(o.key) < minRequestIDKey {
		return fmt.Errorf("--request-id-key-file: the key is %d bytes, want at least %d", len(o.key), minRequestIDKey)
	}
	return nil
}

// devReplyEndpoint is the management endpoint a message's event names in
// `streamer dev`: the gateway serves plain http on its address.
func devReplyEndpoint(m streamer.Message) string {
	if m.DomainName == "" {
		return ""
	}
	return "http://" + m.DomainName + "/" + m.Stage
}
