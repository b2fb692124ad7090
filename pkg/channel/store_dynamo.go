package channel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

var _ Store = (*DynamoStore)(nil)

// DynamoStore keeps channel state in the channels table of dynamo.Tables
// (dynamo.ChannelsTable(prefix)), so every Lambda and process of a
// deployment shares offsets, history and subscriptions. It uses only
// single-item conditional writes, atomic counters and Queries of one
// partition (no transactions, streams or indexes). Items:
//
//	pk "c#"+channel  sk "#meta"          offset (N, the atomic counter), epoch (S),
//	                                     history_size, history_ttl (N, seconds)
//	pk "c#"+channel  sk "p#"+%020d       one publication: data (S, JSON), user_id, ttl;
//	                                     or a lost offset: lost (BOOL), ttl
//	pk "c#"+channel  sk "s#"+connection  one subscription: user_id, ttl
//	pk "n#"+connection sk channel        the connection's index of its subscriptions, ttl
//
// Expired items (ttl < now) are filtered on every read: DynamoDB's TTL
// deletes them eventually, dynalite never. The counter item has no TTL:
// a channel's offsets and epoch outlive its history, so a client that
// was away longer than the history TTL is told recovered:false rather
// than handed a reset offset.
//
// Calls per operation (pinned by TestDynamoStoreCalls): Publish 1
// UpdateItem + 1 PutItem + 1 DeleteItem once the history is full (1
// UpdateItem with no history); History 1 GetItem + 1 Query per 1 MB
// (and a Query again, after a few ms, while a concurrent publication it
// must include is still being written, for up to historyWait, then a
// conditional PutItem per offset still missing, a GetItem, and a Query);
// Position 1 GetItem (2 more, a conditional PutItem and a GetItem, the
// first time a channel is seen); Subscribe 2 PutItem; Unsubscribe 2
// DeleteItem; Subscribers and Subscriptions 1 Query per 1 MB page.
type DynamoStore struct {
	client dynamo.Client
	table  string
	now    func() time.Time
	wait   time.Duration // historyWait, shorter in tests
}

// DynamoOption configures a DynamoStore.
type DynamoOption func(*DynamoStore)

// WithDynamoPrefix names the table dynamo.ChannelsTable(prefix) (default
// dynamo.DefaultPrefix).
func WithDynamoPrefix(prefix string) DynamoOption {
	return func(s *DynamoStore) { s.table = dynamo.ChannelsTable(prefix) }
}

// WithDynamoTable sets the table name outright (from a Lambda environment
// variable, say); "" keeps the current one.
func WithDynamoTable(name string) DynamoOption {
	return func(s *DynamoStore) {
		if name != "" {
			s.table = name
		}
	}
}

// WithDynamoClock replaces time.Now, for tests of expiry.
func WithDynamoClock(now func() time.Time) DynamoOption {
	return func(s *DynamoStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewDynamoStore returns a DynamoStore using client. A nil client panics,
// as a programming error.
func NewDynamoStore(client dynamo.Client, opts ...DynamoOption) *DynamoStore {
	if client == nil {
		panic("channel: NewDynamoStore needs a client")
	}
	s := &DynamoStore{client: client, table: dynamo.ChannelsTable(dynamo.DefaultPrefix), now: time.Now, wait: historyWait}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

const (
	attrOffset = "offset"
	attrSize   = "history_size"
	attrTTLSec = "history_ttl"
	attrLost   = "lost"
	attrEpoch  = "epoch"
	attrData   = "data"
	attrUser   = "user_id"
	skMeta     = "#meta"
	pubPrefix  = "p#"
	subPrefix  = "s#"
)

func chanPK(channel string) string    { return "c#" + channel }
func connPK(connection string) string { return "n#" + connection }
func pubSK(offset uint64) string      { return fmt.Sprintf("%s%020d", pubPrefix, offset) }

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamo.AttrPK: str(pk), dynamo.AttrSK: str(sk)}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

// live reports whether an item has not expired.
func live(item map[string]types.AttributeValue, now int64) bool {
	ttl, ok := getN(item, dynamo.AttrTTL)
	return !ok || ttl >= now
}

// Subscribe writes the connection's index item first, then the
// subscription: a crash between the two leaves an index entry that
// RemoveConnection cleans up, never a subscription no index names. The
// subscription's put returns the item it replaced, so created is decided
// by one atomic write.
func (s *DynamoStore) Subscribe(ctx context.Context, channel string, sub Subscriber, expires time.Time) (bool, error) {
	if err := checkKey(channel, sub.ConnectionID); err != nil {
		return false, err
	}
	ttl := num(expires.Unix())
	idx := itemKey(connPK(sub.ConnectionID), channel)
	idx[dynamo.AttrTTL] = ttl
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: idx}); err != nil {
		return false, fmt.Errorf("channel: indexing subscription: %w", err)
	}
	item := itemKey(chanPK(channel), subPrefix+sub.ConnectionID)
	item[attrUser] = str(sub.UserID)
	item[dynamo.AttrTTL] = ttl
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return false, fmt.Errorf("channel: storing subscription: %w", err)
	}
	return len(out.Attributes) == 0 || !live(out.Attributes, s.now().Unix()), nil
}

