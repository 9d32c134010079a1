package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

const nowStr = "2024-06-01T12:00:00.000Z"

func post(path, body string) Request {
	return Request{Method: "POST", Path: path, Body: []byte(body), Header: http.Header{}, Query: url.Values{}, Now: now}
}

func with(r Request, mutate func(*Request)) Request {
	mutate(&r)
	return r
}

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func b64(s []byte) string { return base64.StdEncoding.EncodeToString(s) }

// decoded unmarshals every output event, checking each is valid JSON.
func decoded(t testing.TB, b Batch) []map[string]any {
	out := make([]map[string]any, len(b.Events))
	for i, e := range b.Events {
		d := json.NewDecoder(bytes.NewReader(e))
		d.UseNumber()
		require.NoError(t, d.Decode(&out[i]), "event %d: %s", i, e)
	}
	return out
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		path  string
		limit int64
		ok    bool
	}{
		{"/batch", 20 << 20, true},
		{"/batch/", 20 << 20, true},
		{"/e", 2 << 20, true},
		{"/e/", 2 << 20, true},
		{"/i/v0/e", 2 << 20, true},
		{"/i/v0/e/", 2 << 20, true},
		{"/capture", 2 << 20, true},
		{"/capture/", 2 << 20, true},
		{"/track", 2 << 20, true},
		{"/track/", 2 << 20, true},
		{"/engage", 2 << 20, true},
		{"/engage/", 2 << 20, true},
		{"/batch//", 0, false},
		{"/batches", 0, false},
		{"/", 0, false},
		{"", 0, false},
		{"/s/", 0, false},
		{"/flags/", 0, false},
		{"/i/v1/analytics/events", 0, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			limit, ok := Route(tc.path)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.limit, limit)
		})
	}
}

// TestDecodeOutputBytes pins the exact normalised form: field order, canonical
// uuid, UTC millisecond timestamp, properties byte-for-byte (whitespace,
// $lib, $groups), $set/$set_once kept, unknown keys and sent_at/offset gone.
func TestDecodeOutputBytes(t *testing.T) {
	body := `{"api_key":"phc_test","batch":[{
		"type":"capture","library":"posthog-python","library_version":"7.0","send_feature_flags":true,
		"event":"signed up","distinct_id":"user-1","uuid":"0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B",
		"timestamp":"2024-06-01T13:59:58.5+02:00",
		"properties":{ "$lib": "posthog-python", "$groups": {"company": "acme"}, "plan":"pro" },
		"$set":{"email":"a@b.c"},"$set_once":{"first":"x"}}]}`
	b, err := Decode(post("/batch/", body), Options{})
	require.NoError(t, err)
	require.Equal(t, "phc_test", b.Token)
	require.False(t, b.HistoricalMigration)
	require.Len(t, b.Events, 1)
	require.Equal(t, `{"uuid":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","event":"signed up","distinct_id":"user-1","timestamp":"2024-06-01T11:59:58.500Z",`+
		`"properties":{ "$lib": "posthog-python", "$groups": {"company": "acme"}, "plan":"pro" },"$set":{"email":"a@b.c"},"$set_once":{"first":"x"}}`,
		string(b.Events[0]))
}

