package capture

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	v1U1 = "01890a5d-ac96-774b-bcce-b302099a8057"
	v1U2 = "01890a5d-ac96-774b-bcce-b302099a8058"
)

var v1Now = time.Date(2026, 3, 19, 14, 30, 0, 0, time.UTC)

func v1Req(body string, hdr ...string) Request {
	h := http.Header{}
	h.Set("Authorization", "Bearer phc_v1token")
	h.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			h.Del(hdr[i])
		} else {
			h.Set(hdr[i], hdr[i+1])
		}
	}
	return Request{Method: "POST", Path: V1Path, Header: h, Body: []byte(body), Now: v1Now}
}

// v1Batch builds a body from events given as JSON objects.
func v1Batch(createdAt string, events ...string) string {
	return `{"created_at":"` + createdAt + `","batch":[` + strings.Join(events, ",") + `]}`
}

func v1Ev(uuid, extra string) string {
	s := `{"event":"e","uuid":"` + uuid + `","distinct_id":"d","timestamp":"2026-03-19T14:29:58.123Z"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func decodeOne(t *testing.T, r Request) map[string]any {
	t.Helper()
	b, res, err := DecodeV1(r, Options{})
	require.NoError(t, err)
	require.Len(t, b.Events, 1, "results: %v", res)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b.Events[0], &m), string(b.Events[0]))
	return m
}

func TestDecodeV1Mapping(t *testing.T) {
	now := "2026-03-19T14:30:00.000Z"
	cases := []struct {
		name   string
		req    Request
		want   map[string]any // top-level keys
		props  map[string]any // expected properties (subset)
		absent []string       // property keys that must be absent
	}{
		{"plain event, no skew", v1Req(v1Batch(now, v1Ev(v1U1, `"properties":{"a":1,"$set":{"x":1}}`))),
			map[string]any{"uuid": v1U1, "event": "e", "distinct_id": "d", "timestamp": "2026-03-19T14:29:58.123Z"},
			map[string]any{"a": 1.0, "$set": map[string]any{"x": 1.0}}, []string{"$session_id", "$lib"}},
		{"skew from created_at (client 1h ahead)", v1Req(v1Batch("2026-03-19T15:30:00.000Z", v1Ev(v1U1, ""))),
			map[string]any{"timestamp": "2026-03-19T13:29:58.123Z"}, map[string]any{}, nil},
		{"PostHog-Request-Timestamp wins over created_at", v1Req(v1Batch("2026-03-19T15:30:00.000Z", v1Ev(v1U1, "")), "PostHog-Request-Timestamp", "2026-03-19T14:30:10Z"),
			map[string]any{"timestamp": "2026-03-19T14:29:48.123Z"}, map[string]any{}, nil},
		{"disable_skew_correction keeps the timestamp", v1Req(v1Batch("2026-03-19T15:30:00.000Z", v1Ev(v1U1, `"options":{"disable_skew_correction":true}`))),
			map[string]any{"timestamp": "2026-03-19T14:29:58.123Z"}, map[string]any{"$ignore_sent_at": true}, nil},
		{"future clamp to now", v1Req(v1Batch(now, `{"event":"e","uuid":"`+v1U1+`","distinct_id":"d","timestamp":"2026-03-21T00:00:00Z"}`)),
			map[string]any{"timestamp": "2026-03-19T14:30:00.000Z"}, map[string]any{}, nil},
		{"session and window ids into properties", v1Req(v1Batch(now, v1Ev(v1U1, `"session_id":"s1","window_id":"w1","properties":{}`))),
			map[string]any{}, map[string]any{"$session_id": "s1", "$window_id": "w1"}, nil},
		{"null session id is absent", v1Req(v1Batch(now, v1Ev(v1U1, `"session_id":null`))),
			map[string]any{}, map[string]any{}, []string{"$session_id"}},
		{"options mapped and coerced", v1Req(v1Batch(now, v1Ev(v1U1, `"options":{"cookieless_mode":"1","process_person_profile":false,"product_tour_id":42,"unknown":[1]},"properties":{"k":"v"}`))),
			map[string]any{}, map[string]any{"k": "v", "$cookieless_mode": true, "$process_person_profile": false, "$product_tour_id": "42"}, []string{"$ignore_sent_at"}},
		{"sdk info gives $lib", v1Req(v1Batch(now, v1Ev(v1U1, "")), "PostHog-Sdk-Info", "posthog-node/5.70.0"),
			map[string]any{}, map[string]any{"$lib": "posthog-node", "$lib_version": "5.70.0"}, nil},
		{"distinct_id and uuid trimmed, uuid canonical", v1Req(v1Batch(now, `{"event":"e","uuid":" `+strings.ToUpper(v1U1)+` ","distinct_id":" u1 ","timestamp":"2026-03-19T14:29:58Z"}`)),
			map[string]any{"uuid": v1U1, "distinct_id": "u1"}, map[string]any{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := decodeOne(t, tc.req)
			for k, v := range tc.want {
				require.Equal(t, v, m[k], k)
			}
			props, _ := m["properties"].(map[string]any)
			for k, v := range tc.props {
				require.Equal(t, v, props[k], k)
			}
			for _, k := range tc.absent {
				require.NotContains(t, props, k)
			}
			require.NotContains(t, m, "sent_at")
		})
	}
}

func TestDecodeV1PerEventDrops(t *testing.T) {
	now := "2026-03-19T14:30:00Z"
	cases := []struct {
		name, event, details string
	}{
		{"empty event name", `{"event":"","uuid":"` + v1U2 + `","distinct_id":"d","timestamp":"2026-03-19T14:29:58Z"}`, "missing_event_name"},
		{"event name too long", `{"event":"` + strings.Repeat("x", 201) + `","uuid":"` + v1U2 + `","distinct_id":"d","timestamp":"2026-03-19T14:29:58Z"}`, "event_name_too_long"},
		{"blank distinct_id", `{"event":"e","uuid":"` + v1U2 + `","distinct_id":"  ","timestamp":"2026-03-19T14:29:58Z"}`, "missing_distinct_id"},
		{"distinct_id too large", `{"event":"e","uuid":"` + v1U2 + `","distinct_id":"` + strings.Repeat("d", 201) + `","timestamp":"2026-03-19T14:29:58Z"}`, "distinct_id_too_large"},
		{"bad timestamp", `{"event":"e","uuid":"` + v1U2 + `","distinct_id":"d","timestamp":"yesterday"}`, "invalid_event_timestamp"},
		{"properties not an object", v1Ev(v1U2, `"properties":[1]`), "malformed_event_properties"},
		{"bad option", v1Ev(v1U2, `"options":{"cookieless_mode":"maybe"}`), "invalid_options"},
		{"options not an object", v1Ev(v1U2, `"options":"x"`), "invalid_options"},
		{"performance event", `{"event":"$performance_event","uuid":"` + v1U2 + `","distinct_id":"d","timestamp":"2026-03-19T14:29:58Z"}`, "dropped_performance_event"},
		{"oversized", v1Ev(v1U2, `"properties":{"x":"`+strings.Repeat("y", 2000)+`"}`), "event_too_big"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, res, err := DecodeV1(v1Req(v1Batch(now, v1Ev(v1U1, ""), tc.event)), Options{MaxEventBytes: 1000})
			require.NoError(t, err)
			require.Len(t, b.Events, 1)
			require.Contains(t, string(b.Events[0]), v1U1)
			require.Equal(t, V1Result{Result: V1ResultOK}, res[v1U1])
			require.Equal(t, V1Result{Result: V1ResultDrop, Details: tc.details}, res[v1U2])
		})
	}
}

func v1Gzip(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestDecodeV1RequestErrors(t *testing.T) {
	good := v1Batch("2026-03-19T14:30:00Z", v1Ev(v1U1, ""))
	withBody := func(r Request, b []byte) Request { r.Body = b; return r }
	cases := []struct {
		name   string
		req    Request
		opt    Options
		status int
		code   string
	}{
		{"no authorization", v1Req(good, "Authorization", ""), Options{DefaultToken: "phc_default"}, 401, "missing_authorization"},
		{"not bearer", v1Req(good, "Authorization", "Basic abc"), Options{}, 400, "invalid_header_value"},
		{"personal key", v1Req(good, "Authorization", "Bearer phx_secret"), Options{}, 401, "invalid_api_token"},
		{"not allowed", v1Req(good), Options{AllowedTokens: map[string]bool{"phc_other": true}}, 401, "invalid_api_token"},
		{"wrong content type", v1Req(good, "Content-Type", "text/plain"), Options{}, 415, "unsupported_content_type"},
		{"zstd", v1Req(good, "Content-Encoding", "zstd"), Options{}, 415, "unsupported_encoding"},
		{"br", v1Req(good, "Content-Encoding", "br"), Options{}, 415, "unsupported_encoding"},
		{"bad gzip", v1Req(good, "Content-Encoding", "gzip"), Options{}, 400, "request_decoding_error"},
		{"gzip bomb", withBody(v1Req("", "Content-Encoding", "gzip"), v1Gzip(t, strings.Repeat(" ", V1BodyLimit+10))), Options{}, 413, "payload_too_large"},
		{"empty body", v1Req(""), Options{}, 400, "empty_body"},
		{"bad json", v1Req(`{"created_at":`), Options{}, 400, "request_parsing_error"},
		{"array body", v1Req(`[` + v1Ev(v1U1, "") + `]`), Options{}, 400, "request_parsing_error"},
		{"missing created_at", v1Req(`{"batch":[` + v1Ev(v1U1, "") + `]}`), Options{}, 400, "request_parsing_error"},
		{"missing batch", v1Req(`{"created_at":"2026-03-19T14:30:00Z"}`), Options{}, 400, "request_parsing_error"},
		{"empty batch", v1Req(`{"created_at":"2026-03-19T14:30:00Z","batch":[]}`), Options{}, 400, "empty_batch"},
		{"bad created_at", v1Req(v1Batch("now", v1Ev(v1U1, ""))), Options{}, 400, "invalid_batch"},
		{"missing uuid field", v1Req(v1Batch("2026-03-19T14:30:00Z", `{"event":"e","distinct_id":"d","timestamp":"2026-03-19T14:29:58Z"}`)), Options{}, 400, "request_parsing_error"},
		{"distinct_id not a string", v1Req(v1Batch("2026-03-19T14:30:00Z", `{"event":"e","uuid":"`+v1U1+`","distinct_id":5,"timestamp":"2026-03-19T14:29:58Z"}`)), Options{}, 400, "request_parsing_error"},
		{"empty uuid", v1Req(v1Batch("2026-03-19T14:30:00Z", v1Ev("", ""))), Options{}, 400, "missing_event_uuid"},
		{"invalid uuid", v1Req(v1Batch("2026-03-19T14:30:00Z", v1Ev("nope", ""))), Options{}, 400, "invalid_event_uuid"},
		{"duplicate uuid", v1Req(v1Batch("2026-03-19T14:30:00Z", v1Ev(v1U1, ""), v1Ev(v1U1, ""))), Options{}, 400, "duplicate_event_uuid"},
		{"historical not bool", v1Req(`{"created_at":"2026-03-19T14:30:00Z","historical_migration":"yes","batch":[` + v1Ev(v1U1, "") + `]}`), Options{}, 400, "request_parsing_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeV1(tc.req, tc.opt)
			var ve *V1Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.status, ve.Status, ve.Description)
			require.Equal(t, tc.code, ve.Code, ve.Description)
			require.NotContains(t, ve.Description, "phx_secret")
		})
	}
}

func TestDecodeV1EncodingsAndBatchFields(t *testing.T) {
	body := `{"created_at":"2026-03-19T14:30:00Z","historical_migration":true,"batch":[` + v1Ev(v1U1, "") + `,` + v1Ev(v1U2, "") + `]}`
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	_, _ = zw.Write([]byte(body))
	require.NoError(t, zw.Close())
	for name, r := range map[string]Request{
		"identity": v1Req(body),
		"gzip":     func() Request { r := v1Req("", "Content-Encoding", "gzip"); r.Body = v1Gzip(t, body); return r }(),
		"deflate":  func() Request { r := v1Req("", "Content-Encoding", "deflate"); r.Body = zb.Bytes(); return r }(),
	} {
		t.Run(name, func(t *testing.T) {
			b, res, err := DecodeV1(r, Options{})
			require.NoError(t, err)
			require.Equal(t, "phc_v1token", b.Token)
			require.True(t, b.HistoricalMigration)
			require.Len(t, b.Events, 2)
			require.Equal(t, map[string]V1Result{v1U1: {Result: "ok"}, v1U2: {Result: "ok"}}, res)
		})
	}
}
