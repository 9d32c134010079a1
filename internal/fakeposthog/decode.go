package fakeposthog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Body limits of capture-rs (router.rs): batch routes take 20 MiB, the
// single-event routes 2 MiB. The same limit caps the decompressed size.
const (
	batchBodyLimit = 20 << 20
	eventBodyLimit = 2 << 20
)

// captureRoutes maps every capture v0 path (without trailing slash) to its
// body limit. PostHog serves every body shape on every one of them.
var captureRoutes = map[string]int64{
	"/batch":   batchBodyLimit,
	"/e":       eventBodyLimit,
	"/i/v0/e":  eventBodyLimit,
	"/track":   eventBodyLimit,
	"/engage":  eventBodyLimit,
	"/capture": eventBodyLimit,
}

// Error texts PostHog's capture service answers with (plain text bodies).
const (
	msgBodyTooLarge     = "Failed to buffer the request body: length limit exceeded"
	msgEventTooBig      = "maximum event size exceeded"
	msgInvalidGzip      = "failed to decode request: invalid GZIP data"
	msgNoEvent          = "request holds no event"
	msgEmptyEventName   = "event submitted with an empty event name"
	msgEmptyDistinctID  = "event submitted with an empty distinct_id"
	msgNoDistinctID     = "event submitted without a distinct_id"
	msgNoToken          = "event submitted without an api_key"
	msgMultipleTokens   = "batch submitted with inconsistent api_key values"
	msgInvalidEvent     = "invalid event could not be processed"
	maxDistinctIDLength = 200
	maxTokenLength      = 64
)

var errTooLarge = errors.New("request body over the route's limit")

// gzipMagic is sniffed regardless of headers because many clients send gzip
// without saying so, and capture-rs accepts that.
var gzipMagic = []byte{0x1f, 0x8b, 0x08}

// decoded is what a capture request turned out to contain. status is 0 when
// PostHog would accept it; otherwise status and msg are PostHog's answer.
type decoded struct {
	// body is the request body after gunzip, for the answer hook.
	body       []byte
	events     []Event
	token      string
	gzipped    bool
	historical bool
	hasSentAt  bool
	sentAt     string
	beacon     bool
	status     int
	msg        string
	// count and uuids describe the request even when it is refused, so
	// tests can see what a rejected batch held.
	count int
	uuids []string
}

func (d *decoded) fail(status int, msg string) *decoded {
	d.status, d.msg = status, msg
	return d
}

// readLimited reads at most limit bytes and reports errTooLarge when the body
// is longer, without buffering more than one byte past the limit.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > limit {
		return b, errTooLarge
	}
	return b, nil
}

// wireEvent is one capture item. Pointers tell "absent" from "empty", which
// PostHog answers differently.
type wireEvent struct {
	Token            *string         `json:"token"`
	APIKey           *string         `json:"api_key"`
	DollarToken      *string         `json:"$token"`
	DistinctID       json.RawMessage `json:"distinct_id"`
	DollarDistinctID json.RawMessage `json:"$distinct_id"`
	UUID             *string         `json:"uuid"`
	Event            *string         `json:"event"`
	Properties       map[string]any  `json:"properties"`
	Timestamp        *string         `json:"timestamp"`
}

