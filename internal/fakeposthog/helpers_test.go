package fakeposthog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const testToken = "phc_testtoken123"

// start runs a server for the test and closes it afterwards.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// reply is a fully read HTTP response.
type reply struct {
	status int
	header http.Header
	body   string
}

// do sends one request on a fresh connection (no keep-alive reuse between
// calls, so scripted drops never leak into the next request).
func do(t *testing.T, ctx context.Context, client *http.Client, method, url string, body []byte, header map[string]string) (reply, error) {
	t.Helper()
	if ctx == nil {
		ctx = context.Background()
	}
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// post sends body to the server and fails the test on transport errors.
func post(t *testing.T, s *Server, path string, body []byte, header map[string]string) reply {
	t.Helper()
	r, err := do(t, nil, nil, http.MethodPost, s.URL()+path, body, header)
	require.NoError(t, err)
	return r
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// ev builds a minimal valid event the way server SDKs send it.
func ev(uuid, name string) map[string]any {
	return map[string]any{
		"uuid":        uuid,
		"event":       name,
		"distinct_id": "user-1",
		"timestamp":   "2026-08-01T12:00:00Z",
		"properties":  map[string]any{"$lib": "posthog-go"},
	}
}

// batch builds the {"api_key", "batch"} body the forwarder sends.
func batch(t *testing.T, events ...map[string]any) []byte {
	t.Helper()
	items := make([]any, len(events))
	for i, e := range events {
		items[i] = e
	}
	return mustMarshal(t, map[string]any{"api_key": testToken, "batch": items})
}

const (
	uuidA = "0190a0a0-0000-7000-8000-000000000001"
	uuidB = "0190a0a0-0000-7000-8000-000000000002"
	uuidC = "0190a0a0-0000-7000-8000-000000000003"
)

// batchRecorder collects OnBatch calls; the callback runs on handler goroutines.
type batchRecorder struct {
	mu    sync.Mutex
	infos []BatchInfo
}

func (b *batchRecorder) record(info BatchInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.infos = append(b.infos, info)
}

func (b *batchRecorder) got() []BatchInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BatchInfo(nil), b.infos...)
}
