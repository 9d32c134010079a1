// Package retryafter reads HTTP Retry-After headers, which PostHog (or a
// proxy in front of it) may send with 429 and 503 answers. The forwarder and
// the flag poller both treat the value as a floor for their next wait.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads delay-seconds or an HTTP date relative to now. Anything else,
// a negative delay or a date in the past gives 0 (no floor). Callers cap the
// result: a misconfigured proxy must not park them for days.
func Parse(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
