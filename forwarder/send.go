package forwarder

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hogrelay/hogrelay/internal/retryafter"
)

type result struct {
	status     int // 0 for a network error
	message    string
	retryAfter time.Duration
}

func (r result) ok() bool { return r.status >= 200 && r.status < 300 }

// outcome is what the answer tells the concurrency controller.
func (r result) outcome() outcome {
	switch {
	case r.ok():
		return outcomeSuccess
	case r.status == 0, r.status == http.StatusRequestTimeout, r.status == http.StatusTooManyRequests, r.status >= 500:
		return outcomeBackPressure
	default:
		return outcomeNeutral
	}
}

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// encode builds {"api_key":…,"historical_migration":…,"batch":[…]} around the
// stored events, byte for byte, and gzips it.
func encode(b batch, events [][]byte) []byte {
	var raw bytes.Buffer
	size := 64 + len(b.token)
	for _, e := range events {
		size += len(e) + 1
	}
	raw.Grow(size)
	raw.WriteString(`{"api_key":`)
	raw.WriteString(strconv.Quote(b.token))
	if b.historical {
		raw.WriteString(`,"historical_migration":true`)
	}
	raw.WriteString(`,"batch":[`)
	for i, e := range events {
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.Write(e)
	}
	raw.WriteString("]}")
	var out bytes.Buffer
	out.Grow(raw.Len() / 4)
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(&out)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	gzipPool.Put(zw)
	return out.Bytes()
}

// send posts one encoded batch of n events and reads the answer. Every
// answer is fed to the concurrency controller and the latency histogram.
func (f *Forwarder) send(ctx context.Context, o Options, body []byte, n int) result {
	rctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, o.Host+"/batch/", bytes.NewReader(body))
	if err != nil {
		return result{message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if o.UserAgent != "" {
		req.Header.Set("User-Agent", o.UserAgent)
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	took := time.Since(start)
	if err != nil {
		r := result{message: redactURL(err.Error())}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			r.message = fmt.Sprintf("no answer within request_timeout %s: %s", o.RequestTimeout, r.message)
		}
		if ctx.Err() == nil {
			f.metrics.observe("network_error", took, n)
			f.limiter.record(took, r.outcome())
		}
		return r
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	f.metrics.observe(strconv.Itoa(resp.StatusCode), took, n)
	f.log.Debug().Int("status", resp.StatusCode).Int("events", n).Int("gzip_bytes", len(body)).Dur("took", took).Msg("batch sent")
	r := result{status: resp.StatusCode, message: strings.TrimSpace(string(msg))}
	if r.message == "" {
		r.message = http.StatusText(resp.StatusCode)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.message = fmt.Sprintf("HTTP %d: PostHog's /batch/ redirected to %q; hogrelay never follows redirects for capture (the events would be lost), so nothing was delivered and everything is kept: fix [posthog] host (e.g. use https://)",
			resp.StatusCode, redactURL(resp.Header.Get("Location")))
	case !r.ok():
		r.message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, r.message)
	}
	r.retryAfter = retryafter.Parse(resp.Header.Get("Retry-After"), time.Now())
	f.limiter.record(took, r.outcome())
	return r
}

// redactURL keeps error strings free of query strings; ours carry none, but
// an error from a proxy might echo one.
func redactURL(s string) string {
	if i := strings.Index(s, "?"); i >= 0 {
		if j := strings.IndexAny(s[i:], "\" "); j >= 0 {
			return s[:i] + s[i+j:]
		}
		return s[:i]
	}
	return s
}
