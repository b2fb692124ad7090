package channel

import (
	"fmt"
	"strings"

	"github.com/streamer-go/streamer/pkg/protocol"
)

// keySep joins a tenant and a channel name in a store key. Channel names
// never contain it (protocol.CheckChannelName), so splitting at its last
// occurrence recovers both, whatever the tenant id holds: one tenant's key
// can never equal another's.
const keySep = "#"

// Key returns the store key of channel name in tenant.
func Key(tenant, name string) string { return tenant + keySep + name }

// SplitKey returns the tenant and name of a store key.
func SplitKey(key string) (tenant, name string) {
	i := strings.LastIndex(key, keySep)
	if i < 0 {
		return "", key
	}
	return key[:i], key[i+1:]
}

// NamespaceOf returns the namespace of a channel name: the part before the
// first ':', or "" for a name without one.
func NamespaceOf(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return ""
}

// ValidateName reports whether name is a valid channel name; the error
// wraps ErrInvalidChannel.
func ValidateName(name string) error {
	if err := protocol.CheckChannelName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidChannel, err)
	}
	return nil
}
