package protocol

import (
	"encoding/json"
	"strings"
)

// Channel message types. TypePresence names both the client's request and
// the server's answer.
const (
	// Client → server.
	TypeSubscribe   MessageType = "subscribe"
	TypeUnsubscribe MessageType = "unsubscribe"
	TypePublish     MessageType = "publish"
	TypePresence    MessageType = "presence"
	// Server → client.
	TypeSubscribed   MessageType = "subscribed"
	TypeUnsubscribed MessageType = "unsubscribed"
	TypePublication  MessageType = "publication"
	TypeJoin         MessageType = "join"
	TypeLeave        MessageType = "leave"
)

// MaxChannelLength bounds a channel name in bytes.
const MaxChannelLength = 200

// channelChars are the bytes a channel name may hold besides ASCII letters
// and digits. '#' is reserved: stores join a tenant and a name with it, and
// a name without '#' keeps that join unambiguous. ':' separates the
// namespace ("chat:room1" is in namespace "chat").
const channelChars = "_-.:@=,/+~!"

// Since is the position a subscribing client last saw on a channel:
// {"offset":17,"epoch":"..."}. Offset is signed on the wire so that a
// negative one is refused with a clear reason rather than a decoding error.
type Since struct {
	Offset int64  `json:"offset"`
	Epoch  string `json:"epoch"`
}

// ClientInfo names who caused a publication, join or leave. ConnectionID is
// set on join and leave (so they match presence members), never on
// publications.
type ClientInfo struct {
	UserID       string `json:"user_id"`
	ConnectionID string `json:"connection_id,omitempty"`
}

// Member is one subscriber listed by a presence answer.
type Member struct {
	UserID       string `json:"user_id"`
	ConnectionID string `json:"connection_id"`
}

// Subscribed answers subscribe. Offset and Epoch are the channel's
// position the client is now at; with since, Publications holds the missed
// publications in offset order and Recovered says whether they are all of
// them (false: the client must reload its state).
type Subscribed struct {
	Version      int           `json:"v"`
	Type         MessageType   `json:"type"`
	RequestID    string        `json:"request_id"`
	Channel      string        `json:"channel"`
	Offset       uint64        `json:"offset"`
	Epoch        string        `json:"epoch"`
	Recovered    bool          `json:"recovered"`
	Publications []Publication `json:"publications"`
}

// Unsubscribed answers unsubscribe. RequestID is empty when the server
// ended the subscription on its own.
type Unsubscribed struct {
	Version   int         `json:"v"`
	Type      MessageType `json:"type"`
	RequestID string      `json:"request_id,omitempty"`
	Channel   string      `json:"channel"`
}

// Publication is one message published on a channel. Info is absent when
// the server published it.
type Publication struct {
	Version int             `json:"v"`
	Type    MessageType     `json:"type"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
	Data    json.RawMessage `json:"data"`
	Info    *ClientInfo     `json:"info,omitempty"`
}

// Presence answers presence with the channel's live subscribers.
type Presence struct {
	Version   int         `json:"v"`
	Type      MessageType `json:"type"`
	RequestID string      `json:"request_id"`
	Channel   string      `json:"channel"`
	Members   []Member    `json:"members"`
}

// PresenceEvent is a join or leave, sent to a channel's subscribers when
// its namespace enables join/leave events.
type PresenceEvent struct {
	Version int         `json:"v"`
	Type    MessageType `json:"type"`
	Channel string      `json:"channel"`
	Info    ClientInfo  `json:"info"`
}

// Published is the data of the response that answers a client's publish:
// the publication's position.
type Published struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// NewSubscribed returns a subscribed message; nil publications become [].
func NewSubscribed(requestID, channel string, offset uint64, epoch string, recovered bool, pubs []Publication) Subscribed {
	if pubs == nil {
		pubs = []Publication{}
	}
	return Subscribed{Version: Version, Type: TypeSubscribed, RequestID: requestID, Channel: channel,
		Offset: offset, Epoch: epoch, Recovered: recovered, Publications: pubs}
}

// NewUnsubscribed returns an unsubscribed message.
func NewUnsubscribed(requestID, channel string) Unsubscribed {
	return Unsubscribed{Version: Version, Type: TypeUnsubscribed, RequestID: requestID, Channel: channel}
}

// NewPublication returns a publication message; info may be nil.
func NewPublication(channel string, offset uint64, epoch string, data json.RawMessage, info *ClientInfo) Publication {
	return Publication{Version: Version, Type: TypePublication, Channel: channel, Offset: offset, Epoch: epoch, Data: data, Info: info}
}

// NewPresence returns a presence answer; nil members become [].
func NewPresence(requestID, channel string, members []Member) Presence {
	if members == nil {
		members = []Member{}
	}
	return Presence{Version: Version, Type: TypePresence, RequestID: requestID, Channel: channel, Members: members}
}

// NewJoin returns a join event.
func NewJoin(channel string, info ClientInfo) PresenceEvent {
	return PresenceEvent{Version: Version, Type: TypeJoin, Channel: channel, Info: info}
}

// NewLeave returns a leave event.
func NewLeave(channel string, info ClientInfo) PresenceEvent {
	return PresenceEvent{Version: Version, Type: TypeLeave, Channel: channel, Info: info}
}

// CheckChannelName reports whether name is a valid channel name: 1 to
// MaxChannelLength bytes of ASCII letters, digits and _-.:@=,/+~!, and, when
// it has a namespace (the part before the first ':'), a non-empty one.
// The error is a *ValidationError with code INVALID_MESSAGE.
func CheckChannelName(name string) error {
	if ve := checkChannelName(name); ve != nil {
		return ve
	}
	return nil
}

func checkChannelName(name string) *ValidationError {
	switch {
	case name == "":
		return invalid("", "channel is required")
	case len(name) > MaxChannelLength:
		return invalid("", "channel is longer than %d bytes", MaxChannelLength)
	case name[0] == ':':
		return invalid("", "channel namespace (before ':') must not be empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(channelChars, c) >= 0 {
			continue
		}
		return invalid("", "channel may hold only letters, digits and %s", channelChars)
	}
	return nil
}

// checkChannelMessage validates the fields of subscribe, unsubscribe,
// publish and presence messages.
func checkChannelMessage(in *Inbound) *ValidationError {
	switch {
	case in.ID == "":
		return invalid("", "id is required")
	case len(in.ID) > MaxIDLength:
		return invalid("", "id is longer than %d bytes", MaxIDLength)
	}
	if ve := checkChannelName(in.Channel); ve != nil {
		ve.RequestID = in.ID
		return ve
	}
	if in.Since != nil {
		if in.Type != TypeSubscribe {
			return invalid(in.ID, "since is allowed only on subscribe")
		}
		switch {
		case in.Since.Offset < 0:
			return invalid(in.ID, "since.offset must not be negative")
		case in.Since.Epoch == "":
			return invalid(in.ID, "since.epoch is required")
		case len(in.Since.Epoch) > MaxIDLength:
			return invalid(in.ID, "since.epoch is longer than %d bytes", MaxIDLength)
		}
	}
	if isJSONNull(in.Data) {
		in.Data = nil
	}
	if in.Type == TypePublish && in.Data == nil {
		return invalid(in.ID, "publish needs data")
	}
	return nil
}
