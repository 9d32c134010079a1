package capture

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDistinctIDChars is capture-rs's cap; longer ids are cut, not refused.
const maxDistinctIDChars = 200

// propsInfo holds the few properties capture looks at. Properties are
// otherwise passed through untouched, so they are scanned only when a
// bytes.Contains pre-check says a wanted key may be there.
type propsInfo struct {
	scanned        bool
	token          []byte // raw value of properties.token
	distinctID     []byte // raw value of properties.distinct_id
	ignoreSentAt   bool
	cookieless     []byte // raw value of properties.$cookieless_mode
	hasCookieless  bool
	hasDistinctID  bool
	hasStringToken bool
}

var (
	keyToken        = []byte(`"token"`)
	keyDistinctID   = []byte(`"distinct_id"`)
	keyIgnoreSentAt = []byte(`"$ignore_sent_at"`)
	keyCookieless   = []byte(`"$cookieless_mode"`)
)

// mayHave is the cheap pre-check: a key can only be present if its quoted
// name occurs. (A key spelled with escapes, "\u0074oken", is missed; no SDK
// writes keys that way, and scanning every event's properties to catch it
// would cost more than the rest of decoding.)
func (e *rawEvent) mayHave(key []byte) bool {
	return e.properties != nil && bytes.Contains(e.properties, key)
}

func (e *rawEvent) lookupProps() *propsInfo {
	p := &e.props
	if p.scanned || e.properties == nil {
		return p
	}
	p.scanned = true
	it, err := newObjIter(e.properties, 0, 1)
	if err != nil {
		return p // cannot happen: validated when the body was parsed
	}
	for {
		m, ok, err := it.next()
		if err != nil || !ok {
			return p
		}
		// Later duplicates win, as in the map capture-rs decodes into.
		switch string(m.keyBytes()) {
		case "token":
			p.token, p.hasStringToken = m.val, m.val[0] == '"'
		case "distinct_id":
			p.distinctID, p.hasDistinctID = m.val, !isNull(m.val)
		case "$ignore_sent_at":
			p.ignoreSentAt = string(m.val) == "true"
		case "$cookieless_mode":
			p.cookieless, p.hasCookieless = m.val, true
		}
	}
}

// tokenBytes returns the event's own token: the top-level field, else a
// string properties.token; nil when it has none.
func (e *rawEvent) tokenBytes() []byte {
	if e.token != nil {
		return stringContent(e.token, bytes.IndexByte(e.token, '\\') >= 0)
	}
	if e.mayHave(keyToken) {
		if p := e.lookupProps(); p.hasStringToken {
			return stringContent(p.token, bytes.IndexByte(p.token, '\\') >= 0)
		}
	}
	return nil
}

// resolveToken picks the request's project token as capture-rs does (the
// batch object's api_key wins; otherwise every event that names a token must
// name the same one), then falls back to the configured default, and
// applies the shape check and the allow-list. Messages never echo a token:
// a mistaken one may be a personal API key, which is a secret.
func resolveToken(req *request, opt Options) (string, error) {
	token := req.batchToken
	if token == "" {
		var first []byte
		firstAt := ""
		for i := range req.events {
			ev := &req.events[i]
			t := ev.tokenBytes()
			if len(t) == 0 {
				continue
			}
			if first == nil {
				first, firstAt = t, ev.where()
			} else if !bytes.Equal(t, first) {
				return "", errorf(http.StatusUnauthorized, "%s and %s carry different project tokens; send one project's events per request", firstAt, ev.where())
			}
		}
		token = string(first)
	}
	if token == "" {
		token = opt.DefaultToken
	}
	if token == "" {
		return "", errorf(http.StatusUnauthorized, "no project token: send api_key in the body (or token on each event), or configure [posthog] api_key on the agent")
	}
	if err := opt.Admit(token); err != nil {
		return "", errorf(http.StatusUnauthorized, "%v", err)
	}
	return token, nil
}

