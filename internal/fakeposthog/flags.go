package fakeposthog

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// emptyDefinitions is what PostHog serves for a project without flags.
const emptyDefinitions = `{"flags":[],"group_type_mapping":{},"cohorts":{}}`

// flagsState is the flags half of the server's state, guarded by Server.mu.
type flagsState struct {
	defs        []byte
	etag        string // opaque value, without the W/"..." wrapping
	generation  uint64
	status      int
	defRequests []DefinitionRequest
	handler     func(body map[string]any) (int, any) // nil = EvaluateFlags
	flagReqs    []FlagsRequest
	// ev is defs compiled, for EvaluateFlags; evGeneration says which.
	ev           *eval.Evaluator
	evGeneration uint64
}

// DefinitionRequest describes one request to a definitions route.
type DefinitionRequest struct {
	Time time.Time
	Path string
	// Token is the ?token= project token; SendCohorts whether ?send_cohorts
	// was present (SDKs send it bare or as =true).
	Token       string
	SendCohorts bool
	// Authorization and IfNoneMatch are the request headers as sent.
	Authorization string
	IfNoneMatch   string
	// Status is the answer given (200, 304, 401, ...); 0 while the request
	// is in flight and for requests that were never answered.
	Status int
}

// FlagsRequest describes one remote-evaluation request (POST /flags, /decide).
type FlagsRequest struct {
	Time   time.Time
	Path   string
	Query  string
	Header http.Header
	// Body is the decoded JSON body handed to the flags handler; Raw is the
	// JSON exactly as it arrived (after gunzip).
	Body map[string]any
	Raw  []byte
}

// SetFlagDefinitions replaces the definitions served by /flags/definitions and
// issues a new ETag, even for identical bytes, so a test can force a 200. The
// bytes are served verbatim, like PostHog serves its cached blob; invalid JSON
// is allowed on purpose, to test how a client copes with it.
func (s *Server) SetFlagDefinitions(raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDefinitionsLocked(raw)
}

func (s *Server) setDefinitionsLocked(raw []byte) {
	s.flags.defs = append([]byte(nil), raw...)
	s.flags.generation++
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, s.flags.generation)
	h.Write(raw)
	s.flags.etag = hex.EncodeToString(h.Sum(nil))[:16]
}

// DefinitionsETag is the ETag header value currently served, e.g. W/"0123abcd...".
func (s *Server) DefinitionsETag() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return weakETag(s.flags.etag)
}

// SetDefinitionsStatus makes the definitions routes answer code with PostHog's
// body for it (402 is the quota-limited answer every SDK reacts to by
// dropping its definitions). It applies before authentication; 0 restores
// normal behaviour.
func (s *Server) SetDefinitionsStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flags.status = code
}

// DefinitionRequests counts requests to the definitions routes, whatever
// their answer.
func (s *Server) DefinitionRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.flags.defRequests)
}

// DefinitionLog returns every definitions request, in arrival order.
func (s *Server) DefinitionLog() []DefinitionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DefinitionRequest(nil), s.flags.defRequests...)
}

// SetFlagsHandler sets the remote-evaluation handler for POST /flags and
// /decide. It gets the decoded JSON body and returns a status and a response:
// []byte or json.RawMessage is sent verbatim as JSON, a string as plain text,
// nil as an empty body, anything else JSON-encoded. nil restores the
// default, EvaluateFlags (answers from the server's definitions).
func (s *Server) SetFlagsHandler(h func(body map[string]any) (status int, resp any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flags.handler = h
}

// FlagsRequests returns every remote-evaluation request that decoded, in
// arrival order.
func (s *Server) FlagsRequests() []FlagsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]FlagsRequest(nil), s.flags.flagReqs...)
}

