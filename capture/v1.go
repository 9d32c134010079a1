package capture

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Capture v1 (POST /i/v1/analytics/events) is PostHog's newer capture
// protocol, opt-in in posthog-go, posthog-python and posthog-node. The
// token travels in "Authorization: Bearer", the body is
// {"created_at", "historical_migration"?, "batch": [event...]}, and the
// answer is 200 {"results": {uuid: {"result", "details"?}}} with a result
// per event, or a non-2xx {"error", "error_description"} for the request.
//
// DecodeV1 turns such a request into the same normalised events Decode
// produces, so the spool and the forwarder (which sends v0 /batch/) need no
// change. The rules follow PostHog's rust/capture v1 handler (src/v1/
// analytics: context.rs for headers, process.rs for validation and skew,
// types.rs for options and the properties it injects) in
// github.com/PostHog/posthog.

// V1Path is the Capture v1 endpoint (also served with a trailing slash).
const V1Path = "/i/v1/analytics/events"

// V1BodyLimit is the body limit for V1Path, the same as /batch.
const V1BodyLimit = BatchBodyLimit

// Limits of PostHog's v1 validation (analytics/constants.rs), in bytes.
const (
	v1MaxEventNameLen  = 200
	v1MaxDistinctIDLen = 200
	v1MaxSDKInfoLen    = 256
)

// The per-event results the SDKs understand.
const (
	V1ResultOK      = "ok"
	V1ResultWarning = "warning"
	V1ResultDrop    = "drop"
	V1ResultRetry   = "retry"
)

// V1Result is one event's entry in the 200 answer. The SDKs re-send only
// "retry"; "drop" is final.
type V1Result struct {
	Result  string `json:"result"`
	Details string `json:"details,omitempty"`
}

// V1Error refuses a whole v1 request: Status is the HTTP status, Code the
// error tag ("error" in the answer, as PostHog names it) and Description
// the human text ("error_description").
type V1Error struct {
	Status      int
	Code        string
	Description string
}

func (e *V1Error) Error() string { return e.Code + ": " + e.Description }

