// Package testagent starts a real hogrelay agent for tests and benchmarks,
// from one test configuration: in-process (Start: benchmarks and the CLI's
// unit tests) or as the built binary (Process: the end-to-end tests). Both
// read the same config file, wait for the same readiness answer and keep
// their logs in a testlog.Buffer. (bbolt's internal/btesting, litestream's
// internal/testingutil.)
package testagent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The keys test configs carry. Tests grep logs, status and metrics for them
// to show that keys never leak.
const (
	ProjectKey  = "phc_e2eprojectkey123"
	PersonalKey = "phx_e2epersonalsecret456"
)

// Dir returns a new short temporary directory, removed when tb ends: unix
// socket paths are limited to 107 bytes, and tb.TempDir's can be longer.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "hr")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Socket is the socket path WriteConfig gives an agent in dir.
func Socket(dir string) string { return filepath.Join(dir, "s.sock") }

// WriteConfig writes dir/config.toml and returns its path: data in
// dir/data, the socket at Socket(dir), PostHog at host, the test keys, JSON
// logs. Each override is "section.key = value" (TOML value syntax; a key
// without a section is top level) and replaces or adds that key; later
// overrides win.
func WriteConfig(tb testing.TB, dir, host string, overrides ...string) string {
	tb.Helper()
	sections := map[string]map[string]string{
		"":        {"data_dir": strconv.Quote(filepath.Join(dir, "data"))},
		"posthog": {"host": strconv.Quote(host), "api_key": strconv.Quote(ProjectKey), "personal_api_key": strconv.Quote(PersonalKey)},
		"listen":  {"socket": strconv.Quote(Socket(dir))},
		"log":     {"format": `"json"`},
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			tb.Fatalf("testagent: override %q is not section.key = value", o)
		}
		sec, key, ok := strings.Cut(strings.TrimSpace(k), ".")
		if !ok {
			sec, key = "", sec
		}
		if sections[sec] == nil {
			sections[sec] = map[string]string{}
		}
		sections[sec][key] = strings.TrimSpace(v)
	}
	var b strings.Builder
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n != "" {
			fmt.Fprintf(&b, "[%s]\n", n)
		}
		for k, v := range sections[n] {
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// UnixClient is an HTTP client that dials socket (URLs are
// http://hogrelay/...).
func UnixClient(socket string) *http.Client {
	var d net.Dialer
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// waitReady polls probe (/readyz) over c until it answers 200, gone reports
// the agent has exited, or timeout passes.
func waitReady(c *http.Client, probe string, gone func() bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if gone() {
			return fmt.Errorf("the agent exited before it was ready")
		}
		resp, err := c.Get("http://hogrelay" + probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				c.CloseIdleConnections()
				return nil
			}
			err = fmt.Errorf("%s answered %d", probe, resp.StatusCode)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent was not ready after %s (last: %v)", timeout, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tail returns the last n lines of s (for logs in a failure message).
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