// DefaultFlagsHandler answers like PostHog for a project with no flags
// (EvaluateFlags for the definitions served is the default), in the v2 shape: 401 without a token, 400 without a distinct_id, else 200
// {"flags":{},"errorsWhileComputingFlags":false,"requestId":...}.
func DefaultFlagsHandler(body map[string]any) (int, any) {
	if firstString(body, "token", "api_key", "$token") == "" {
		return http.StatusUnauthorized, authError("not_authenticated",
			"No API token provided. Please include a valid API token in your request.")
	}
	if v, ok := body["distinct_id"]; !ok || v == nil {
		if v, ok := body["$distinct_id"]; !ok || v == nil {
			return http.StatusBadRequest,
				"The distinct_id field is missing from the request. Please include a valid identifier."
		}
	}
	return http.StatusOK, map[string]any{
		"flags":                     map[string]any{},
		"errorsWhileComputingFlags": false,
		"requestId":                 newUUIDv4(),
	}
}

func (s *Server) handleDefinitions(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, OPTIONS, HEAD")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, OPTIONS, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	q := r.URL.Query()
	rec := DefinitionRequest{
		Time:          time.Now(),
		Path:          r.URL.Path,
		Token:         q.Get("token"),
		SendCohorts:   q.Has("send_cohorts"),
		Authorization: r.Header.Get("Authorization"),
		IfNoneMatch:   r.Header.Get("If-None-Match"),
	}
	// Logged on arrival, so that requests which never get an answer are
	// counted (and numbered) too; Status is filled in when it is known.
	s.mu.Lock()
	idx := len(s.flags.defRequests)
	s.flags.defRequests = append(s.flags.defRequests, rec)
	s.broadcastLocked()
	req := &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), N: idx + 1}
	s.mu.Unlock()
	resp, hooked, ok := s.intercept(w, r, req)
	if !ok {
		return
	}
	if hooked && resp.Status != 0 {
		s.setDefinitionStatus(idx, resp.Status)
		s.logf("fakeposthog: %s %s -> %d (hooked)", r.Method, r.URL.Path, resp.Status)
		setHeaders(w, resp)
		writeAnswer(w, resp.Status, resp.Body)
		return
	}

	s.mu.Lock()
	defs, etag, override := s.flags.defs, s.flags.etag, s.flags.status
	s.mu.Unlock()

	status, body := definitionsAnswer(rec, etag, override)
	setHeaders(w, resp)
	h := w.Header()
	switch status {
	case http.StatusOK:
		h.Set("Content-Type", "application/json")
		body = defs
		fallthrough
	case http.StatusNotModified:
		h.Set("ETag", weakETag(etag))
		h.Set("Cache-Control", "private, must-revalidate")
	default:
		if bytes.HasPrefix(body, []byte("{")) {
			h.Set("Content-Type", "application/json")
		} else {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}

	// The status is logged before the answer goes out, so a client that has
	// its answer always finds it in the log.
	s.setDefinitionStatus(idx, status)
	s.logf("fakeposthog: %s %s -> %d", r.Method, r.URL.Path, status)

	w.WriteHeader(status)
	if r.Method != http.MethodHead && status != http.StatusNotModified {
		_, _ = w.Write(body)
	}
}

func (s *Server) setDefinitionStatus(idx, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flags.defRequests[idx].Status = status
	s.broadcastLocked()
}

// definitionsAnswer decides the status (and error body) of a definitions
// request in PostHog's order: query, then auth, then ETag. A status set with
// SetDefinitionsStatus pre-empts auth so tests need not care about keys.
func definitionsAnswer(rec DefinitionRequest, etag string, override int) (int, []byte) {
	if rec.Token == "" {
		return http.StatusBadRequest, []byte("Failed to deserialize query string: missing field `token`")
	}
	if override != 0 {
		return override, definitionsErrorBody(override)
	}
	scheme, key, _ := strings.Cut(strings.TrimSpace(rec.Authorization), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		return http.StatusUnauthorized, authError("not_authenticated", "Authentication credentials were not provided.")
	}
	// Only personal API keys (phx_) and project secret keys (phs_) may read
	// definitions; a project token (phc_) here is a common misconfiguration.
	if !strings.HasPrefix(key, "phx_") && !strings.HasPrefix(key, "phs_") {
		return http.StatusUnauthorized, authError("authentication_failed", "Personal API key is invalid.")
	}
	if rec.IfNoneMatch != "" && bareETag(rec.IfNoneMatch) == etag {
		return http.StatusNotModified, nil
	}
	return http.StatusOK, nil
}