// decodeCapture turns a capture request into events, or into the error answer
// PostHog would give. It records nothing; the caller decides what is accepted.
func decodeCapture(r *http.Request, raw []byte, limit int64, tooLarge bool) *decoded {
	d := &decoded{}
	q := r.URL.Query()
	d.beacon = q.Get("beacon") == "1"
	// capture reads sent_at from ?sent_at= or the browser's ?_= cache buster
	// (milliseconds); both skew event times, so both count as carrying one.
	for _, k := range []string{"sent_at", "_"} {
		if q.Has(k) {
			d.hasSentAt, d.sentAt = true, q.Get(k)
			break
		}
	}
	if tooLarge {
		return d.fail(http.StatusRequestEntityTooLarge, msgBodyTooLarge)
	}

	body := raw
	hint := compressionHint(r)
	switch {
	case hint == "gzip" || bytes.HasPrefix(raw, gzipMagic):
		unzipped, err := gunzipLimited(raw, limit)
		if errors.Is(err, errTooLarge) {
			return d.fail(http.StatusRequestEntityTooLarge, msgEventTooBig)
		}
		if err != nil {
			return d.fail(http.StatusBadRequest, msgInvalidGzip)
		}
		body, d.gzipped = unzipped, true
	case hint != "":
		return d.fail(http.StatusBadRequest,
			fmt.Sprintf("failed to decode request: fakeposthog does not implement %s compression", hint))
	}
	d.body = body
	if !utf8.Valid(body) {
		return d.fail(http.StatusBadRequest, "failed to decode request: body is not valid UTF-8")
	}

	items, batchToken, err := splitShapes(body, d)
	if err != nil {
		return d.fail(http.StatusBadRequest, "failed to parse request: "+err.Error())
	}
	if len(items) == 0 {
		return d.fail(http.StatusBadRequest, msgNoEvent)
	}
	d.count = len(items)

	wires := make([]wireEvent, len(items))
	for i, item := range items {
		if err := json.Unmarshal(item, &wires[i]); err != nil {
			return d.fail(http.StatusBadRequest, fmt.Sprintf("failed to parse request: event %d: %v", i, err))
		}
		w := &wires[i]
		if w.Event == nil {
			return d.fail(http.StatusBadRequest, fmt.Sprintf("failed to parse request: event %d: missing field `event`", i))
		}
		// capture-rs parses uuid as a Uuid, so a malformed one fails the
		// whole request; an empty string means "assign one".
		if w.UUID != nil && *w.UUID != "" && !validUUID(*w.UUID) {
			return d.fail(http.StatusBadRequest, fmt.Sprintf("failed to parse request: event %d: invalid uuid %q", i, *w.UUID))
		}
		if w.UUID != nil && *w.UUID != "" {
			d.uuids = append(d.uuids, *w.UUID)
		}
	}

	token, status, msg := requestToken(batchToken, wires)
	if status != 0 {
		return d.fail(status, msg)
	}
	d.token = token

	d.events = make([]Event, len(items))
	for i := range wires {
		w := &wires[i]
		if *w.Event == "" {
			return d.fail(http.StatusBadRequest, msgEmptyEventName)
		}
		did, present := distinctID(w)
		if !present {
			return d.fail(http.StatusBadRequest, msgNoDistinctID)
		}
		if did == "" {
			return d.fail(http.StatusBadRequest, msgEmptyDistinctID)
		}
		props := w.Properties
		if props == nil {
			props = map[string]any{}
		}
		ev := Event{
			Event:               *w.Event,
			DistinctID:          did,
			Properties:          props,
			Raw:                 append(json.RawMessage(nil), items[i]...),
			Token:               token,
			HistoricalMigration: d.historical,
		}
		if w.UUID != nil {
			ev.UUID = *w.UUID
		}
		if w.Timestamp != nil {
			ev.Timestamp = *w.Timestamp
		}
		d.events[i] = ev
	}
	return d
}

// compressionHint returns "gzip", another declared scheme, or "" for none.
// SDKs put the hint in different places; capture takes the best it finds.
func compressionHint(r *http.Request) string {
	for _, v := range []string{r.URL.Query().Get("compression"), r.Header.Get("Content-Encoding")} {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "":
		case "gzip", "gzip-js", "x-gzip":
			return "gzip"
		case "lz64", "lz-string", "base64", "b64":
			return v
		}
	}
	return ""
}

func gunzipLimited(raw []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return readLimited(zr, limit)
}

