package awslambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection"
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
	// Identity-provider settings (see docs/OPERATING.md for Cognito).
	EnvJWKSURL             = "STREAMER_JWT_JWKS_URL"
	EnvJWTAudienceClaim    = "STREAMER_JWT_AUDIENCE_CLAIM"
	EnvJWTTokenUse         = "STREAMER_JWT_TOKEN_USE"
	EnvJWTPermissionsClaim = "STREAMER_JWT_PERMISSIONS_CLAIM"
	// EnvPacingRate and EnvPacingBurst set the @connections call budget
	// of the connection manager (Config.ManagerOptions); unset means
	// connection.DefaultRate and DefaultBurst, a rate of 0 unlimited.
	EnvPacingRate  = "STREAMER_PACING_RATE"
	EnvPacingBurst = "STREAMER_PACING_BURST"
	// EnvMetricsNamespace is the CloudWatch namespace of the EMF lines
	// (default DefaultMetricsNamespace); "off" turns them off.
	EnvMetricsNamespace = "STREAMER_METRICS_NAMESPACE"
	// EnvRequestIDKey is the secret (at least 16 bytes) that keys async
	// request ids (streamer.WithRequestIDKey). Every function of a
	// deployment needs the same one for a resubmission that reaches
	// another instance to find the same request; unset, each instance
	// draws a key of its own.
	EnvRequestIDKey = "STREAMER_REQUEST_ID_KEY"
)