func definitionsErrorBody(code int) []byte {
	switch code {
	case http.StatusPaymentRequired:
		return mustJSON(map[string]any{
			"type":   "quota_limited",
			"code":   "payment_required",
			"detail": "You have exceeded your feature flag request quota",
			"attr":   nil,
		})
	case http.StatusUnauthorized:
		return authError("authentication_failed", "Personal API key is invalid.")
	case http.StatusForbidden:
		return authError("permission_denied",
			"Personal API key lacks required scopes (feature_flag:read or feature_flag:write).")
	case http.StatusTooManyRequests:
		return mustJSON(map[string]any{
			"type": "validation_error", "code": "rate_limit_exceeded", "detail": "Rate limit exceeded", "attr": nil,
		})
	case http.StatusInternalServerError:
		return []byte("An internal server error occurred. Please try again later or contact support if the problem persists.")
	case http.StatusServiceUnavailable:
		return []byte("Service is currently unavailable. Please try again later.")
	}
	return []byte(http.StatusText(code))
}

func (s *Server) handleFlags(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet:
		// PostHog answers a bare GET with an empty evaluation.
		writeHandlerResponse(w, http.StatusOK, map[string]any{"flags": map[string]any{}, "errorsWhileComputingFlags": false})
		return
	default:
		w.Header().Set("Allow", "POST, GET, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	raw, err := readLimited(r.Body, batchBodyLimit)
	switch {
	case errors.Is(err, errTooLarge):
		writeHandlerResponse(w, http.StatusRequestEntityTooLarge, msgBodyTooLarge)
		return
	case err != nil:
		abortConn(w)
		return
	}
	if compressionHint(r) == "gzip" || bytes.HasPrefix(raw, gzipMagic) {
		if raw, err = gunzipLimited(raw, batchBodyLimit); err != nil {
			writeHandlerResponse(w, http.StatusBadRequest,
				"Failed to decode request: invalid GZIP data. Please check your request format and try again.")
			return
		}
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		if err == nil {
			err = errors.New("expected a JSON object")
		}
		writeHandlerResponse(w, http.StatusBadRequest,
			fmt.Sprintf("Failed to parse request: %v. Please ensure your request is properly formatted and all required fields are present.", err))
		return
	}

	s.mu.Lock()
	handler := s.flags.handler
	s.flags.flagReqs = append(s.flags.flagReqs, FlagsRequest{
		Time: time.Now(), Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Raw: raw,
	})
	req := &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(),
		Body: raw, N: len(s.flags.flagReqs)}
	s.broadcastLocked()
	s.mu.Unlock()

	resp, hooked, ok := s.intercept(w, r, req)
	if !ok {
		return
	}
	setHeaders(w, resp)
	if hooked && resp.Status != 0 {
		s.logf("fakeposthog: %s %s -> %d (hooked)", r.Method, r.URL.Path, resp.Status)
		writeAnswer(w, resp.Status, resp.Body)
		return
	}

	if handler == nil {
		handler = s.EvaluateFlags
	}
	status, out := handler(body)
	s.logf("fakeposthog: %s %s -> %d", r.Method, r.URL.Path, status)
	writeHandlerResponse(w, status, out)
}

func writeHandlerResponse(w http.ResponseWriter, status int, resp any) {
	var body []byte
	contentType := "application/json"
	switch v := resp.(type) {
	case nil:
	case json.RawMessage:
		body = v
	case []byte:
		body = v
	case string:
		body, contentType = []byte(v), "text/plain; charset=utf-8"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			status, body, contentType = http.StatusInternalServerError,
				[]byte("fakeposthog: flags handler response is not JSON-encodable: "+err.Error()), "text/plain; charset=utf-8"
		} else {
			body = b
		}
	}
	if body != nil {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// authError is the JSON error shape PostHog's flags service uses for auth
// and quota failures.
func authError(code, detail string) []byte {
	return mustJSON(map[string]any{"type": "authentication_error", "code": code, "detail": detail, "attr": nil})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeposthog: encoding a fixed response: %v", err))
	}
	return b
}

func weakETag(raw string) string { return `W/"` + raw + `"` }

// bareETag strips the weak prefix and quotes so W/"x", "x" and x compare equal,
// as PostHog's flags service does.
func bareETag(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}

func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

func newUUIDv4() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
