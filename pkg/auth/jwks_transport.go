package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
)

// maxFreshness caps how long a Cache-Control max-age may spare scheduled
// refreshes, so a provider's revocation is seen within a day at worst.
const maxFreshness = 24 * time.Hour

// jwksTransport sits between jwkset's refresh and the network. jwkset
// (v0.11) reads whatever body it is given, with no size bound, ignores
// caching headers and accepts symmetric keys; this transport adds those
// checks, so jwkset only ever sees a bounded, validated document, and a
// refused one fails the refresh (jwkset then keeps the last good keys).
type jwksTransport struct {
	next     http.RoundTripper
	remote   *remoteJWKS
	maxBytes int64
	timeout  time.Duration
	now      func() time.Time
	cache    cacheMu
}

// RoundTrip answers a JWKS GET with the validated document as a 200.
func (t *jwksTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.cache.mu.Lock()
	entry := t.cache.entry
	t.cache.mu.Unlock()
	if entry != nil && !mustRevalidate(req.Context()) && t.now().Before(entry.freshUntil) {
		t.remote.fresh.Add(1)
		return answer(req, entry.body), nil
	}

	// The refresh an unknown kid causes runs under the caller's context,
	// not jwkset's HTTPTimeout: bound every request here.
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	defer cancel()
	out := req.Clone(ctx)
	out.Header.Set("Accept", "application/json")
	if entry != nil {
		if entry.etag != "" {
			out.Header.Set("If-None-Match", entry.etag)
		}
		if entry.lastModified != "" {
			out.Header.Set("If-Modified-Since", entry.lastModified)
		}
	}
	t.remote.requests.Add(1)
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && entry != nil:
		t.remote.notModified.Add(1)
		renewed := *entry
		renewed.freshUntil = t.freshUntil(resp.Header)
		t.store(&renewed)
		t.remote.lastSuccess.Store(t.now().UnixNano())
		return answer(req, entry.body), nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%w: %s answered %d %s", ErrJWKSFetch, req.URL.Redacted(), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.ContentLength > t.maxBytes {
		return nil, fmt.Errorf("%w: response of %d bytes exceeds the limit of %d", ErrJWKSFetch, resp.ContentLength, t.maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, t.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the response: %w", ErrJWKSFetch, err)
	}
	if int64(len(body)) > t.maxBytes {
		return nil, fmt.Errorf("%w: response exceeds the limit of %d bytes", ErrJWKSFetch, t.maxBytes)
	}
	filtered, pubs, err := parseJWKSDoc(body, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	var doc jwkset.JWKSMarshal
	if err := json.Unmarshal(filtered, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	kids := make([]string, 0, len(doc.Keys))
	for _, k := range doc.Keys {
		kids = append(kids, k.KID)
	}
	t.store(&cacheEntry{
		body:         filtered,
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
		freshUntil:   t.freshUntil(resp.Header),
	})
	t.remote.accepted(pubs, kids)
	return answer(req, filtered), nil
}

func (t *jwksTransport) store(e *cacheEntry) {
	t.cache.mu.Lock()
	t.cache.entry = e
	t.cache.mu.Unlock()
}

// freshUntil reads Cache-Control's max-age (less Age); no-cache, no-store
// or no max-age mean "ask again next time".
func (t *jwksTransport) freshUntil(h http.Header) time.Time {
	now := t.now()
	var maxAge time.Duration
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			return now
		case "max-age", "s-maxage":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n > 0 {
				maxAge = time.Duration(n) * time.Second
			}
		}
	}
	if age, err := strconv.Atoi(h.Get("Age")); err == nil && age > 0 {
		maxAge -= time.Duration(age) * time.Second
	}
	if maxAge <= 0 {
		return now
	}
	return now.Add(min(maxAge, maxFreshness))
}

// answer is the 200 jwkset expects, carrying body.
func answer(req *http.Request, body []byte) *http.Response {
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// cacheEntry is the last good answer and its validators.
type cacheEntry struct {
	body         []byte
	etag         string
	lastModified string
	freshUntil   time.Time
}

// cacheMu guards a transport's cache; refreshes are rare, so one lock is
// plenty.
type cacheMu struct {
	mu    sync.Mutex
	entry *cacheEntry
}