// Unsubscribe deletes the subscription, then its index item.
func (s *DynamoStore) Unsubscribe(ctx context.Context, channel, connectionID string) (Subscriber, bool, error) {
	if err := checkKey(channel, connectionID); err != nil {
		return Subscriber{}, false, err
	}
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.table, Key: itemKey(chanPK(channel), subPrefix+connectionID), ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return Subscriber{}, false, fmt.Errorf("channel: deleting subscription: %w", err)
	}
	if _, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: itemKey(connPK(connectionID), channel)}); err != nil {
		return Subscriber{}, false, fmt.Errorf("channel: deleting subscription index: %w", err)
	}
	if len(out.Attributes) == 0 || !live(out.Attributes, s.now().Unix()) {
		return Subscriber{}, false, nil
	}
	return Subscriber{ConnectionID: connectionID, UserID: getS(out.Attributes, attrUser)}, true, nil
}

// query runs a consistent Query of one partition, every page, calling fn
// for each live item.
func (s *DynamoStore) query(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue)) error {
	now := s.now().Unix()
	return s.queryAll(ctx, in, func(item map[string]types.AttributeValue) {
		if live(item, now) {
			fn(item)
		}
	})
}

// queryAll runs a consistent Query through every page, expired items
// included.
func (s *DynamoStore) queryAll(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue)) error {
	in.TableName = &s.table
	in.ConsistentRead = aws.Bool(true)
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			fn(item)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Subscribers queries the channel's subscription items.
func (s *DynamoStore) Subscribers(ctx context.Context, channel string) ([]Subscriber, error) {
	var out []Subscriber
	err := s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :p)"),
		ExpressionAttributeNames:  map[string]string{"#pk": dynamo.AttrPK, "#sk": dynamo.AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(chanPK(channel)), ":p": str(subPrefix)},
	}, func(item map[string]types.AttributeValue) {
		out = append(out, Subscriber{ConnectionID: strings.TrimPrefix(getS(item, dynamo.AttrSK), subPrefix), UserID: getS(item, attrUser)})
	})
	if err != nil {
		return nil, fmt.Errorf("channel: listing subscribers: %w", err)
	}
	return out, nil
}

// Subscriptions queries the connection's index items.
func (s *DynamoStore) Subscriptions(ctx context.Context, connectionID string) ([]string, error) {
	var out []string
	err := s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": dynamo.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(connPK(connectionID))},
	}, func(item map[string]types.AttributeValue) {
		out = append(out, getS(item, dynamo.AttrSK))
	})
	if err != nil {
		return nil, fmt.Errorf("channel: listing subscriptions: %w", err)
	}
	return out, nil
}

// Publish increments the counter (creating the epoch with the first
// publication), writes the publication under its offset and deletes the
// one the history size pushes out. The write is conditional on the offset
// being free: a publisher so slow that a reader has given its offset up
// as lost (see History) fails, unacknowledged, rather than overwrite the
// mark readers have already recovered across. Concurrent publishers each get their
// own offset from the atomic counter, and each trims its own predecessor
// by Size, so the history stays bounded without a read.
func (s *DynamoStore) Publish(ctx context.Context, channel string, e Entry, h HistoryOptions) (Position, error) {
	if channel == "" {
		return Position{}, fmt.Errorf("%w: empty channel", ErrInvalidInput)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      itemKey(chanPK(channel), skMeta),
		UpdateExpression:         aws.String("SET #e = if_not_exists(#e, :e), #s = :s, #t = :t ADD #o :one"),
		ExpressionAttributeNames: map[string]string{"#e": attrEpoch, "#o": attrOffset, "#s": attrSize, "#t": attrTTLSec},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":e": str(newEpoch()), ":one": num(1), ":s": num(int64(max(h.Size, 0))), ":t": num(int64(max(h.TTL, 0) / time.Second)),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return Position{}, fmt.Errorf("channel: incrementing offset: %w", err)
	}
	pos, err := position(out.Attributes)
	if err != nil {
		return Position{}, err
	}
	if h.Size <= 0 {
		return pos, nil
	}
	item := itemKey(chanPK(channel), pubSK(pos.Offset))
	item[attrData] = str(string(e.Data))
	if e.UserID != "" {
		item[attrUser] = str(e.UserID)
	}
	if h.TTL > 0 {
		item[dynamo.AttrTTL] = num(s.now().Add(h.TTL).Unix())
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": dynamo.AttrPK},
	}); err != nil {
		// The offset is taken but its publication is not in history
		// (until a reader marks it lost): recovery across it never hands
		// out a wrong list.
		return Position{}, fmt.Errorf("channel: storing publication %d: %w", pos.Offset, err)
	}
	if pos.Offset > uint64(h.Size) {
		if _, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: &s.table, Key: itemKey(chanPK(channel), pubSK(pos.Offset-uint64(h.Size))),
		}); err != nil {
			// The publication is stored; a lingering old entry costs
			// space until its TTL, nothing else.
			return pos, nil
		}
	}
	return pos, nil
}

