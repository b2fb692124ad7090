package awslambda

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

// Environment variables ConfigFromEnv reads. The deployment template sets
// the same names.
const (
	EnvTablePrefix      = "STREAMER_TABLE_PREFIX"
	EnvConnectionsTable = "STREAMER_CONNECTIONS_TABLE"
	EnvRequestsTable    = "STREAMER_REQUESTS_TABLE"
	EnvDynamoDBEndpoint = "STREAMER_DYNAMODB_ENDPOINT"
	EnvManagementURL    = "STREAMER_MANAGEMENT_ENDPOINT"
	EnvSyncTimeout      = "STREAMER_SYNC_TIMEOUT"
	EnvJWTAlgorithms    = "STREAMER_JWT_ALGORITHMS"
	EnvJWTIssuer        = "STREAMER_JWT_ISSUER"
	EnvJWTAudience      = "STREAMER_JWT_AUDIENCE"
	EnvJWTKeyFile       = "STREAMER_JWT_KEY_FILE"
	EnvJWKSFile         = "STREAMER_JWT_JWKS_FILE"
	EnvJWTTenantClaim   = "STREAMER_JWT_TENANT_CLAIM"
	EnvMaxAttempts      = "STREAMER_MAX_ATTEMPTS"
	EnvAllowAnonymous   = "STREAMER_ALLOW_ANONYMOUS"
	EnvChannelsTable    = "STREAMER_CHANNELS_TABLE"
)

// EnvVars returns the name of every environment variable ConfigFromEnv
// reads, so a deployment template can be checked against the code.
func EnvVars() []string {
	return []string{
		EnvTablePrefix, EnvConnectionsTable, EnvRequestsTable, EnvDynamoDBEndpoint,
		EnvManagementURL, EnvSyncTimeout, EnvJWTAlgorithms, EnvJWTIssuer, EnvJWTAudience,
		EnvJWTKeyFile, EnvJWKSFile, EnvJWTTenantClaim, EnvMaxAttempts, EnvAllowAnonymous,
		EnvChannelsTable,
	}
}

const (
	defaultMaxAttempts = 3
	defaultSyncTimeout = 10 * time.Second
)

// ErrConfig is wrapped by every error ConfigFromEnv returns.
var ErrConfig = errors.New("awslambda: invalid config")

// Config is a deployment's settings, read from the environment by
// ConfigFromEnv. Zero values mean the documented defaults.
type Config struct {
	// ConnectionsTable and RequestsTable name the tables (default
	// "streamer-connections" and "streamer-requests", or the prefix from
	// STREAMER_TABLE_PREFIX).
	ConnectionsTable string
	RequestsTable    string
	// ChannelsTable names the channels table of channel.DynamoStore
	// (default "streamer-channels", or from the prefix).
	ChannelsTable string
	// DynamoDBEndpoint overrides the DynamoDB endpoint (local testing).
	DynamoDBEndpoint string
	// ManagementEndpoint overrides the @connections endpoint; empty means
	// the one each connection's $connect event names
	// (https://{domainName}/{stage}).
	ManagementEndpoint string
	SyncTimeout        time.Duration
	MaxAttempts        int
	// JWT settings; with no algorithms configured, AllowAnonymous must be
	// set, so a deployment never runs without auth by accident.
	JWTAlgorithms  []string
	JWTIssuer      string
	JWTAudience    string
	JWTKeyFile     string
	JWKSFile       string
	JWTTenantClaim string
	AllowAnonymous bool
}

// ConfigFromEnv reads the Config from the process environment.
func ConfigFromEnv() (Config, error) {
	return configFrom(os.Getenv)
}

func configFrom(get func(string) string) (Config, error) {
	prefix := dynamo.DefaultPrefix
	if p := get(EnvTablePrefix); p != "" {
		prefix = p
	}
	c := Config{
		ConnectionsTable:   orDefault(get(EnvConnectionsTable), dynamo.ConnectionsTable(prefix)),
		RequestsTable:      orDefault(get(EnvRequestsTable), dynamo.RequestsTable(prefix)),
		ChannelsTable:      orDefault(get(EnvChannelsTable), dynamo.ChannelsTable(prefix)),
		DynamoDBEndpoint:   get(EnvDynamoDBEndpoint),
		ManagementEndpoint: get(EnvManagementURL),
		SyncTimeout:        defaultSyncTimeout,
		MaxAttempts:        defaultMaxAttempts,
		JWTIssuer:          get(EnvJWTIssuer),
		JWTAudience:        get(EnvJWTAudience),
		JWTKeyFile:         get(EnvJWTKeyFile),
		JWKSFile:           get(EnvJWKSFile),
		JWTTenantClaim:     get(EnvJWTTenantClaim),
	}
	if v := get(EnvSyncTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d >= 29*time.Second {
			return Config{}, fmt.Errorf("%w: %s=%q must be a duration between 0 and API Gateway's 29s", ErrConfig, EnvSyncTimeout, v)
		}
		c.SyncTimeout = d
	}
	if v := get(EnvMaxAttempts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return Config{}, fmt.Errorf("%w: %s=%q must be a positive integer", ErrConfig, EnvMaxAttempts, v)
		}
		c.MaxAttempts = n
	}
	if v := get(EnvAllowAnonymous); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("%w: %s=%q must be a boolean", ErrConfig, EnvAllowAnonymous, v)
		}
		c.AllowAnonymous = b
	}
	c.JWTAlgorithms = splitList(get(EnvJWTAlgorithms))
	switch {
	case len(c.JWTAlgorithms) == 0 && !c.AllowAnonymous:
		return Config{}, fmt.Errorf("%w: set %s (and a key) or %s=true", ErrConfig, EnvJWTAlgorithms, EnvAllowAnonymous)
	case len(c.JWTAlgorithms) > 0 && c.JWTKeyFile == "" && c.JWKSFile == "":
		return Config{}, fmt.Errorf("%w: %s needs %s or %s", ErrConfig, EnvJWTAlgorithms, EnvJWTKeyFile, EnvJWKSFile)
	}
	return c, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// splitList splits a comma- or space-separated list, dropping empties.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// Verifier builds the token verifier the $connect handler needs from the
// JWT settings, loading the PEM key file and/or JWKS file. It returns nil
// (and no error) when the deployment allows anonymous connections and
// configures no algorithm.
func (c Config) Verifier() (*auth.Verifier, error) {
	if len(c.JWTAlgorithms) == 0 {
		return nil, nil
	}
	var keys auth.Keys
	if c.JWTKeyFile != "" {
		pub, err := auth.LoadPEMFile(c.JWTKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, EnvJWTKeyFile, err)
		}
		keys.PublicKeys = pub
	}
	if c.JWKSFile != "" {
		set, err := auth.LoadJWKSFile(c.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, EnvJWKSFile, err)
		}
		keys.JWKS = set
	}
	v, err := auth.NewVerifier(auth.Config{
		Algorithms:  c.JWTAlgorithms,
		Issuer:      c.JWTIssuer,
		Audience:    c.JWTAudience,
		TenantClaim: c.JWTTenantClaim,
		Keys:        keys,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return v, nil
}