// splitShapes accepts the three body shapes capture-rs tries in order: a JSON
// array of events, a batch object {api_key|token, batch, historical_migration,
// sent_at}, and a single event object.
func splitShapes(body []byte, d *decoded) (items []json.RawMessage, batchToken string, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, "", errors.New("empty body")
	}
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, "", err
		}
		return items, "", nil
	case '{':
	default:
		return nil, "", errors.New("expected a JSON object or array")
	}

	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, "", err
	}
	batch, isBatch := obj["batch"]
	if !isBatch {
		return []json.RawMessage{trimmed}, "", nil
	}
	if err := json.Unmarshal(batch, &items); err != nil {
		return nil, "", fmt.Errorf("batch: %w", err)
	}
	for _, k := range []string{"api_key", "token"} {
		if v, ok := obj[k]; ok && string(v) != "null" {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, "", fmt.Errorf("%s: %w", k, err)
			}
			if s != "" {
				batchToken = s
				break
			}
		}
	}
	if v, ok := obj["historical_migration"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &d.historical); err != nil {
			return nil, "", fmt.Errorf("historical_migration: %w", err)
		}
	}
	if v, ok := obj["sent_at"]; ok && string(v) != "null" {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, "", fmt.Errorf("sent_at: %w", err)
		}
		d.hasSentAt, d.sentAt = true, s
	}
	return items, batchToken, nil
}

// requestToken picks the project token: the batch's own, else the one every
// event agrees on. A personal key (phx_) is refused because a leaked personal
// key in client code is a security problem PostHog guards against at the edge.
func requestToken(batchToken string, wires []wireEvent) (string, int, string) {
	token := batchToken
	if token == "" {
		for i := range wires {
			t := eventToken(&wires[i])
			if t == "" {
				continue
			}
			if token != "" && t != token {
				return "", http.StatusUnauthorized, msgMultipleTokens
			}
			token = t
		}
	}
	if token == "" {
		return "", http.StatusUnauthorized, msgNoToken
	}
	token = strings.TrimSpace(token)
	if reason := invalidTokenReason(token); reason != "" {
		return "", http.StatusUnauthorized, "API key is not valid: " + reason
	}
	return token, 0, ""
}

func eventToken(w *wireEvent) string {
	for _, p := range []*string{w.Token, w.APIKey, w.DollarToken} {
		if p != nil && *p != "" {
			return *p
		}
	}
	if t, ok := w.Properties["token"].(string); ok {
		return t
	}
	return ""
}

func invalidTokenReason(token string) string {
	switch {
	case token == "":
		return "empty"
	case len(token) > maxTokenLength:
		return "too_long"
	case !isASCII(token):
		return "not_ascii"
	case strings.HasPrefix(token, "phx_"):
		return "personal_api_key"
	case strings.ContainsRune(token, 0):
		return "null_byte"
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// distinctID resolves distinct_id the way capture does: top level (or
// $distinct_id), else properties.distinct_id; any JSON value is stringified;
// null counts as absent; the result is cut to 200 characters.
func distinctID(w *wireEvent) (string, bool) {
	raw := w.DistinctID
	if len(raw) == 0 || string(raw) == "null" {
		raw = w.DollarDistinctID
	}
	if len(raw) == 0 || string(raw) == "null" {
		v, ok := w.Properties["distinct_id"]
		if !ok || v == nil {
			return "", false
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "", false
		}
		raw = b
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			s = buf.String()
		} else {
			s = string(raw)
		}
	}
	if r := []rune(s); len(r) > maxDistinctIDLength {
		s = string(r[:maxDistinctIDLength])
	}
	return s, true
}

// validUUID accepts the textual forms Rust's uuid crate parses: hyphenated,
// simple (32 hex digits), braced and urn:uuid:.
func validUUID(s string) bool {
	s = strings.ToLower(s)
	switch {
	case strings.HasPrefix(s, "urn:uuid:"):
		s = strings.TrimPrefix(s, "urn:uuid:")
	case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
		s = s[1 : len(s)-1]
	}
	switch len(s) {
	case 32:
		return allHex(s)
	case 36:
		for _, i := range []int{8, 13, 18, 23} {
			if s[i] != '-' {
				return false
			}
		}
		return allHex(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
	}
	return false
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
