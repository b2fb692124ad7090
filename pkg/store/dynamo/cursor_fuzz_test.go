package dynamo

import (
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FuzzDecodeCursor feeds arbitrary cursors to the decoder: it must never
// panic, and whatever it accepts must name the list it was asked for and
// re-encode to an equivalent cursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(map[string]types.AttributeValue{
		AttrConnectionID: &types.AttributeValueMemberS{Value: "c-1"},
		AttrRequestID:    &types.AttributeValueMemberS{Value: "r-1"},
		AttrCreatedAt:    &types.AttributeValueMemberS{Value: "2026-11-27T12:00:00.000000000Z"},
	}))
	f.Add("")
	f.Add("e30")
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, cursor string) {
		key, ok := decodeCursor(cursor, AttrConnectionID, "c-1")
		if !ok {
			return
		}
		if s, _ := key[AttrConnectionID].(*types.AttributeValueMemberS); s == nil || s.Value != "c-1" {
			t.Fatalf("accepted a cursor of another list: %v", key)
		}
		again, ok := decodeCursor(encodeCursor(key), AttrConnectionID, "c-1")
		if !ok || !maps.EqualFunc(again, key, func(a, b types.AttributeValue) bool {
			return a.(*types.AttributeValueMemberS).Value == b.(*types.AttributeValueMemberS).Value
		}) {
			t.Fatalf("round trip changed %v to %v", key, again)
		}
	})
}

// FuzzDecodeSweepCursor does the same for ListStalled's cursors: whatever
// the decoder accepts names a real shard, a key in that shard, and
// survives a round trip.
func FuzzDecodeSweepCursor(f *testing.F) {
	f.Add(encodeSweepCursor(3, map[string]types.AttributeValue{
		AttrSweepShard: &types.AttributeValueMemberS{Value: "3"},
		AttrSweepKey:   &types.AttributeValueMemberS{Value: "2026-11-27T12:00:00.000000000Z#PENDING"},
		AttrRequestID:  &types.AttributeValueMemberS{Value: "r-1"},
	}))
	f.Add(encodeSweepCursor(15, nil))
	f.Add("e30")
	f.Add("eyJzIjo5OTl9")
	f.Fuzz(func(t *testing.T, cursor string) {
		shard, key, ok := decodeSweepCursor(cursor)
		if !ok {
			return
		}
		if shard < 0 || shard >= SweepShards {
			t.Fatalf("accepted shard %d", shard)
		}
		if key != nil {
			if s, _ := key[AttrSweepShard].(*types.AttributeValueMemberS); s == nil || s.Value != sweepShardName(shard) {
				t.Fatalf("accepted a key of another shard: %d %v", shard, key)
			}
		}
		shard2, key2, ok := decodeSweepCursor(encodeSweepCursor(shard, key))
		if !ok || shard2 != shard || !maps.EqualFunc(key2, key, func(a, b types.AttributeValue) bool {
			return a.(*types.AttributeValueMemberS).Value == b.(*types.AttributeValueMemberS).Value
		}) {
			t.Fatalf("round trip changed %d %v to %d %v", shard, key, shard2, key2)
		}
	})
}