// normalise builds each event's output JSON: uuid, event, distinct_id,
// timestamp, then properties, $set and $set_once when present. All events
// go into one buffer, sliced at the end, so a batch costs one allocation.
func normalise(req *request, now time.Time, opt Options) ([][]byte, error) {
	maxBytes := opt.maxEventBytes()
	size := 0
	for i := range req.events {
		ev := &req.events[i]
		size += 160 + len(ev.event) + len(ev.distinctID) + len(ev.properties) + len(ev.set) + len(ev.setOnce)
	}
	buf := make([]byte, 0, size)
	ends := make([]int, len(req.events))
	for i := range req.events {
		ev := &req.events[i]
		start := len(buf)
		if !ev.engage && len(ev.event) == 2 { // `""`
			return nil, badRequest("%s: missing event name (event is empty)", ev.where())
		}
		if ev.mayHave(keyCookieless) {
			if p := ev.lookupProps(); p.hasCookieless && string(p.cookieless) != "true" && string(p.cookieless) != "false" {
				return nil, badRequest("%s: properties.$cookieless_mode is %s, not a boolean", ev.where(), jsonKind(p.cookieless))
			}
		}

		buf = append(buf, `{"uuid":`...)
		u := ev.uuid
		if !ev.hasUUID {
			var err error
			if u, err = newUUIDv7(); err != nil {
				return nil, errorf(http.StatusServiceUnavailable, "%s: minting a uuid failed: %v", ev.where(), err)
			}
		}
		buf = appendUUID(buf, u)

		buf = append(buf, `,"event":`...)
		if ev.engage {
			buf = append(buf, `"$identify"`...)
		} else {
			buf = append(buf, ev.event...)
		}

		buf = append(buf, `,"distinct_id":`...)
		didStart := len(buf)
		did := ev.distinctID
		if did == nil && ev.mayHave(keyDistinctID) {
			if p := ev.lookupProps(); p.hasDistinctID {
				did = p.distinctID
			}
		}
		var ok bool
		if buf, ok = appendDistinctID(buf, did); !ok {
			return nil, badRequest("%s: missing distinct_id (null, empty or absent, also in properties)", ev.where())
		}

		sentAt, hasSentAt := req.sentAt, req.hasSentAt
		if hasSentAt && ev.mayHave(keyIgnoreSentAt) && ev.lookupProps().ignoreSentAt {
			hasSentAt = false
		}
		buf = append(buf, `,"timestamp":`...)
		buf = appendTimestamp(buf, eventTime(ev.timestamp, ev.offset, ev.hasOffset, sentAt, hasSentAt, now))

		extra := ""
		if ev.sendFlags && opt.FlagProperties != nil {
			extra = opt.FlagProperties(distinctIDString(buf[didStart:]), ev.groups())
		}
		if ev.properties != nil || extra != "" {
			// Later keys win in PostHog's decoding, so the agent's flag
			// values go last.
			buf = append(buf, `,"properties":`...)
			buf = appendProperties(buf, ev.properties, extra)
		}
		if ev.set != nil {
			buf = append(buf, `,"$set":`...)
			buf = append(buf, ev.set...)
		}
		if ev.setOnce != nil {
			buf = append(buf, `,"$set_once":`...)
			buf = append(buf, ev.setOnce...)
		}
		buf = append(buf, '}')
		if n := len(buf) - start; n > maxBytes {
			return nil, errorf(http.StatusRequestEntityTooLarge, "%s: event is %d bytes, over the %d-byte limit", ev.where(), n, maxBytes)
		}
		ends[i] = len(buf)
	}
	return splitEvents(buf, ends), nil
}

// splitEvents slices buf, which holds events back to back, at ends. Each
// event's capacity is capped, so appending to one cannot overwrite the
// next (Batch.Events promises that).
func splitEvents(buf []byte, ends []int) [][]byte {
	events := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		events[i] = buf[start:end:end]
		start = end
	}
	return events
}

// appendProperties appends the properties object props (nil = {}) with
// extra, the inside of an object, added after its own members; PostHog
// decodes later keys over earlier ones, so extra wins. v0 adds the
// agent's flag values this way, v1 the properties PostHog's v1 handler
// injects. props is a validated object, so it has members exactly when
// something other than white space stands between its braces.
func appendProperties[T string | []byte](dst, props []byte, extra T) []byte {
	if len(extra) == 0 {
		return append(dst, props...)
	}
	p := bytes.TrimRight(props, " \t\r\n")
	if len(p) == 0 {
		p = []byte("{}")
	}
	dst = append(dst, p[:len(p)-1]...)
	if skipWS(p, 1) < len(p)-1 {
		dst = append(dst, ',')
	}
	dst = append(dst, extra...)
	return append(dst, '}')
}

// appendDistinctID appends a distinct_id as capture-rs stringifies it:
// strings as they are, other values as their JSON text; NUL becomes U+FFFD
// (ClickHouse and Postgres reject NUL); more than 200 characters are cut.
// It reports false when the id is missing: absent, null, empty or blank.
func appendDistinctID(dst []byte, raw []byte) ([]byte, bool) {
	if raw == nil || isNull(raw) {
		return dst, false
	}
	var s []byte
	switch raw[0] {
	case '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			s = raw[1 : len(raw)-1]
			if len(s) <= maxDistinctIDChars { // fast path: bytes bound chars
				if isBlank(s) {
					return dst, false
				}
				return append(dst, raw...), true
			}
		} else {
			s = []byte(strings.ReplaceAll(decodeString(raw), "\x00", "\uFFFD"))
		}
	case '{', '[':
		var b bytes.Buffer
		_ = json.Compact(&b, raw) // raw was validated
		s = b.Bytes()
	default: // number or boolean: its literal text
		dst = append(dst, '"')
		dst = append(dst, raw...)
		return append(dst, '"'), true
	}
	if isBlank(s) {
		return dst, false
	}
	if utf8.RuneCount(s) > maxDistinctIDChars {
		cut, n := 0, 0
		for n < maxDistinctIDChars {
			_, size := utf8.DecodeRune(s[cut:])
			cut += size
			n++
		}
		s = s[:cut]
	}
	return appendString(dst, s), true
}

// isBlank is Rust's str::trim().is_empty(): only Unicode white space.
func isBlank(s []byte) bool { return len(bytes.TrimSpace(s)) == 0 }

// distinctIDString decodes the distinct_id just written at the start of b.
func distinctIDString(b []byte) string {
	end := 1
	for end < len(b) && b[end] != '"' {
		if b[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(b) {
		return ""
	}
	return decodeString(b[:end+1])
}

// groups reads properties.$groups ({type: key}) for flag evaluation.
func (e *rawEvent) groups() map[string]string {
	if !e.mayHave([]byte(`"$groups"`)) {
		return nil
	}
	var p struct {
		Groups map[string]any `json:"$groups"`
	}
	if json.Unmarshal(e.properties, &p) != nil || len(p.Groups) == 0 {
		return nil
	}
	out := make(map[string]string, len(p.Groups))
	for k, v := range p.Groups {
		switch x := v.(type) {
		case string:
			out[k] = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			out[k] = string(b)
		}
	}
	return out
}
