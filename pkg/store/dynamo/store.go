package dynamo

import (
	"context"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store"
)

// DefaultPageSize is the Query page size of the connection lists (which
// page internally) and the default page of the request lists.
const DefaultPageSize = 100

var (
	_ store.ConnectionStore = (*Store)(nil)
	_ store.RouteGetter     = (*Store)(nil)
	_ store.RoutesGetter    = (*Store)(nil)
	_ store.RequestStore    = (*Store)(nil)
)

// Client is the part of *dynamodb.Client the store uses. Any
// *dynamodb.Client satisfies it; wrap one to add tracing or metrics.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Store keeps connections and async requests in two DynamoDB tables. It
// holds no state besides its configuration and is safe for concurrent use.
type Store struct {
	client      Client
	connections string
	requests    string
	now         func() time.Time
	pageSize    int
}

// Option configures a Store.
type Option func(*Store)

// WithPrefix names the tables ConnectionsTable(prefix) and
// RequestsTable(prefix). The default is DefaultPrefix.
func WithPrefix(prefix string) Option {
	return func(s *Store) {
		s.connections, s.requests = ConnectionsTable(prefix), RequestsTable(prefix)
	}
}

// WithTableNames sets both table names outright, for deployments that name
// them (for example from Lambda environment variables). Empty names keep
// the current ones.
func WithTableNames(connections, requests string) Option {
	return func(s *Store) {
		if connections != "" {
			s.connections = connections
		}
		if requests != "" {
			s.requests = requests
		}
	}
}

// WithClock sets the clock used for TTL filtering, leases and timestamps.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithPageSize sets the Query page size (see DefaultPageSize). Values <= 0
// keep the default; values above what a Query's Limit (an int32) carries
// are capped there.
func WithPageSize(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.pageSize = min(n, math.MaxInt32)
		}
	}
}

// New returns a store on client, which must not be nil:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	...
//	s := dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.WithPrefix("myapp-"))
//
// For a local server such as dynalite, set the client's BaseEndpoint.
func New(client Client, opts ...Option) *Store {
	if client == nil {
		panic("dynamo: New with a nil client")
	}
	s := &Store{
		client:      client,
		connections: ConnectionsTable(DefaultPrefix),
		requests:    RequestsTable(DefaultPrefix),
		now:         time.Now,
		pageSize:    DefaultPageSize,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ConnectionsTable returns the name of the connections table in use.
func (s *Store) ConnectionsTable() string { return s.connections }

// RequestsTable returns the name of the requests table in use.
func (s *Store) RequestsTable() string { return s.requests }

func (s *Store) clock() time.Time { return s.now().UTC() }