func TestDecode(t *testing.T) {
	const one = `{"event":"e1","distinct_id":"u1","token":"phc_a"}`
	const arr = `[{"event":"e1","distinct_id":"u1","token":"phc_a"},{"event":"e2","distinct_id":"u2"}]`
	gzipped := gz(t, arr)
	lzSmall := "NobwRApgbhB2AuYBcYAkAHAhgc2gSwgHcwAaMAEzwGd49YBjeAfT3OTAFcqIAnAWgCMpMOh4B7dL1oQqycPDEBrOO3QALekwA2AL2Gp6HHjzjMjW9mvjx0VJAHp7EAB6YAtui0QAdPTFv7AB+AfgBHAF5AXg3AAD2wAF84gF0gA="
	lzBig, err := os.ReadFile("testdata/lz64-40-events.txt")
	require.NoError(t, err)
	// "[" + 3 MiB of spaces + "]", compressed by lz-string 1.5.0 to 4 KiB.
	lzBomb, err := os.ReadFile("testdata/lz64-bomb-3MiB.txt")
	require.NoError(t, err)
	// 3 MiB of spaces gzips to a few KiB: a decompression bomb for /e.
	bomb := gz(t, `[`+strings.Repeat(" ", 3<<20)+`]`)

	cases := []struct {
		name   string
		req    Request
		opt    Options
		status int    // 0: success
		msg    string // fragment of the error message
		check  func(t *testing.T, b Batch, ev []map[string]any)
	}{
		// --- encodings
		{name: "gzip by Content-Encoding", req: with(post("/batch/", ""), func(r *Request) {
			r.Body = gzipped
			r.Header.Set("Content-Encoding", "gzip")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Len(t, ev, 2)
			require.Equal(t, "e2", ev[1]["event"])
		}},
		{name: "gzip by ?compression=gzip-js", req: with(post("/e/", ""), func(r *Request) {
			r.Body = gzipped
			r.Query.Set("compression", "gzip-js")
			r.Header.Set("Content-Type", "text/plain")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "gzip by magic bytes without any hint", req: with(post("/i/v0/e/", ""), func(r *Request) {
			r.Body = gzipped
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "gzip hint on a plain JSON body is lenient", req: with(post("/batch/", arr), func(r *Request) {
			r.Header.Set("Content-Encoding", "gzip")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "bad gzip", req: with(post("/batch/", ""), func(r *Request) {
			r.Body = append([]byte{0x1f, 0x8b, 0x08, 0}, "garbage garbage"...)
		}), status: 400, msg: "invalid gzip data: "},
		{name: "truncated gzip", req: with(post("/batch/", ""), func(r *Request) {
			r.Body = gzipped[:len(gzipped)/2]
		}), status: 400, msg: "invalid gzip data: unexpected EOF"},
		{name: "gzip hint on data that is not gzip", req: with(post("/e/", "~~not gzip~~"), func(r *Request) {
			r.Query.Set("compression", "gzip")
		}), status: 400, msg: "invalid gzip data: gzip: invalid header"},
		{name: "gzip bomb over the route limit", req: with(post("/e/", ""), func(r *Request) {
			r.Body = bomb
		}), status: 413, msg: "over the 2097152-byte limit for /e/"},
		{name: "plain body over the route limit", req: post("/e", `[`+strings.Repeat(" ", 2<<20)+`]`),
			status: 413, msg: "over the 2097152-byte limit for /e"},
		{name: "form data", req: with(post("/e/", "data="+url.QueryEscape(arr)+"&ver=1.2.3"), func(r *Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "form data base64 with '+' decoded to space", req: with(post("/e/", "compression=base64&data="+strings.ReplaceAll(b64([]byte(`[{"event":"e>>>?","distinct_id":"u","token":"phc_a"}]`)), "+", "+")), func(r *Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "e>>>?", ev[0]["event"]) }},
		{name: "form data gzip+base64", req: with(post("/e/", "compression=gzip-js&data="+url.QueryEscape(b64(gzipped))), func(r *Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "form without data field", req: with(post("/e/", "compression=gzip&ver=1"), func(r *Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}), status: 400, msg: "form body has no data field"},
		{name: "GET with ?data=", req: with(post("/e/", ""), func(r *Request) {
			r.Method = "GET"
			r.Query.Set("data", one)
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "e1", ev[0]["event"]) }},
		{name: "GET with base64 ?data=", req: with(post("/capture/", ""), func(r *Request) {
			r.Method = "GET"
			r.Query.Set("data", b64([]byte(one)))
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "e1", ev[0]["event"]) }},
		{name: "base64 by ?compression=b64", req: with(post("/batch", b64([]byte(arr))), func(r *Request) {
			r.Query.Set("compression", "b64")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "base64 by Content-Encoding", req: with(post("/batch", b64([]byte(arr))), func(r *Request) {
			r.Header.Set("Content-Encoding", "base64")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "base64 body without hint is decoded optimistically", req: post("/track/", b64([]byte(arr))),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Len(t, ev, 2) }},
		{name: "invalid base64 with a base64 hint", req: with(post("/e/", "abc!"), func(r *Request) {
			r.Query.Set("compression", "base64")
		}), status: 400, msg: "invalid base64 data: "},
		{name: "lz64 by ?compression=lz64", req: with(post("/e/", lzSmall), func(r *Request) {
			r.Query.Set("compression", "lz64")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Equal(t, "phc_lz", b.Token)
			require.Equal(t, "user-1", ev[0]["distinct_id"])
			props := ev[0]["properties"].(map[string]any)
			require.Equal(t, "https://example.com/ü?q=😀", props["$current_url"])
		}},
		{name: "lz64 form data", req: with(post("/e/", "compression=lz-string&data="+url.QueryEscape(string(lzBig))), func(r *Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Len(t, ev, 40)
			want, err := os.ReadFile("testdata/lz64-40-events.json")
			require.NoError(t, err)
			var in []map[string]any
			d := json.NewDecoder(bytes.NewReader(want))
			d.UseNumber()
			require.NoError(t, d.Decode(&in))
			for i := range in {
				require.Equal(t, in[i]["properties"], ev[i]["properties"], "event %d", i)
				require.Equal(t, in[i]["distinct_id"], ev[i]["distinct_id"], "event %d", i)
			}
		}},
		{name: "lz64 bomb over the route limit", req: with(post("/e/", string(lzBomb)), func(r *Request) {
			r.Query.Set("compression", "lz64")
		}), status: 413, msg: "over the 2097152-byte limit for /e/"},
		{name: "invalid lz64", req: with(post("/e/", "AAAA"), func(r *Request) {
			r.Query.Set("compression", "lz64")
		}), status: 400, msg: "invalid lz64 data"},
		{name: "empty body", req: post("/e/", ""), status: 400, msg: "empty payload"},
		{name: "invalid UTF-8", req: post("/e/", "{\"event\":\"\xff\",\"distinct_id\":\"u\",\"token\":\"phc_a\"}"),
			status: 400, msg: "invalid UTF-8 in request payload at byte 10"},

		// --- JSON and body shapes
		{name: "malformed JSON", req: post("/batch/", `[{"event":"e1","distinct_id":"u1" "token":"phc_a"}]`),
			status: 400, msg: "invalid JSON at byte 34: unexpected character '\"', expected ',' or '}' in object"},
		{name: "truncated JSON", req: post("/batch/", `[{"event":"e1"`), status: 400, msg: "invalid JSON at byte 14: unexpected end of input"},
		{name: "trailing data", req: post("/e/", one+` x`), status: 400, msg: "invalid JSON at byte 50: unexpected character 'x' after the top-level value"},
		{name: "nested too deep", req: post("/e/", `{"event":"e","distinct_id":"u","token":"phc_a","properties":{"a":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}}`),
			status: 400, msg: "nested more than 128 levels deep"},
		{name: "body is a string", req: post("/e/", `"hello"`), status: 400, msg: "body is a string, not an event, an array of events or a batch object"},
		{name: "array of events", req: post("/e/", arr), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Equal(t, "phc_a", b.Token)
			require.Equal(t, []any{"e1", "e2"}, []any{ev[0]["event"], ev[1]["event"]})
		}},
		{name: "batch object with token key and historical_migration", req: post("/batch/", `{"token":"phc_b","historical_migration":true,"batch":[{"event":"e","distinct_id":"u"}]}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "phc_b", b.Token)
				require.True(t, b.HistoricalMigration)
			}},
		{name: "single event", req: post("/capture/", one), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Len(t, ev, 1)
			require.Equal(t, "u1", ev[0]["distinct_id"])
		}},
		{name: "engage becomes $identify with legacy keys", req: post("/engage/", `{"$token":"phc_e","$distinct_id":"u9","$set":{"name":"Ann"},"$set_once":{"src":"ad"}}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "phc_e", b.Token)
				require.Equal(t, "$identify", ev[0]["event"])
				require.Equal(t, "u9", ev[0]["distinct_id"])
				require.Equal(t, map[string]any{"name": "Ann"}, ev[0]["$set"])
				require.Equal(t, map[string]any{"src": "ad"}, ev[0]["$set_once"])
			}},
		{name: "event without name outside /engage", req: post("/e/", `{"$token":"phc_e","$distinct_id":"u9","$set":{"a":1}}`),
			status: 400, msg: "event: missing event name"},
		{name: "missing event in a batch", req: post("/batch/", `[{"event":"a","distinct_id":"u","token":"phc_a"},{"distinct_id":"u"}]`),
			status: 400, msg: "batch[1]: missing event name"},
		{name: "empty event name", req: post("/batch/", `[{"event":"","distinct_id":"u","token":"phc_a"}]`),
			status: 400, msg: "batch[0]: missing event name (event is empty)"},
		{name: "event name not a string", req: post("/batch/", `[{"event":5,"distinct_id":"u","token":"phc_a"}]`),
			status: 400, msg: "batch[0]: event is a number, not a string"},
		{name: "array element not an object", req: post("/batch/", `[{"event":"a","distinct_id":"u","token":"phc_a"},[]]`),
			status: 400, msg: "batch[1]: event is an array, not an object"},
		{name: "empty array", req: post("/batch/", `[]`), status: 400, msg: "empty batch"},
		{name: "empty batch object", req: post("/batch/", `{"api_key":"phc_a","batch":[]}`), status: 400, msg: "empty batch"},
		{name: "properties not an object", req: post("/batch/", `{"api_key":"phc_a","batch":[{"event":"a","distinct_id":"u"},{"event":"a","distinct_id":"u","properties":"x"}]}`),
			status: 400, msg: "batch[1]: properties is a string, not an object"},
		{name: "properties null", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","properties":null}`),
			status: 400, msg: "event: properties is null, not an object"},
		{name: "$set not an object", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","$set":[1]}`),
			status: 400, msg: "event: $set is an array, not an object"},
		{name: "token given twice through aliases", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","api_key":"phc_a"}`),
			status: 400, msg: "event: field api_key is given more than once"},
		{name: "batch with both api_key and token", req: post("/batch/", `{"api_key":"phc_a","token":"phc_a","batch":[{"event":"a","distinct_id":"u"}]}`),
			status: 400, msg: "batch has both api_key and token"},
		{name: "batch without api_key uses the events' token", req: post("/batch/", `{"batch":[{"event":"a","distinct_id":"u","token":"phc_ev"}]}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_ev", b.Token) }},
		{name: "cookieless mode not a boolean", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","properties":{"$cookieless_mode":"yes"}}`),
			status: 400, msg: "event: properties.$cookieless_mode is a string, not a boolean"},
		{name: "$performance_event dropped", req: post("/batch/", `[{"event":"$performance_event","distinct_id":"u","token":"phc_a"},{"event":"keep","distinct_id":"u","token":"phc_a"}]`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Len(t, ev, 1)
				require.Equal(t, "keep", ev[0]["event"])
			}},
		{name: "only $performance_event: success with no events, token unchecked", req: post("/batch/", `[{"event":"$performance_event","distinct_id":"u","token":"phx_personal"}]`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Empty(t, b.Events) }},
		{name: "not a capture path", req: post("/decide/", one), status: 404, msg: `"/decide/" is not a capture endpoint`},

		// --- tokens
		{name: "token from properties.token", req: post("/e/", `[{"event":"a","properties":{"distinct_id":"u","token":"phc_p"}}]`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_p", b.Token) }},
		{name: "token from api_key on the event", req: post("/e/", `{"event":"a","distinct_id":"u","api_key":"phc_k"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_k", b.Token) }},
		{name: "mixed tokens", req: post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a"},{"event":"a","distinct_id":"u"},{"event":"a","distinct_id":"u","properties":{"token":"phc_b"}}]`),
			status: 401, msg: "batch[0] and batch[2] carry different project tokens"},
		{name: "batch api_key wins over event tokens", req: post("/batch/", `{"api_key":"phc_batch","batch":[{"event":"a","distinct_id":"u","token":"phc_other"}]}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_batch", b.Token) }},
		{name: "personal API key", req: post("/batch/", `{"api_key":"phx_secret","batch":[{"event":"a","distinct_id":"u"}]}`),
			status: 401, msg: "invalid project token: token is a personal API key"},
		{name: "token too long", req: post("/e/", `{"event":"a","distinct_id":"u","token":"`+strings.Repeat("x", 65)+`"}`),
			status: 401, msg: "invalid project token: token is 65 characters long"},
		{name: "no token and no default", req: post("/e/", `{"event":"a","distinct_id":"u"}`), status: 401, msg: "no project token"},
		{name: "default token used when the request has none", req: post("/e/", `{"event":"a","distinct_id":"u"}`), opt: Options{DefaultToken: "phc_default"},
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_default", b.Token) }},
		{name: "request token beats the default", req: post("/e/", one), opt: Options{DefaultToken: "phc_default"},
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_a", b.Token) }},
		{name: "allow-list accepts", req: post("/e/", one), opt: Options{AllowedTokens: map[string]bool{"phc_a": true}},
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "phc_a", b.Token) }},
		{name: "allow-list refuses", req: post("/e/", one), opt: Options{AllowedTokens: map[string]bool{"phc_z": true}},
			status: 401, msg: "not in this agent's [ingest] allowed_tokens"},
		{name: "token error does not echo the token", req: post("/batch/", `{"api_key":"phx_secret","batch":[{"event":"a","distinct_id":"u"}]}`),
			opt: Options{AllowedTokens: map[string]bool{"phc_z": true}}, status: 401, msg: "personal API key (phx_...)"},

		// --- distinct_id
		{name: "distinct_id number keeps its literal", req: post("/e/", `{"event":"a","distinct_id":23.50,"token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Contains(t, string(b.Events[0]), `"distinct_id":"23.50"`)
			}},
		{name: "distinct_id boolean", req: post("/e/", `{"event":"a","distinct_id":true,"token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "true", ev[0]["distinct_id"]) }},
		{name: "distinct_id array is its compact JSON", req: post("/e/", `{"event":"a","distinct_id":[ "a", 1 ],"token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, `["a",1]`, ev[0]["distinct_id"]) }},
		{name: "distinct_id long is cut to 200 chars", req: post("/e/", `{"event":"a","distinct_id":"`+strings.Repeat("x", 250)+`","token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, strings.Repeat("x", 200), ev[0]["distinct_id"])
			}},
		{name: "distinct_id multibyte cut by characters", req: post("/e/", `{"event":"a","distinct_id":"`+strings.Repeat("€", 250)+`","token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, strings.Repeat("€", 200), ev[0]["distinct_id"])
			}},
		{name: "distinct_id multibyte under 200 chars kept", req: post("/e/", `{"event":"a","distinct_id":"`+strings.Repeat("€", 150)+`","token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, strings.Repeat("€", 150), ev[0]["distinct_id"])
			}},
		{name: "distinct_id NUL becomes U+FFFD", req: post("/e/", `{"event":"a","distinct_id":"a\u0000b","token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "a\uFFFDb", ev[0]["distinct_id"]) }},
		{name: "$distinct_id alias", req: post("/e/", `{"event":"a","$distinct_id":"legacy","token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "legacy", ev[0]["distinct_id"]) }},
		{name: "distinct_id from properties", req: post("/e/", `{"event":"a","distinct_id":null,"properties":{"distinct_id":7},"token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "7", ev[0]["distinct_id"]) }},
		{name: "top-level distinct_id wins over properties", req: post("/e/", `{"event":"a","distinct_id":"top","properties":{"distinct_id":"prop"},"token":"phc_a"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, "top", ev[0]["distinct_id"]) }},
		{name: "distinct_id missing", req: post("/batch/", `[{"event":"a","distinct_id":"u","token":"phc_a"},{"event":"a"}]`),
			status: 400, msg: "batch[1]: missing distinct_id"},
		{name: "distinct_id empty does not fall back to properties", req: post("/e/", `{"event":"a","distinct_id":"","properties":{"distinct_id":"p"},"token":"phc_a"}`),
			status: 400, msg: "event: missing distinct_id"},
		{name: "distinct_id null", req: post("/e/", `{"event":"a","distinct_id":null,"token":"phc_a"}`), status: 400, msg: "event: missing distinct_id"},
		{name: "distinct_id blank", req: post("/e/", `{"event":"a","distinct_id":" \t ","token":"phc_a"}`), status: 400, msg: "event: missing distinct_id"},

		// --- uuid
		{name: "uuid kept, canonicalised", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","uuid":"{0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B}"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", ev[0]["uuid"])
			}},
		{name: "uuid missing or empty is assigned v7", req: post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a"},{"event":"a","distinct_id":"u","uuid":""},{"event":"a","distinct_id":"u","uuid":null}]`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				seen := map[any]bool{}
				for _, e := range ev {
					require.Regexp(t, uuidV7, e["uuid"])
					require.Equal(t, "01" /* 2024's ms prefix */, e["uuid"].(string)[:2])
					seen[e["uuid"]] = true
				}
				require.Len(t, seen, 3)
			}},
		{name: "uuid invalid", req: post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a","uuid":"not-a-uuid"}]`),
			status: 400, msg: `batch[0]: uuid "not-a-uuid" is not a valid UUID`},
		{name: "uuid not a string", req: post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a","uuid":12}]`),
			status: 400, msg: `batch[0]: uuid is a number, not a string`},

		// --- timestamps
		{name: "skew corrected with sent_at from the body", req: post("/batch/", `{"api_key":"phc_a","sent_at":"2024-06-01T12:00:10.000Z","batch":[{"event":"a","distinct_id":"u","timestamp":"2024-06-01T11:00:00Z"}]}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-06-01T10:59:50.000Z", ev[0]["timestamp"])
			}},
		{name: "skew corrected with sent_at from ?_=", req: with(post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-06-01T11:00:00Z"}]`), func(r *Request) {
			r.Query.Set("_", "1717243190000") // 2024-06-01T11:59:50Z: client 10s behind
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Equal(t, "2024-06-01T11:00:10.000Z", ev[0]["timestamp"])
		}},
		{name: "skew corrected with ?sent_at=", req: with(post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-06-01T11:00:00Z"}]`), func(r *Request) {
			r.Query.Set("sent_at", "1717243210000") // 12:00:10Z
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Equal(t, "2024-06-01T10:59:50.000Z", ev[0]["timestamp"])
		}},
		{name: "body sent_at beats the query", req: with(post("/batch/", `{"api_key":"phc_a","sent_at":"2024-06-01T12:00:10Z","batch":[{"event":"a","distinct_id":"u","timestamp":"2024-06-01T11:00:00Z"}]}`), func(r *Request) {
			r.Query.Set("_", "1717243190000")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Equal(t, "2024-06-01T10:59:50.000Z", ev[0]["timestamp"])
		}},
		{name: "?_= in seconds (before 2021 as ms) is ignored", req: with(post("/e/", `[{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-06-01T11:00:00Z"}]`), func(r *Request) {
			r.Query.Set("_", "1717243190")
		}), check: func(t *testing.T, b Batch, ev []map[string]any) {
			require.Equal(t, "2024-06-01T11:00:00.000Z", ev[0]["timestamp"])
		}},
		{name: "offset", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","offset":1500,"timestamp":"2020-01-01T00:00:00Z"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-06-01T11:59:58.500Z", ev[0]["timestamp"])
			}},
		{name: "offset not an integer", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","offset":1.5}`),
			status: 400, msg: `event: offset "1.5" is not an integer number of milliseconds`},
		{name: "$ignore_sent_at disables skew correction", req: post("/batch/", `{"api_key":"phc_a","sent_at":"2024-06-01T12:00:10Z","batch":[{"event":"a","distinct_id":"u","timestamp":"2024-06-01T11:00:00Z","properties":{"$ignore_sent_at":true}}]}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-06-01T11:00:00.000Z", ev[0]["timestamp"])
			}},
		{name: "more than 23h ahead is clamped to now", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-06-02T11:00:01Z"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, nowStr, ev[0]["timestamp"]) }},
		{name: "less than 23h ahead is kept", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-06-02T10:59:59Z"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-06-02T10:59:59.000Z", ev[0]["timestamp"])
			}},
		{name: "no timestamp is now", req: post("/e/", one),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, nowStr, ev[0]["timestamp"]) }},
		{name: "timestamp with +HH zone and microseconds", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-06-01T14:05:04.805123+03"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-06-01T11:05:04.805Z", ev[0]["timestamp"])
			}},
		{name: "timestamp as epoch milliseconds string", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"1717243190123"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-06-01T11:59:50.123Z", ev[0]["timestamp"])
			}},
		{name: "timestamp without zone is UTC", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"2024-05-01 10:00:00"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) {
				require.Equal(t, "2024-05-01T10:00:00.000Z", ev[0]["timestamp"])
			}},
		{name: "unparseable timestamp string becomes now, as in capture-rs", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":"yesterday"}`),
			check: func(t *testing.T, b Batch, ev []map[string]any) { require.Equal(t, nowStr, ev[0]["timestamp"]) }},
		{name: "timestamp not a string", req: post("/e/", `{"event":"a","distinct_id":"u","token":"phc_a","timestamp":1717243190123}`),
			status: 400, msg: "event: timestamp is a number, not a string"},

		// --- size
		{name: "event over MaxEventBytes", req: post("/batch/", `[{"event":"a","distinct_id":"u","token":"phc_a"},{"event":"a","distinct_id":"u","properties":{"x":"`+strings.Repeat("y", 1_000_000)+`"}}]`),
			status: 413, msg: "batch[1]: event is 1000138 bytes, over the 1000000-byte limit"},
		{name: "custom MaxEventBytes", req: post("/e/", one), opt: Options{MaxEventBytes: 100},
			status: 413, msg: "event: event is 118 bytes, over the 100-byte limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Decode(tc.req, tc.opt)
			if tc.status != 0 {
				require.Error(t, err)
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, tc.status, e.Status, e.Message)
				require.Contains(t, e.Message, tc.msg)
				return
			}
			require.NoError(t, err)
			ev := decoded(t, b)
			for i, e := range ev {
				for _, k := range []string{"uuid", "event", "distinct_id", "timestamp"} {
					require.IsType(t, "", e[k], "event %d field %s", i, k)
				}
				require.NotContains(t, e, "sent_at")
				require.NotContains(t, e, "offset")
				require.NotContains(t, e, "token")
			}
			if tc.check != nil {
				tc.check(t, b, ev)
			}
		})
	}
}

// TestEventsDoNotAlias checks that appending to one returned event cannot
// overwrite the next, though they share a backing array.
func TestEventsDoNotAlias(t *testing.T) {
	b, err := Decode(post("/batch/", `[{"event":"a","distinct_id":"u","token":"phc_a"},{"event":"b","distinct_id":"u"}]`), Options{})
	require.NoError(t, err)
	second := string(b.Events[1])
	_ = append(b.Events[0], "XXXXXXXX"...)
	require.Equal(t, second, string(b.Events[1]))
}

func TestLZStringRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "A", "////", "gAAA", strings.Repeat("/", 400)} {
		_, err := lzDecompressBase64([]byte(in), 1<<20, "/e")
		require.Error(t, err, "%q", in)
	}
}

// TestDecodeEveryRoute: capture-rs serves every body shape on every route;
// only the size limit (and engage's nameless events) depend on the path.
func TestDecodeEveryRoute(t *testing.T) {
	bodies := []string{
		`[{"event":"a","distinct_id":"u","token":"phc_a"}]`,
		`{"api_key":"phc_a","batch":[{"event":"a","distinct_id":"u"}]}`,
		`{"event":"a","distinct_id":"u","token":"phc_a"}`,
	}
	for _, path := range []string{"/batch", "/batch/", "/e", "/e/", "/i/v0/e", "/i/v0/e/", "/capture", "/capture/", "/track", "/track/", "/engage", "/engage/"} {
		for _, body := range bodies {
			b, err := Decode(post(path, body), Options{})
			require.NoError(t, err, "%s %s", path, body)
			require.Len(t, b.Events, 1)
			require.Equal(t, "phc_a", b.Token)
		}
	}
}

func TestParseDate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2024-06-01T12:00:00Z", "2024-06-01T12:00:00.000Z"},
		{"2024-06-01t12:00:00.123456789z", "2024-06-01T12:00:00.123Z"},
		{"2024-06-01T12:00:00.1-05:30", "2024-06-01T17:30:00.100Z"},
		{"2024-06-01T12:00:00+0200", "2024-06-01T10:00:00.000Z"},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"},
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"},
		{"2024-06-01", "2024-06-01T00:00:00.000Z"},
		{"2024/06/01", "2024-06-01T00:00:00.000Z"},
		{"06/01/2024", "2024-06-01T00:00:00.000Z"},
		{"Sat, 01 Jun 2024 12:00:00 +0200", "2024-06-01T10:00:00.000Z"},
		{"1717243200", "2024-06-01T12:00:00.000Z"},
		{"1717243200000123", "2024-06-01T12:00:00.000Z"},
		{"2023-02-29T00:00:00Z", ""}, // not a leap year
		{"2024-06-01T24:00:00Z", ""},
		{"2024-06-01T12:00:00", "2024-06-01T12:00:00.000Z"},
		{"12345", ""},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			raw, _ := json.Marshal(tc.in)
			got, ok := parseDate(raw)
			if tc.want == "" {
				require.False(t, ok, "parsed as %v", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, `"`+tc.want+`"`, string(appendTimestamp(nil, got.UTC())))
		})
	}
}

// send_feature_flags asks the agent to add flag properties from local
// evaluation; the evaluator sees the event's distinct id and $groups.
func TestSendFeatureFlagsAddsFlagProperties(t *testing.T) {
	var gotID string
	var gotGroups map[string]string
	opt := Options{FlagProperties: func(id string, groups map[string]string) string {
		gotID, gotGroups = id, groups
		return `"$feature/beta":true,"$active_feature_flags":["beta"]`
	}}
	cases := []struct{ name, event, wantProps string }{
		{"merged into properties",
			`{"event":"e","distinct_id":"u\"1","send_feature_flags":true,"properties":{"$groups":{"company":"acme"},"a":1}}`,
			`{"$groups":{"company":"acme"},"a":1,"$feature/beta":true,"$active_feature_flags":["beta"]}`},
		{"empty properties", `{"event":"e","distinct_id":"u\"1","send_feature_flags":true,"properties":{ }}`,
			`{ "$feature/beta":true,"$active_feature_flags":["beta"]}`},
		{"no properties", `{"event":"e","distinct_id":"u\"1","send_feature_flags":true}`,
			`{"$feature/beta":true,"$active_feature_flags":["beta"]}`},
		{"not asked", `{"event":"e","distinct_id":"u\"1","send_feature_flags":false,"properties":{"a":1}}`, `{"a":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Decode(post("/e/", `{"api_key":"phc_t","batch":[`+tc.event+`]}`), opt)
			require.NoError(t, err)
			var ev struct {
				Properties json.RawMessage `json:"properties"`
			}
			require.NoError(t, json.Unmarshal(b.Events[0], &ev))
			require.JSONEq(t, tc.wantProps, string(ev.Properties))
			if tc.name == "merged into properties" {
				require.Equal(t, `u"1`, gotID)
				require.Equal(t, map[string]string{"company": "acme"}, gotGroups)
			}
		})
	}
}

// Two events of a v0 batch with one uuid (in any of its spellings) are one
// event to PostHog: the first is kept, the later ones left out and counted.
func TestDecodeKeepsTheFirstEventOfEachUUID(t *testing.T) {
	const u = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	for _, tc := range []struct {
		name      string
		body      string
		events    []string
		duplicate int
	}{
		{"same uuid twice", `{"api_key":"phc_a","batch":[{"event":"a","distinct_id":"d","uuid":"` + u + `"},{"event":"b","distinct_id":"d","uuid":"` + u + `"}]}`, []string{"a"}, 1},
		{"other spelling", `{"api_key":"phc_a","batch":[{"event":"a","distinct_id":"d","uuid":"` + u + `"},{"event":"b","distinct_id":"d","uuid":"` + strings.ToUpper(strings.ReplaceAll(u, "-", "")) + `"}]}`, []string{"a"}, 1},
		{"distinct uuids", `{"api_key":"phc_a","batch":[{"event":"a","distinct_id":"d","uuid":"` + u + `"},{"event":"b","distinct_id":"d","uuid":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"}]}`, []string{"a", "b"}, 0},
		{"no uuids are all kept", `{"api_key":"phc_a","batch":[{"event":"a","distinct_id":"d"},{"event":"b","distinct_id":"d"}]}`, []string{"a", "b"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Decode(post("/batch/", tc.body), Options{})
			require.NoError(t, err)
			var names []string
			for _, ev := range decoded(t, b) {
				names = append(names, ev["event"].(string))
			}
			require.Equal(t, tc.events, names)
			require.Equal(t, tc.duplicate, b.DuplicateUUIDs)
		})
	}
}
