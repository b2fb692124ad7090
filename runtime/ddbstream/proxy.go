package ddbstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// maxBody bounds a request body (DynamoDB's own limit is 16 MB).
const maxBody = 16 << 20

const targetPrefix = "DynamoDB_20120810."

// Proxy is a DynamoDB endpoint that forwards to Upstream and records the
// writes to its streams' tables. Create it with NewProxy.
type Proxy struct {
	upstream string
	client   *http.Client
	streams  map[string]*Stream
	log      *slog.Logger

	mu   sync.Mutex
	keys map[string][]string // table → key attribute names
}

// NewProxy returns a proxy to the DynamoDB endpoint upstream
// ("http://127.0.0.1:4567") recording writes to the streams' tables.
// Logger may be nil.
func NewProxy(upstream string, streams []*Stream, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		upstream: strings.TrimRight(upstream, "/"),
		// Bodies pass through unchanged: no transparent gzip, whose
		// decoding would break the x-amz-crc32 check of SDK clients.
		client:  &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}},
		streams: map[string]*Stream{},
		log:     logger,
		keys:    map[string][]string{},
	}
	for _, s := range streams {
		p.streams[s.Table] = s
	}
	return p
}

// Close releases the proxy's idle upstream connections.
func (p *Proxy) Close() { p.client.CloseIdleConnections() }

// write is one item a call writes.
type write struct {
	stream *Stream
	key    map[string]json.RawMessage
	old    map[string]json.RawMessage
}