func position(item map[string]types.AttributeValue) (Position, error) {
	off, ok := getN(item, attrOffset)
	epoch := getS(item, attrEpoch)
	if !ok || off < 0 || epoch == "" {
		return Position{}, errors.New("channel: malformed channel counter item")
	}
	return Position{Offset: uint64(off), Epoch: epoch}, nil
}

// historyWait bounds how long History waits for publications whose
// offset is taken but whose entry is still being written. It is real time
// (not the store's clock): it measures a concurrent publisher's latency
// between its two writes, which on a loaded host or a throttled table is
// far above a round trip, so the bound is generous; a shorter one turns a
// slow publisher into a spurious recovered:false.
const historyWait = 10 * time.Second

// History reads the counter, then the publications between after and it.
// A publication whose offset is taken but whose entry is still being
// written (its publisher, in this process or another, is between the
// counter and the put) would show as a hole: History reads again, with a
// backoff up to 100 ms, until every offset the history should hold is
// settled or historyWait has passed. The history should hold every offset
// above after and above the counter's offset minus the history size the
// latest publication was kept under (older ones are trimmed). An offset
// is settled when its entry is there, live or expired by its TTL (an
// expired entry is not returned, and its publisher is done), or marked
// lost. An offset still missing after historyWait belongs to a publisher
// that failed between the counter and the put (or is slower than any
// acknowledgement its client waits for): History marks it lost with a
// conditional put (lost, and the history's TTL), which that publisher's
// own put then fails on, and returns it as a Lost entry, so recovery
// across it is exact and later readers do not wait. With a history TTL
// an entry may also be missing because the table's TTL deleted it: then
// an offset is marked lost only above a live publication (published
// earlier, give or take its publisher's latency, it would have expired
// first; one GetItem reads the one just under the range), and otherwise
// left a gap the caller sees.
func (s *DynamoStore) History(ctx context.Context, channel string, after uint64) ([]Entry, Position, error) {
	pos, size, ttl, err := s.counter(ctx, channel)
	if err != nil {
		return nil, Position{}, err
	}
	if after >= pos.Offset {
		return nil, pos, nil
	}
	lo := after + 1
	if size >= 0 && pos.Offset-lo+1 > uint64(size) {
		lo = pos.Offset - uint64(size) + 1 // 0 kept: lo > pos.Offset
	}
	deadline := time.Now().Add(s.wait)
	delay := 5 * time.Millisecond
	for marked := false; ; {
		out, expired, err := s.entries(ctx, channel, after, pos.Offset)
		if err != nil {
			return nil, Position{}, err
		}
		if marked || settled(out, expired, lo, pos.Offset) {
			return out, pos, nil
		}
		if !time.Now().Before(deadline) {
			if marked, err = s.markLost(ctx, channel, out, expired, lo, pos.Offset, ttl); err != nil {
				return nil, Position{}, err
			}
			if !marked {
				return out, pos, nil
			}
			continue
		}
		t := time.NewTimer(min(delay, time.Until(deadline)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, Position{}, fmt.Errorf("channel: reading history: %w", ctx.Err())
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// markLost writes a lost mark for each offset from lo to hi that is in
// neither entries nor expired, under the rule History states; a mark
// whose offset has meanwhile been written is not (its conditional put
// fails). It reports whether it wrote or met any, so History reads again.
func (s *DynamoStore) markLost(ctx context.Context, channel string, entries []Entry, expired []uint64, lo, hi uint64, ttl int64) (bool, error) {
	have := make(map[uint64]bool, len(entries)+len(expired))
	for _, off := range expired {
		have[off] = true
	}
	var below uint64 // lowest live publication's offset, 0 for none
	for _, e := range entries {
		have[e.Offset] = true
		if below == 0 && !e.Lost {
			below = e.Offset
		}
	}
	if ttl > 0 && lo > 1 && (below == 0 || below > lo) {
		// The publication just under the range vouches for the range.
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: itemKey(chanPK(channel), pubSK(lo-1)), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return false, fmt.Errorf("channel: reading publication %d: %w", lo-1, err)
		}
		if _, ok := out.Item[attrData]; ok && live(out.Item, s.now().Unix()) {
			below = lo - 1
		}
	}
	wrote := false
	for off := lo; off <= hi; off++ {
		if have[off] || (ttl > 0 && (below == 0 || below > off)) {
			continue
		}
		item := itemKey(chanPK(channel), pubSK(off))
		item[attrLost] = &types.AttributeValueMemberBOOL{Value: true}
		if ttl > 0 {
			item[dynamo.AttrTTL] = num(s.now().Unix() + ttl)
		}
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table, Item: item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": dynamo.AttrPK},
		})
		var cond *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &cond) {
			return false, fmt.Errorf("channel: marking publication %d lost: %w", off, err)
		}
		wrote = true
	}
	return wrote, nil
}

