package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var fuzzPaths = []string{"/batch/", "/e/", "/i/v0/e", "/capture/", "/track", "/engage/"}

// FuzzDecode checks that Decode never panics, refuses only with the statuses
// PostHog uses, and that every event it accepts is a valid JSON object with
// string uuid (a UUID), event, distinct_id and timestamp (in
// TimestampLayout), within the size limit.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"api_key":"phc_a","sent_at":"2024-06-01T12:00:10Z","batch":[{"event":"a","distinct_id":"u","timestamp":"2024-06-01T11:00:00Z","properties":{"$ignore_sent_at":true}}]}`,
		`[{"event":"a","properties":{"distinct_id":7,"token":"phc_p","$cookieless_mode":false}},{"event":"$performance_event"}]`,
		`{"$token":"phc_e","$distinct_id":"u9","$set":{"name":"Ann"},"uuid":"","offset":12}`,
		`{"event":"a","distinct_id":"a\u0000b\ud800","uuid":"{0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B}","timestamp":"1717243190123"}`,
		`data=%7B%22event%22%3A%22a%22%2C%22distinct_id%22%3A%22u%22%7D&compression=base64`,
		"NobwRApgbhB2AuYBcYAkAHAhgc2gSwgHcwAaMAEzwGd49YBjeAfT3OTAFcqIAnAWgCMpMOh4B7dL1oQqycPDEBrOO3QALekwA2AL2Gp6HHjzjMjW9mvjx0VJAHp7EAB6YAtui0QAdPTFv7AB+AfgBHAF5AXg3AAD2wAF84gF0gA=",
		`[{"event":"a","distinct_id":[1,{"b":2}],"timestamp":"2024-06-01 10:00:00","$set_once":null}]`,
	} {
		f.Add([]byte(seed), uint8(0), uint8(0))
		f.Add([]byte(seed), uint8(5), uint8(0xff))
	}
	f.Add(gz(f, `[{"event":"a","distinct_id":"u","token":"phc_a"}]`), uint8(1), uint8(1))

	f.Fuzz(func(t *testing.T, body []byte, pathSel, flags uint8) {
		r := Request{
			Method: "POST",
			Path:   fuzzPaths[int(pathSel)%len(fuzzPaths)],
			Header: http.Header{},
			Query:  url.Values{},
			Body:   body,
			Now:    time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC),
		}
		if flags&1 != 0 {
			r.Header.Set("Content-Encoding", "gzip")
		}
		if flags&2 != 0 {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if flags&4 != 0 {
			r.Method, r.Body = "GET", nil
			r.Query.Set("data", string(body))
		}
		if flags&8 != 0 {
			r.Query.Set("compression", "lz64")
		}
		if flags&16 != 0 {
			r.Query.Set("compression", "base64")
		}
		if flags&32 != 0 {
			r.Query.Set("_", "1717243190000")
		}
		opt := Options{MaxEventBytes: 4096}
		if flags&64 != 0 {
			opt.DefaultToken = "phc_default"
		}

		b, err := Decode(r, opt)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			switch e.Status {
			case 400, 401, 413:
			default:
				t.Fatalf("status %d: %s", e.Status, e.Message)
			}
			if e.Message == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(b.Events) > 0 {
			if err := CheckToken(b.Token); err != nil {
				t.Fatalf("accepted token %q: %v", b.Token, err)
			}
		}
		for i, ev := range b.Events {
			if len(ev) > opt.MaxEventBytes {
				t.Fatalf("event %d is %d bytes", i, len(ev))
			}
			var m map[string]any
			if err := json.Unmarshal(ev, &m); err != nil {
				t.Fatalf("event %d is not valid JSON: %v\n%s", i, err, ev)
			}
			for _, k := range []string{"uuid", "event", "distinct_id", "timestamp"} {
				if s, ok := m[k].(string); !ok || s == "" {
					t.Fatalf("event %d: %s is %#v\n%s", i, k, m[k], ev)
				}
			}
			if _, ok := parseUUID([]byte(m["uuid"].(string))); !ok {
				t.Fatalf("event %d: bad uuid %q", i, m["uuid"])
			}
			if _, err := time.Parse(TimestampLayout, m["timestamp"].(string)); err != nil {
				t.Fatalf("event %d: bad timestamp %q", i, m["timestamp"])
			}
			for k := range m {
				switch k {
				case "uuid", "event", "distinct_id", "timestamp", "properties", "$set", "$set_once":
				default:
					t.Fatalf("event %d: unexpected key %q", i, k)
				}
			}
		}
	})
}

// FuzzScanner checks the hand-written JSON scanner against encoding/json:
// both must agree on what is valid (below the nesting limit, where they
// differ by design).
func FuzzScanner(f *testing.F) {
	for _, seed := range []string{`{"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"]}`, `[1,]`, `{"a" 1}`, `"\ud800"`, `-01`, `1.`, ` {} `, `[[[]]]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) >= maxDepth {
			return
		}
		end, err := skipValue(b, skipWS(b, 0), 0)
		ours := err == nil && skipWS(b, end) == len(b)
		if theirs := json.Valid(b); ours != theirs {
			t.Fatalf("scanner says %v (%v), encoding/json says %v for %q", ours, err, theirs, b)
		}
		// Decode checks UTF-8 before decoding, so only valid text matters here.
		if ours && b[skipWS(b, 0)] == '"' && utf8.Valid(b) {
			var s string
			require.NoError(t, json.Unmarshal(b, &s))
			v := bytes.TrimSpace(b)
			require.Equal(t, s, decodeString(v))
		}
	})
}