func v1Errorf(status int, code, format string, args ...any) *V1Error {
	return &V1Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// v1Event holds the raw JSON of one batch entry's fields (nil = absent).
type v1Event struct {
	event, uuid, distinctID, timestamp []byte
	sessionID, windowID                []byte
	options, properties                []byte
}

// v1Options are an event's options after PostHog's coercion.
type v1Options struct {
	cookieless, skewOff, personProfile *bool
	productTour                        *string
}

// DecodeV1 decodes, validates and normalises one Capture v1 request. On
// success Batch holds the events to store, and results has an entry for
// every event of the request, keyed by its canonical uuid: "ok" for the
// stored ones, "drop" with the reason for those refused one by one. Only
// answer with results after Batch.Events are durably stored. Every error
// is a *V1Error.
func DecodeV1(r Request, opt Options) (Batch, map[string]V1Result, error) {
	token, err := v1Token(r.Header, opt)
	if err != nil {
		return Batch{}, nil, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != "application/json" {
			return Batch{}, nil, v1Errorf(http.StatusUnsupportedMediaType, "unsupported_content_type",
				"unsupported content type %q: send application/json", ct)
		}
	}
	body, err := v1Body(r)
	if err != nil {
		return Batch{}, nil, err
	}
	if err := r.Reserve.take(DecodeCopies * int64(len(body))); err != nil {
		return Batch{}, nil, err
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	createdAt, historical, events, err := parseV1(body)
	if err != nil {
		return Batch{}, nil, err
	}
	// PostHog measures the client's clock skew with the per-attempt
	// PostHog-Request-Timestamp header; created_at is fixed when the batch
	// is built, so on a retry it would count the retry delay as skew. The
	// agent falls back to created_at for clients that do not send the
	// header (PostHog would refuse them).
	clientTime := createdAt
	if t, ok := parseRFC3339([]byte(strings.TrimSpace(r.Header.Get("PostHog-Request-Timestamp")))); ok {
		clientTime = t
	}
	skew := clientTime.Sub(now)
	inject := sdkInfoProps(r.Header.Get("PostHog-Sdk-Info"))

	results := make(map[string]V1Result, len(events))
	uuids := make([][16]byte, len(events))
	seen := make(map[[16]byte]bool, len(events))
	for i := range events {
		ev := &events[i]
		u, err := v1UUID(ev.uuid, i)
		if err != nil {
			return Batch{}, nil, err
		}
		if seen[u] {
			return Batch{}, nil, v1Errorf(http.StatusBadRequest, "duplicate_event_uuid", "batch[%d]: uuid %s appears more than once in the batch", i, uuidString(u))
		}
		seen[u] = true
		uuids[i] = u
	}

	maxBytes := opt.maxEventBytes()
	size := 0
	for i := range events {
		ev := &events[i]
		size += 256 + len(ev.event) + len(ev.distinctID) + len(ev.properties) + len(ev.sessionID) + len(ev.windowID) + len(inject)
	}
	buf := make([]byte, 0, size)
	var spans [][2]int
	for i := range events {
		key := uuidString(uuids[i])
		start := len(buf)
		var details string
		buf, details = appendV1Event(buf, &events[i], uuids[i], skew, now, inject)
		if details == "" && len(buf)-start > maxBytes {
			details = "event_too_big"
		}
		if details != "" {
			buf = buf[:start]
			results[key] = V1Result{Result: V1ResultDrop, Details: details}
			continue
		}
		spans = append(spans, [2]int{start, len(buf)})
		results[key] = V1Result{Result: V1ResultOK}
	}
	out := make([][]byte, len(spans))
	for i, s := range spans {
		out[i] = buf[s[0]:s[1]:s[1]]
	}
	return Batch{Token: token, HistoricalMigration: historical, Events: out}, results, nil
}

// v1Token reads "Authorization: Bearer <token>" and applies the same shape
// check and allow-list as v0. Unlike v0 there is no fallback to the
// agent's default token: PostHog answers 401 to a v1 request without
// Authorization, and every v1 SDK sends it.
func v1Token(h http.Header, opt Options) (string, error) {
	auth := h.Get("Authorization")
	if auth == "" {
		return "", v1Errorf(http.StatusUnauthorized, "missing_authorization", "no Authorization header: send Authorization: Bearer <project token>")
	}
	if len(auth) <= 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return "", v1Errorf(http.StatusBadRequest, "invalid_header_value", "Authorization must use the Bearer scheme")
	}
	token := strings.TrimSpace(auth[7:])
	if err := CheckToken(token); err != nil {
		return "", v1Errorf(http.StatusUnauthorized, "invalid_api_token", "invalid project token: %v", err)
	}
	if len(opt.AllowedTokens) > 0 && !opt.AllowedTokens[token] {
		return "", v1Errorf(http.StatusUnauthorized, "invalid_api_token", "project token is not in this agent's [ingest] allowed_tokens")
	}
	return token, nil
}

// v1Body undoes Content-Encoding (gzip, or deflate as zlib), bounded by
// V1BodyLimit before and after.
func v1Body(r Request) ([]byte, error) {
	raw := r.Body
	if len(raw) == 0 {
		return nil, v1Errorf(http.StatusBadRequest, "empty_body", "request body is empty")
	}
	if int64(len(raw)) > V1BodyLimit {
		return nil, v1TooBig(int64(len(raw)))
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		out, err := gunzip(raw, V1BodyLimit, V1Path, r.Reserve)
		if isRefused(err) {
			return nil, err
		}
		if err != nil {
			var ce *Error
			if asError(err, &ce) && ce.Status == http.StatusRequestEntityTooLarge {
				return nil, v1Errorf(ce.Status, "payload_too_large", "%s", ce.Message)
			}
			return nil, v1Errorf(http.StatusBadRequest, "request_decoding_error", "%v", err)
		}
		return out, nil
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, v1Errorf(http.StatusBadRequest, "request_decoding_error", "invalid deflate (zlib) data: %v", err)
		}
		defer zr.Close()
		out, err := ReadLimited(zr, int64(len(raw))*8, V1BodyLimit, r.Reserve)
		if isRefused(err) {
			return nil, err
		}
		if err != nil {
			return nil, v1Errorf(http.StatusBadRequest, "request_decoding_error", "invalid deflate (zlib) data: %v", err)
		}
		if n := int64(len(out)); n > V1BodyLimit {
			return nil, v1TooBig(n)
		}
		return out, nil
	}
	return nil, v1Errorf(http.StatusUnsupportedMediaType, "unsupported_encoding",
		"Content-Encoding %q is not supported by this agent (it takes gzip or deflate; PostHog also takes zstd and br)", r.Header.Get("Content-Encoding"))
}