// ServeHTTP forwards one DynamoDB call.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	writes, err := p.writes(r.Context(), r.Header, op, body)
	if err != nil {
		// The call is malformed for us, so it is for the server too:
		// forward it and let the server answer.
		p.log.Debug("ddbstream: cannot read the written keys", "op", op, "err", err)
		writes = nil
	}
	// Lock the tables in name order, so two batches cannot deadlock.
	tables := map[*Stream]bool{}
	for _, wr := range writes {
		tables[wr.stream] = true
	}
	locked := make([]*Stream, 0, len(tables))
	for s := range tables {
		locked = append(locked, s)
	}
	sort.Slice(locked, func(i, j int) bool { return locked[i].Table < locked[j].Table })
	for _, s := range locked {
		s.write.Lock()
	}
	defer func() {
		for _, s := range locked {
			s.write.Unlock()
		}
	}()
	for i := range writes {
		if writes[i].old, err = p.getItem(r.Context(), r.Header, writes[i].stream.Table, writes[i].key); err != nil {
			p.log.Warn("ddbstream: read before write failed; no stream record", "table", writes[i].stream.Table, "err", err)
			writes = nil
			break
		}
	}
	status, hdr, respBody, err := p.forward(r.Context(), r.Header, body)
	if err != nil {
		http.Error(w, "ddbstream: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
	if status != http.StatusOK {
		return
	}
	now := time.Now()
	for _, wr := range writes {
		cur, err := p.getItem(r.Context(), r.Header, wr.stream.Table, wr.key)
		if err != nil {
			p.log.Warn("ddbstream: read after write failed; no stream record", "table", wr.stream.Table, "err", err)
			continue
		}
		if rec, ok := record(wr.stream, wr.key, wr.old, cur, now); ok {
			wr.stream.append(rec)
		}
	}
}

// writes lists the items a call writes to tables with streams.
func (p *Proxy) writes(ctx context.Context, h http.Header, op string, body []byte) ([]write, error) {
	type keyed struct {
		TableName string                     `json:"TableName"`
		Key       map[string]json.RawMessage `json:"Key"`
		Item      map[string]json.RawMessage `json:"Item"`
	}
	one := func(k keyed) ([]write, error) {
		s := p.streams[k.TableName]
		if s == nil {
			return nil, nil
		}
		key := k.Key
		if k.Item != nil {
			var err error
			if key, err = p.keyOf(ctx, h, k.TableName, k.Item); err != nil {
				return nil, err
			}
		}
		if len(key) == 0 {
			return nil, errors.New("no key")
		}
		return []write{{stream: s, key: key}}, nil
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		var k keyed
		if err := json.Unmarshal(body, &k); err != nil {
			return nil, err
		}
		return one(k)
	case "BatchWriteItem":
		var b struct {
			RequestItems map[string][]struct {
				PutRequest    *struct{ Item map[string]json.RawMessage } `json:"PutRequest"`
				DeleteRequest *struct{ Key map[string]json.RawMessage }  `json:"DeleteRequest"`
			} `json:"RequestItems"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, err
		}
		names := make([]string, 0, len(b.RequestItems))
		for n := range b.RequestItems {
			names = append(names, n)
		}
		sort.Strings(names)
		var out []write
		for _, table := range names {
			for _, req := range b.RequestItems[table] {
				k := keyed{TableName: table}
				switch {
				case req.PutRequest != nil:
					k.Item = req.PutRequest.Item
				case req.DeleteRequest != nil:
					k.Key = req.DeleteRequest.Key
				}
				ws, err := one(k)
				if err != nil {
					return nil, err
				}
				out = append(out, ws...)
			}
		}
		return out, nil
	case "TransactWriteItems":
		var t struct {
			TransactItems []struct {
				Put    *keyed `json:"Put"`
				Update *keyed `json:"Update"`
				Delete *keyed `json:"Delete"`
			} `json:"TransactItems"`
		}
		if err := json.Unmarshal(body, &t); err != nil {
			return nil, err
		}
		var out []write
		for _, it := range t.TransactItems {
			for _, k := range []*keyed{it.Put, it.Update, it.Delete} {
				if k == nil {
					continue
				}
				ws, err := one(*k)
				if err != nil {
					return nil, err
				}
				out = append(out, ws...)
			}
		}
		return out, nil
	}
	return nil, nil
}

// keyOf picks the key attributes out of an item, reading the table's key
// schema once.
func (p *Proxy) keyOf(ctx context.Context, h http.Header, table string, item map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	p.mu.Lock()
	names, ok := p.keys[table]
	p.mu.Unlock()
	if !ok {
		req, _ := json.Marshal(map[string]string{"TableName": table})
		status, _, body, err := p.call(ctx, h, "DescribeTable", req)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("DescribeTable %s: status %d", table, status)
		}
		var d struct {
			Table struct {
				KeySchema []struct{ AttributeName string }
			}
		}
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, err
		}
		for _, k := range d.Table.KeySchema {
			names = append(names, k.AttributeName)
		}
		p.mu.Lock()
		p.keys[table] = names
		p.mu.Unlock()
	}
	key := make(map[string]json.RawMessage, len(names))
	for _, n := range names {
		v, ok := item[n]
		if !ok {
			return nil, fmt.Errorf("item lacks key attribute %s", n)
		}
		key[n] = v
	}
	return key, nil
}

// getItem reads an item with a consistent read; nil when absent.
func (p *Proxy) getItem(ctx context.Context, h http.Header, table string, key map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	req, _ := json.Marshal(map[string]any{"TableName": table, "Key": key, "ConsistentRead": true})
	status, _, body, err := p.call(ctx, h, "GetItem", req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GetItem %s: status %d: %s", table, status, body)
	}
	var out struct {
		Item map[string]json.RawMessage `json:"Item"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	return out.Item, nil
}

// call makes a call of our own upstream, with the caller's headers.
func (p *Proxy) call(ctx context.Context, h http.Header, op string, body []byte) (int, http.Header, []byte, error) {
	hdr := h.Clone()
	hdr.Set("X-Amz-Target", targetPrefix+op)
	return p.forward(ctx, hdr, body)
}

func (p *Proxy) forward(ctx context.Context, h http.Header, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.upstream+"/", bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Host", "Connection", "Accept-Encoding":
			continue
		}
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	hdr := resp.Header.Clone()
	hdr.Del("Content-Length")
	return resp.StatusCode, hdr, b, nil
}

// record is the stream record of one write, false when nothing changed.
func record(s *Stream, key, old, cur map[string]json.RawMessage, now time.Time) (events.DynamoDBEventRecord, bool) {
	var name string
	switch {
	case old == nil && cur == nil:
		return events.DynamoDBEventRecord{}, false
	case old == nil:
		name = "INSERT"
	case cur == nil:
		name = "REMOVE"
	default:
		if sameItem(old, cur) {
			return events.DynamoDBEventRecord{}, false
		}
		name = "MODIFY"
	}
	rec := events.DynamoDBEventRecord{
		AWSRegion:      s.Region,
		EventName:      name,
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: s.ARN,
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: now.Truncate(time.Second)},
			Keys:                        image(key),
			StreamViewType:              s.ViewType,
		},
	}
	size := 0
	for _, v := range key {
		size += len(v)
	}
	if cur != nil && (s.ViewType == NewImage || s.ViewType == NewAndOldImages) {
		rec.Change.NewImage = image(cur)
		size += imageSize(cur)
	}
	if old != nil && (s.ViewType == OldImage || s.ViewType == NewAndOldImages) {
		rec.Change.OldImage = image(old)
		size += imageSize(old)
	}
	rec.Change.SizeBytes = int64(size)
	return rec, true
}

func image(item map[string]json.RawMessage) map[string]events.DynamoDBAttributeValue {
	out := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, raw := range item {
		var v events.DynamoDBAttributeValue
		if err := json.Unmarshal(raw, &v); err == nil {
			out[k] = v
		}
	}
	return out
}

func imageSize(item map[string]json.RawMessage) int {
	n := 0
	for k, v := range item {
		n += len(k) + len(v)
	}
	return n
}

func sameItem(a, b map[string]json.RawMessage) bool {
	var x, y any
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	if json.Unmarshal(ab, &x) != nil || json.Unmarshal(bb, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
