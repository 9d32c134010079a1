package bench

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// leanUpstream is the cheapest believable PostHog: it reads the body,
// gunzips it and counts the batch's events, and answers {"status":1}. It
// exists so the forwarder's own cost is what a benchmark sees, not the
// upstream's JSON decoding (fakeposthog decodes and records every event).
type leanUpstream struct {
	*httptest.Server
	events   atomic.Int64
	requests atomic.Int64
}

var leanBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func startLeanUpstream(tb testing.TB) *leanUpstream {
	tb.Helper()
	u := &leanUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/batch/" {
			http.Error(w, "lean upstream serves /batch/ only", http.StatusNotFound)
			return
		}
		buf := leanBufs.Get().(*bytes.Buffer)
		defer leanBufs.Put(buf)
		buf.Reset()
		var src io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
				return
			}
			src = zr
		}
		if _, err := buf.ReadFrom(src); err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		n := countBatch(buf.Bytes())
		if n < 0 {
			http.Error(w, "no batch array", http.StatusBadRequest)
			return
		}
		u.events.Add(int64(n))
		u.requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":1}`)
	}))
	tb.Cleanup(u.Close)
	return u
}

// countBatch counts the elements of the top-level "batch" array without
// decoding them: a string- and depth-aware scan. -1 means no batch array.
func countBatch(body []byte) int {
	i := bytes.Index(body, []byte(`"batch":[`))
	if i < 0 {
		return -1
	}
	depth, n, inString, escaped, sawValue := 0, 0, false, false, false
	for _, c := range body[i+len(`"batch":[`):] {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}':
			depth--
		case ']':
			if depth == 0 {
				if sawValue {
					n++
				}
				return n
			}
			depth--
		case ',':
			if depth == 0 {
				n++
			}
		}
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			sawValue = true
		}
	}
	return -1
}