func v1TooBig(n int64) *V1Error {
	return v1Errorf(http.StatusRequestEntityTooLarge, "payload_too_large", "payload is over the %d-byte limit for %s (got %d bytes or more)", V1BodyLimit, V1Path, n)
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func v1Parse(format string, args ...any) *V1Error {
	return v1Errorf(http.StatusBadRequest, "request_parsing_error", format, args...)
}

// parseV1 validates the body as JSON and reads the batch object, with
// serde's rules for PostHog's Batch and Event structs: required fields,
// exact key names, no field twice, unknown keys ignored.
func parseV1(b []byte) (createdAt time.Time, historical bool, events []v1Event, err error) {
	if off, ok := validUTF8(b); !ok {
		return createdAt, false, nil, v1Parse("invalid UTF-8 in request body at byte %d", off)
	}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		if i >= len(b) {
			return createdAt, false, nil, v1Errorf(http.StatusBadRequest, "empty_body", "request body has no JSON")
		}
		return createdAt, false, nil, v1Parse("body is not a JSON object with created_at and batch")
	}
	it, err := newObjIter(b, i, 1)
	if err != nil {
		return createdAt, false, nil, v1Parse("%v", err)
	}
	var created, hist, batch []byte
	for {
		m, ok, err := it.next()
		if err != nil {
			return createdAt, false, nil, v1Parse("%v", err)
		}
		if !ok {
			break
		}
		var dst *[]byte
		switch string(m.keyBytes()) {
		case "created_at":
			dst = &created
		case "historical_migration":
			dst = &hist
		case "batch":
			dst = &batch
		default:
			continue
		}
		if *dst != nil {
			return createdAt, false, nil, v1Parse("duplicate field %s", m.key)
		}
		*dst = m.val
	}
	if j := skipWS(b, it.i); j < len(b) {
		return createdAt, false, nil, v1Parse("invalid JSON at byte %d: unexpected %s after the top-level value", j, describe(b, j))
	}
	switch {
	case created == nil:
		return createdAt, false, nil, v1Parse("missing field created_at")
	case created[0] != '"':
		return createdAt, false, nil, v1Parse("created_at is %s, not a string", jsonKind(created))
	}
	switch string(hist) {
	case "", "false":
	case "true":
		historical = true
	default:
		return createdAt, false, nil, v1Parse("historical_migration is %s, not a boolean", jsonKind(hist))
	}
	switch {
	case batch == nil:
		return createdAt, false, nil, v1Parse("missing field batch")
	case batch[0] != '[':
		return createdAt, false, nil, v1Parse("batch is %s, not an array", jsonKind(batch))
	}
	ait, err := newArrIter(batch, 0, 2)
	if err != nil {
		return createdAt, false, nil, v1Parse("%v", err)
	}
	for n := 0; ; n++ {
		val, _, ok, err := ait.next()
		if err != nil {
			return createdAt, false, nil, v1Parse("%v", err)
		}
		if !ok {
			break
		}
		ev, err := parseV1Event(val, n)
		if err != nil {
			return createdAt, false, nil, err
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return createdAt, false, nil, v1Errorf(http.StatusBadRequest, "empty_batch", "request batch is empty")
	}
	ca := decodeString(created)
	t, ok := parseRFC3339([]byte(ca))
	if !ok {
		return createdAt, false, nil, v1Errorf(http.StatusBadRequest, "invalid_batch", "created_at is not valid RFC 3339: %s", quoteShort([]byte(ca)))
	}
	return t, historical, events, nil
}

func parseV1Event(b []byte, n int) (v1Event, error) {
	var ev v1Event
	if b[0] != '{' {
		return ev, v1Parse("batch[%d] is %s, not an event object", n, jsonKind(b))
	}
	it, err := newObjIter(b, 0, 3)
	if err != nil {
		return ev, v1Parse("batch[%d]: %v", n, err)
	}
	for {
		m, ok, err := it.next()
		if err != nil {
			return ev, v1Parse("batch[%d]: %v", n, err)
		}
		if !ok {
			break
		}
		var dst *[]byte
		str, nullable := false, false
		switch string(m.keyBytes()) {
		case "event":
			dst, str = &ev.event, true
		case "uuid":
			dst, str = &ev.uuid, true
		case "distinct_id":
			dst, str = &ev.distinctID, true
		case "timestamp":
			dst, str = &ev.timestamp, true
		case "session_id":
			dst, str, nullable = &ev.sessionID, true, true
		case "window_id":
			dst, str, nullable = &ev.windowID, true, true
		case "options":
			dst = &ev.options
		case "properties":
			dst = &ev.properties
		default:
			continue
		}
		if *dst != nil {
			return ev, v1Parse("batch[%d]: duplicate field %s", n, m.key)
		}
		v := m.val
		if str && v[0] != '"' && !(nullable && isNull(v)) {
			return ev, v1Parse("batch[%d]: %s is %s, not a string", n, m.key, jsonKind(v))
		}
		*dst = v
	}
	for _, f := range []struct {
		name string
		v    []byte
	}{{"event", ev.event}, {"uuid", ev.uuid}, {"distinct_id", ev.distinctID}, {"timestamp", ev.timestamp}} {
		if f.v == nil {
			return ev, v1Parse("batch[%d]: missing field %s", n, f.name)
		}
	}
	if ev.sessionID != nil && isNull(ev.sessionID) {
		ev.sessionID = nil
	}
	if ev.windowID != nil && isNull(ev.windowID) {
		ev.windowID = nil
	}
	return ev, nil
}

// v1UUID parses an event's uuid. PostHog keys the answer by uuid, so a
// missing or invalid one refuses the whole request (400), as it does.
func v1UUID(raw []byte, i int) ([16]byte, error) {
	s := bytes.TrimSpace(stringContent(raw, bytes.IndexByte(raw, '\\') >= 0))
	if len(s) == 0 {
		return [16]byte{}, v1Errorf(http.StatusBadRequest, "missing_event_uuid", "batch[%d]: event submitted without a uuid", i)
	}
	u, ok := parseUUID(s)
	if !ok {
		return [16]byte{}, v1Errorf(http.StatusBadRequest, "invalid_event_uuid", "batch[%d]: uuid %s is not a valid UUID", i, quoteShort(s))
	}
	return u, nil
}

func uuidString(u [16]byte) string {
	b := appendUUID(nil, u)
	return string(b[1 : len(b)-1])
}

// appendV1Event appends the normalised v0 event, or returns a drop reason
// (PostHog's detail tags) and leaves dst to be truncated by the caller.
func appendV1Event(dst []byte, ev *v1Event, u [16]byte, skew time.Duration, now time.Time, inject []byte) ([]byte, string) {
	name := decodeString(ev.event)
	switch {
	case name == "$performance_event":
		return dst, "dropped_performance_event"
	case name == "":
		return dst, "missing_event_name"
	case len(name) > v1MaxEventNameLen:
		return dst, "event_name_too_long"
	}
	did := strings.TrimSpace(decodeString(ev.distinctID))
	switch {
	case did == "":
		return dst, "missing_distinct_id"
	case len(did) > v1MaxDistinctIDLen:
		return dst, "distinct_id_too_large"
	}
	ts, ok := parseRFC3339(stringContent(ev.timestamp, bytes.IndexByte(ev.timestamp, '\\') >= 0))
	if !ok {
		return dst, "invalid_event_timestamp"
	}
	props := ev.properties
	if props == nil {
		props = []byte("{}")
	}
	if props[0] != '{' {
		return dst, "malformed_event_properties"
	}
	opts, ok := parseV1Options(ev.options)
	if !ok {
		return dst, "invalid_options"
	}

	dst = append(dst, `{"uuid":`...)
	dst = appendUUID(dst, u)
	dst = append(dst, `,"event":`...)
	dst = append(dst, ev.event...)
	dst = append(dst, `,"distinct_id":`...)
	dst = appendString(dst, []byte(did))
	dst = append(dst, `,"timestamp":`...)
	dst = appendTimestamp(dst, v1Time(ts, skew, now, opts.skewOff != nil && *opts.skewOff))
	dst = append(dst, `,"properties":`...)

	// PostHog appends these after the client's keys (later keys win).
	extra := make([]byte, 0, 128)
	add := func(key string, val []byte) {
		if len(extra) > 0 {
			extra = append(extra, ',')
		}
		extra = append(extra, '"')
		extra = append(extra, key...)
		extra = append(extra, `":`...)
		extra = append(extra, val...)
	}
	if ev.sessionID != nil {
		add("$session_id", ev.sessionID)
	}
	if ev.windowID != nil {
		add("$window_id", ev.windowID)
	}
	if opts.cookieless != nil {
		add("$cookieless_mode", boolJSON(*opts.cookieless))
	}
	if opts.skewOff != nil {
		add("$ignore_sent_at", boolJSON(*opts.skewOff))
	}
	if opts.productTour != nil {
		add("$product_tour_id", appendString(nil, []byte(*opts.productTour)))
	}
	if opts.personProfile != nil {
		add("$process_person_profile", boolJSON(*opts.personProfile))
	}
	if len(inject) > 0 {
		if len(extra) > 0 {
			extra = append(extra, ',')
		}
		extra = append(extra, inject...)
	}
	if len(extra) == 0 {
		dst = append(dst, props...)
	} else {
		p := bytes.TrimRight(props, " \t\r\n")
		dst = append(dst, p[:len(p)-1]...)
		if skipWS(p, 1) < len(p)-1 { // the object has members
			dst = append(dst, ',')
		}
		dst = append(dst, extra...)
		dst = append(dst, '}')
	}
	return append(dst, '}'), ""
}

// v1Time is process.rs's normalize_timestamp: the event time minus the
// client's clock skew, clamped to now when over 23h ahead; untouched when
// the event disables skew correction.
func v1Time(ts time.Time, skew time.Duration, now time.Time, skewOff bool) time.Time {
	t := ts
	if !skewOff {
		t = ts.Add(-skew)
		if t.Sub(now) > futureCutoff {
			t = now
		}
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

func boolJSON(b bool) []byte {
	if b {
		return []byte("true")
	}
	return []byte("false")
}

// parseV1Options coerces options as PostHog's RawOptions::validate does:
// null or absent is none; booleans also from "true"/"false"/"1"/"0" and
// numbers; product_tour_id from a string or an integer; any other value,
// or options that are not an object, drop the event.
func parseV1Options(raw []byte) (v1Options, bool) {
	var o v1Options
	if raw == nil || isNull(raw) {
		return o, true
	}
	if raw[0] != '{' {
		return o, false
	}
	it, err := newObjIter(raw, 0, 3)
	if err != nil {
		return o, false
	}
	for {
		m, ok, err := it.next()
		if err != nil {
			return o, false
		}
		if !ok {
			return o, true
		}
		v := m.val
		if isNull(v) {
			continue
		}
		var dst **bool
		switch string(m.keyBytes()) {
		case "cookieless_mode":
			dst = &o.cookieless
		case "disable_skew_correction":
			dst = &o.skewOff
		case "process_person_profile":
			dst = &o.personProfile
		case "product_tour_id":
			s, ok := coerceString(v)
			if !ok {
				return o, false
			}
			o.productTour = &s
			continue
		default:
			continue
		}
		b, ok := coerceBool(v)
		if !ok {
			return o, false
		}
		*dst = &b
	}
}

func coerceBool(v []byte) (bool, bool) {
	switch v[0] {
	case 't':
		return true, true
	case 'f':
		return false, true
	case '"':
		switch strings.ToLower(strings.TrimSpace(decodeString(v))) {
		case "true", "1":
			return true, true
		case "false", "0":
			return false, true
		}
		return false, false
	case '{', '[':
		return false, false
	}
	// A number: nonzero is true.
	var f float64
	if _, err := fmt.Sscan(string(v), &f); err != nil {
		return false, false
	}
	return f != 0, true
}

func coerceString(v []byte) (string, bool) {
	if v[0] == '"' {
		return decodeString(v), true
	}
	if v[0] == '-' || (v[0] >= '0' && v[0] <= '9') {
		if bytes.ContainsAny(v, ".eE") {
			return "", false // serde's as_i64/as_u64 refuse non-integers
		}
		return string(v), true
	}
	return "", false
}

// sdkInfoProps turns "PostHog-Sdk-Info: <lib>/<version>" into the $lib and
// $lib_version properties PostHog adds (split at the last '/'; nothing for
// a malformed or oversized value). posthog-node moves $lib out of the
// event's properties into this header, so without it the events would
// reach PostHog with no library.
func sdkInfoProps(info string) []byte {
	if info == "" || len(info) > v1MaxSDKInfoLen || !utf8.ValidString(info) {
		return nil
	}
	i := strings.LastIndexByte(info, '/')
	if i < 0 {
		return nil
	}
	lib, ver := strings.TrimSpace(info[:i]), strings.TrimSpace(info[i+1:])
	if lib == "" || ver == "" {
		return nil
	}
	out := []byte(`"$lib":`)
	out = appendString(out, []byte(lib))
	out = append(out, `,"$lib_version":`...)
	return appendString(out, []byte(ver))
}