// settled reports whether every offset from lo to hi is in entries or in
// expired.
func settled(entries []Entry, expired []uint64, lo, hi uint64) bool {
	offsets := make([]uint64, 0, len(entries)+len(expired))
	for _, e := range entries {
		offsets = append(offsets, e.Offset)
	}
	offsets = append(offsets, expired...)
	slices.Sort(offsets)
	next := lo
	for _, off := range offsets {
		if off == next {
			next++
		}
	}
	return next > hi
}

// entries queries the publications with offsets in (after, to]: the live
// ones in offset order, and the offsets of those expired by their TTL but
// not yet deleted.
func (s *DynamoStore) entries(ctx context.Context, channel string, after, to uint64) ([]Entry, []uint64, error) {
	var out []Entry
	var expired []uint64
	now := s.now().Unix()
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :from AND :to"),
		ExpressionAttributeNames: map[string]string{"#pk": dynamo.AttrPK, "#sk": dynamo.AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(chanPK(channel)), ":from": str(pubSK(after + 1)), ":to": str(pubSK(to)),
		},
	}, func(item map[string]types.AttributeValue) {
		off, err := strconv.ParseUint(strings.TrimPrefix(getS(item, dynamo.AttrSK), pubPrefix), 10, 64)
		if err != nil {
			return
		}
		if !live(item, now) {
			expired = append(expired, off)
			return
		}
		if lost, ok := item[attrLost].(*types.AttributeValueMemberBOOL); ok && lost.Value {
			out = append(out, Entry{Offset: off, Lost: true})
			return
		}
		out = append(out, Entry{Offset: off, Data: []byte(getS(item, attrData)), UserID: getS(item, attrUser)})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("channel: reading history: %w", err)
	}
	return out, expired, nil
}

// Position reads the counter item, creating it (offset 0, a new epoch)
// with a conditional put the first time; a racing creator wins and its
// epoch is read back.
func (s *DynamoStore) Position(ctx context.Context, channel string) (Position, error) {
	pos, _, _, err := s.counter(ctx, channel)
	return pos, err
}

// counter is Position, with the history size (-1 when the counter does
// not say) and TTL in seconds the latest publication was kept under.
func (s *DynamoStore) counter(ctx context.Context, channel string) (Position, int64, int64, error) {
	if channel == "" {
		return Position{}, 0, 0, fmt.Errorf("%w: empty channel", ErrInvalidInput)
	}
	for range 2 {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: itemKey(chanPK(channel), skMeta), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return Position{}, 0, 0, fmt.Errorf("channel: reading channel counter: %w", err)
		}
		if len(out.Item) != 0 {
			pos, err := position(out.Item)
			size, ok := getN(out.Item, attrSize)
			if !ok {
				size = -1
			}
			ttl, _ := getN(out.Item, attrTTLSec)
			return pos, size, ttl, err
		}
		item := itemKey(chanPK(channel), skMeta)
		item[attrOffset] = num(0)
		item[attrEpoch] = str(newEpoch())
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table, Item: item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": dynamo.AttrPK},
		})
		var cond *types.ConditionalCheckFailedException
		if err == nil {
			pos, err := position(item)
			return pos, 0, 0, err
		}
		if !errors.As(err, &cond) {
			return Position{}, 0, 0, fmt.Errorf("channel: creating channel counter: %w", err)
		}
	}
	return Position{}, 0, 0, errors.New("channel: channel counter vanished while being created")
}