// EnvVars returns the name of every environment variable ConfigFromEnv
// reads, so a deployment template can be checked against the code.
func EnvVars() []string {
	return []string{
		EnvTablePrefix, EnvConnectionsTable, EnvRequestsTable, EnvDynamoDBEndpoint,
		EnvManagementURL, EnvSyncTimeout, EnvJWTAlgorithms, EnvJWTIssuer, EnvJWTAudience,
		EnvJWTKeyFile, EnvJWKSFile, EnvJWTTenantClaim, EnvMaxAttempts, EnvAllowAnonymous,
		EnvChannelsTable,
		EnvJWKSURL, EnvJWTAudienceClaim, EnvJWTTokenUse, EnvJWTPermissionsClaim, EnvMetricsNamespace,
		EnvPacingRate, EnvPacingBurst, EnvRequestIDKey,
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
	// JWKSURL is an identity provider's JWKS (fetched and kept current,
	// see auth.FetchJWKS); JWTAudienceClaim, JWTTokenUse and
	// JWTPermissionsClaim follow auth.Config's AudienceClaim,
	// RequiredClaims["token_use"] and PermissionsClaim.
	JWKSURL             string
	JWTAudienceClaim    string
	JWTTokenUse         string
	JWTPermissionsClaim string
	// MetricsNamespace is the EMF namespace (empty: DefaultMetricsNamespace);
	// MetricsOff is set by
	// STREAMER_METRICS_NAMESPACE=off.
	MetricsNamespace string
	MetricsOff       bool
	// RequestIDKey keys async request ids (STREAMER_REQUEST_ID_KEY; give
	// it to streamer.WithRequestIDKey). Empty: a key per instance.
	RequestIDKey string
	// PacingRate and PacingBurst are the @connections budget in calls per
	// second (STREAMER_PACING_RATE; 0 unlimited) and its burst
	// (STREAMER_PACING_BURST; 0 half the rate); PacingSet says either was
	// given, else the Manager keeps its defaults.
	PacingRate  float64
	PacingBurst int
	PacingSet   bool
}

// ManagerOptions returns the connection.Manager options the Config sets:
// the pacing budget, when configured.
func (c Config) ManagerOptions() []connection.Option {
	if !c.PacingSet {
		return nil
	}
	if c.PacingRate == 0 {
		return []connection.Option{connection.WithLimiter(nil)}
	}
	return []connection.Option{connection.WithLimiter(connection.NewLimiter(connection.LimiterConfig{Rate: c.PacingRate, Burst: c.PacingBurst}))}
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
		ConnectionsTable:    orDefault(get(EnvConnectionsTable), dynamo.ConnectionsTable(prefix)),
		RequestsTable:       orDefault(get(EnvRequestsTable), dynamo.RequestsTable(prefix)),
		ChannelsTable:       orDefault(get(EnvChannelsTable), dynamo.ChannelsTable(prefix)),
		DynamoDBEndpoint:    get(EnvDynamoDBEndpoint),
		ManagementEndpoint:  get(EnvManagementURL),
		SyncTimeout:         defaultSyncTimeout,
		MaxAttempts:         defaultMaxAttempts,
		JWTIssuer:           get(EnvJWTIssuer),
		JWTAudience:         get(EnvJWTAudience),
		JWTKeyFile:          get(EnvJWTKeyFile),
		JWKSFile:            get(EnvJWKSFile),
		JWTTenantClaim:      get(EnvJWTTenantClaim),
		JWKSURL:             get(EnvJWKSURL),
		JWTAudienceClaim:    get(EnvJWTAudienceClaim),
		JWTTokenUse:         get(EnvJWTTokenUse),
		JWTPermissionsClaim: get(EnvJWTPermissionsClaim),
		MetricsNamespace:    get(EnvMetricsNamespace),
		RequestIDKey:        get(EnvRequestIDKey),
	}
	if c.RequestIDKey != "" && len(c.RequestIDKey) < 16 {
		return Config{}, fmt.Errorf("%w: %s must be at least 16 bytes", ErrConfig, EnvRequestIDKey)
	}
	if strings.EqualFold(c.MetricsNamespace, "off") {
		c.MetricsNamespace, c.MetricsOff = "", true
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
	if v := get(EnvPacingRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return Config{}, fmt.Errorf("%w: %s=%q must be a number of calls per second, 0 for unlimited", ErrConfig, EnvPacingRate, v)
		}
		c.PacingRate, c.PacingSet = r, true
	}
	if v := get(EnvPacingBurst); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("%w: %s=%q must be a non-negative integer", ErrConfig, EnvPacingBurst, v)
		}
		if !c.PacingSet {
			c.PacingRate = connection.DefaultRate
		}
		c.PacingBurst, c.PacingSet = n, true
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
	case len(c.JWTAlgorithms) > 0 && c.JWTKeyFile == "" && c.JWKSFile == "" && c.JWKSURL == "":
		return Config{}, fmt.Errorf("%w: %s needs %s, %s or %s", ErrConfig, EnvJWTAlgorithms, EnvJWTKeyFile, EnvJWKSFile, EnvJWKSURL)
	case c.JWKSFile != "" && c.JWKSURL != "":
		return Config{}, fmt.Errorf("%w: set one of %s and %s", ErrConfig, EnvJWKSFile, EnvJWKSURL)
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
// JWT settings, loading the PEM key file and/or JWKS file, or fetching
// JWKSURL. A fetched set refreshes itself on a goroutine of its own until
// ctx ends, logging refresh failures to log (nil discards them): a
// function's init passes a context that lives as long as the process, a
// test or a server its own, and ending it stops the refreshes. It returns
// nil (and no error) when the deployment allows anonymous connections and
// configures no algorithm.
func (c Config) Verifier(ctx context.Context, log *slog.Logger) (*auth.Verifier, error) {
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
	if c.JWKSURL != "" {
		set, err := auth.FetchJWKS(ctx, c.JWKSURL, &auth.FetchOptions{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, EnvJWKSURL, err)
		}
		keys.JWKS = set
		// The refreshes end with ctx (for a function: never).
		context.AfterFunc(ctx, set.Close)
	}
	var required map[string]string
	if c.JWTTokenUse != "" {
		required = map[string]string{"token_use": c.JWTTokenUse}
	}
	v, err := auth.NewVerifier(auth.Config{
		Algorithms:       c.JWTAlgorithms,
		Issuer:           c.JWTIssuer,
		Audience:         c.JWTAudience,
		AudienceClaim:    c.JWTAudienceClaim,
		RequiredClaims:   required,
		TenantClaim:      c.JWTTenantClaim,
		PermissionsClaim: c.JWTPermissionsClaim,
		Keys:             keys,
	})
	if err != nil {
		keys.JWKS.Close()
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return v, nil
}
