package dynamo

import (
	"maps"
	"strings"
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
// the decoder accepts names a real key range, a key inside that range, and
// survives a round trip.
func FuzzDecodeSweepCursor(f *testing.F) {
	f.Add(encodeSweepCursor(7, map[string]types.AttributeValue{
		AttrSweepShard: &types.AttributeValueMemberS{Value: "3"},
		AttrSweepKey:   &types.AttributeValueMemberS{Value: "PROCESSING#2026-11-27T12:00:00.000000000Z"},
		AttrRequestID:  &types.AttributeValueMemberS{Value: "r-1"},
	}))
	f.Add(encodeSweepCursor(sweepRanges-1, nil))
	f.Add("e30")
	f.Add("eyJyIjo5OTl9")
	f.Fuzz(func(t *testing.T, cursor string) {
		rng, key, ok := decodeSweepCursor(cursor)
		if !ok {
			return
		}
		if rng < 0 || rng >= sweepRanges {
			t.Fatalf("accepted range %d", rng)
		}
		if key != nil {
			shard, st := sweepRange(rng)
			sh, _ := key[AttrSweepShard].(*types.AttributeValueMemberS)
			k, _ := key[AttrSweepKey].(*types.AttributeValueMemberS)
			if sh == nil || sh.Value != sweepShardName(shard) || k == nil || !strings.HasPrefix(k.Value, string(st)+"#") {
				t.Fatalf("accepted a key outside range %d: %v", rng, key)
			}
		}
		rng2, key2, ok := decodeSweepCursor(encodeSweepCursor(rng, key))
		if !ok || rng2 != rng || !maps.EqualFunc(key2, key, func(a, b types.AttributeValue) bool {
			return a.(*types.AttributeValueMemberS).Value == b.(*types.AttributeValueMemberS).Value
		}) {
			t.Fatalf("round trip changed %d %v to %d %v", rng, key, rng2, key2)
		}
	})
}
