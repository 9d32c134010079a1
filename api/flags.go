package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/flags"
	"github.com/hogrelay/hogrelay/flags/eval"
)

func (h *Handler) flagRoutes() {
	for _, p := range []string{"/flags", "/flags/", "/decide", "/decide/"} {
		h.mux.HandleFunc(p, h.handleFlags)
	}
	for _, p := range []string{"/flags/definitions", "/flags/definitions/", "/api/feature_flag/local_evaluation", "/api/feature_flag/local_evaluation/"} {
		h.mux.HandleFunc(p, h.handleDefinitions)
	}
	h.mux.HandleFunc("POST /hogrelay/v1/flags/reload", h.handleFlagsReload)
	h.mux.HandleFunc("GET /hogrelay/v1/flags", h.handleFlagsList)
	h.mux.HandleFunc("POST /hogrelay/v1/flags/evaluate", h.handleFlagsEvaluate)
}

// flagsRequest is the body SDKs send to /flags and /decide, with PostHog's
// aliases (flag_request.rs): api_key/$token, $distinct_id, $groups, …
type flagsRequest struct {
	Token            string                    `json:"token"`
	APIKey           string                    `json:"api_key"`
	DollarToken      string                    `json:"$token"`
	DistinctID       json.RawMessage           `json:"distinct_id"`
	DollarDistinctID json.RawMessage           `json:"$distinct_id"`
	Groups           map[string]any            `json:"groups"`
	DollarGroups     map[string]any            `json:"$groups"`
	PersonProperties map[string]any            `json:"person_properties"`
	DollarProperties map[string]any            `json:"$properties"`
	GroupProperties  map[string]map[string]any `json:"group_properties"`
	DollarGroupProps map[string]map[string]any `json:"$group_properties"`
	FlagKeys         []string                  `json:"flag_keys"`
	FlagKeysToEval   []string                  `json:"flag_keys_to_evaluate"`
	DeviceID         string                    `json:"device_id"`
	DollarDeviceID   string                    `json:"$device_id"`
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// input turns the request into an evaluation input, or a precise refusal.
func (fr *flagsRequest) input() (eval.Input, string, error) {
	token := firstNonEmpty(fr.Token, fr.APIKey, fr.DollarToken)
	if token == "" {
		return eval.Input{}, "", errors.New("missing token: send \"token\" (or \"api_key\") with your project API key")
	}
	raw := fr.DistinctID
	if len(raw) == 0 || string(raw) == "null" {
		raw = fr.DollarDistinctID
	}
	id := ""
	if len(raw) > 0 && string(raw) != "null" {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			id = s
		} else {
			id = string(raw) // numbers are stringified, as PostHog does
		}
	}
	if id == "" {
		return eval.Input{}, token, errors.New("missing distinct_id")
	}
	if len(id) > 200 {
		id = id[:200]
	}
	in := eval.Input{
		DistinctID:       id,
		DeviceID:         firstNonEmpty(fr.DeviceID, fr.DollarDeviceID),
		PersonProperties: fr.PersonProperties,
		GroupProperties:  fr.GroupProperties,
	}
	if in.PersonProperties == nil {
		in.PersonProperties = fr.DollarProperties
	}
	if in.GroupProperties == nil {
		in.GroupProperties = fr.DollarGroupProps
	}
	groups := fr.Groups
	if groups == nil {
		groups = fr.DollarGroups
	}
	if len(groups) > 0 {
		in.Groups = make(map[string]string, len(groups))
		for k, v := range groups {
			switch x := v.(type) {
			case string:
				in.Groups[k] = x
			case nil:
			default:
				b, _ := json.Marshal(x)
				in.Groups[k] = string(b)
			}
		}
	}
	return in, token, nil
}

// readFlagsBody reads a /flags or /decide body in every encoding PostHog's
// flags service takes (JSON, gzip, base64, form data=), with capture's
// decoder: the encodings are the same.
func readFlagsBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	const limit = 2 << 20
	buf, release, err := readBody(w, r, limit)
	defer release()
	if err != nil {
		status, msg := bodyError(err, limit, r.URL.Path)
		return nil, status, errors.New(msg)
	}
	payload, err := capture.Payload(capture.Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header, Body: buf.Bytes()}, 8<<20)
	if err != nil {
		status := http.StatusBadRequest
		var ce *capture.Error
		if errors.As(err, &ce) {
			status = ce.Status
		}
		return nil, status, err
	}
	// The payload may alias the pooled buffer, which goes back on return.
	return bytes.Clone(payload), 0, nil
}

// handleFlags answers /flags and /decide from local evaluation (PostHog's
// /flags only for what cannot be evaluated locally), in the response shape
// the requested version expects.
func (h *Handler) handleFlags(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	decide := strings.HasPrefix(r.URL.Path, "/decide")
	if r.Method == http.MethodGet {
		// PostHog answers GET /flags with a minimal empty response.
		writeJSON(w, 200, flagsResponse{Flags: map[string]v2Flag{}, RequestID: uuid.NewString()})
		return
	}
	if r.Method != http.MethodPost {
		writeText(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+" (use POST)")
		return
	}
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	body, status, err := readFlagsBody(w, r)
	if err != nil {
		writeText(w, status, err.Error())
		return
	}
	var fr flagsRequest
	if err := json.Unmarshal(body, &fr); err != nil {
		writeText(w, http.StatusBadRequest, "failed to parse request: "+err.Error())
		return
	}
	in, token, err := fr.input()
	if err != nil {
		status := http.StatusBadRequest
		if token == "" {
			status = http.StatusUnauthorized
		}
		writeText(w, status, err.Error())
		return
	}
	keys := fr.FlagKeysToEval
	if keys == nil {
		keys = fr.FlagKeys
	}
	all, err := h.deps.Flags.All(r.Context(), flags.Ask{Input: in, UserAgent: r.UserAgent(), FlagKeys: keys})
	if err != nil && !errors.Is(err, flags.ErrNoAnswer) {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err != nil {
		all.ErrorsWhileComputing = !all.QuotaLimited
	}
	h.countAnswers(all)
	version, _ := strconv.Atoi(r.URL.Query().Get("v"))
	writeJSON(w, 200, shapeFlagsResponse(all, decide, version, r.URL.Query().Has("v")))
}

func (h *Handler) countAnswers(all flags.All) {
	for k := range all.Flags {
		if all.Local[k] {
			h.metrics.flagEval.WithLabelValues("local").Inc()
		} else {
			h.metrics.flagEval.WithLabelValues("remote").Inc()
		}
	}
	if all.ErrorsWhileComputing || all.QuotaLimited {
		h.metrics.flagEval.WithLabelValues("none").Inc()
	}
}

// payloadString returns the payload the way PostHog's responses carry it:
// the stored text, which is a JSON-encoded string (nil for none).
func payloadString(res eval.Result) *string {
	p := res.StoredPayload
	if len(p) == 0 {
		p = res.Payload
	}
	if len(p) == 0 || string(p) == "null" {
		return nil
	}
	if p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err == nil {
			return &s
		}
	}
	s := string(p)
	return &s
}

// The /flags and /decide answers as typed structs: encoding a map[string]any
// per flag cost more than evaluating the flags (see bench/flags_test.go).
type (
	flagsResponse struct {
		Flags               any               `json:"flags,omitempty"`
		FeatureFlags        any               `json:"featureFlags,omitempty"`
		FeatureFlagPayloads map[string]string `json:"featureFlagPayloads,omitempty"`
		Errors              bool              `json:"errorsWhileComputingFlags"`
		QuotaLimited        []string          `json:"quotaLimited,omitempty"`
		// posthog-go reads the snake-case key.
		QuotaLimitedSnake []string `json:"quota_limited,omitempty"`
		RequestID         string   `json:"requestId"`
	}
	v2Flag struct {
		Key      string     `json:"key"`
		Enabled  bool       `json:"enabled"`
		Variant  *string    `json:"variant"`
		Reason   v2Reason   `json:"reason"`
		Metadata v2Metadata `json:"metadata"`
	}
	v2Reason struct {
		Code           string `json:"code"`
		ConditionIndex *int   `json:"condition_index"`
		Description    string `json:"description"`
	}
	v2Metadata struct {
		ID          int64   `json:"id"`
		Version     int64   `json:"version"`
		Description *string `json:"description"`
		Payload     *string `json:"payload"`
	}
)

// shapeFlagsResponse follows the version matrix of PostHog's flags service
// (endpoint.rs get_versioned_response).
func shapeFlagsResponse(all flags.All, decide bool, v int, hasV bool) flagsResponse {
	resp := flagsResponse{Errors: all.ErrorsWhileComputing, RequestID: uuid.NewString()}
	if all.QuotaLimited {
		resp.QuotaLimited = []string{"feature_flags"}
		resp.QuotaLimitedSnake = resp.QuotaLimited
	}
	v2 := func() {
		out := make(map[string]v2Flag, len(all.Flags))
		for k, res := range all.Flags {
			f := v2Flag{
				Key: k, Enabled: res.Enabled,
				Reason:   v2Reason{Code: res.Reason.Code, ConditionIndex: res.Reason.ConditionIndex, Description: res.Reason.Description},
				Metadata: v2Metadata{ID: res.ID, Version: res.Version, Payload: payloadString(res)},
			}
			if res.Variant != "" {
				f.Variant = &res.Variant
			}
			out[k] = f
		}
		resp.Flags = out
	}
	legacy := func() {
		ff := make(map[string]any, len(all.Flags))
		pl := map[string]string{}
		for k, res := range all.Flags {
			ff[k] = res.Value()
			if p := payloadString(res); p != nil {
				pl[k] = *p
			}
		}
		resp.FeatureFlags, resp.FeatureFlagPayloads = ff, pl
	}
	switch {
	case !decide && (!hasV || v >= 2):
		v2()
	case !decide:
		legacy()
	case v >= 4:
		v2()
	case v == 3:
		legacy()
	case v == 2:
		ff := map[string]any{}
		for k, res := range all.Flags {
			if res.Enabled {
				ff[k] = res.Value()
			}
		}
		resp.FeatureFlags = ff
	default:
		active := []string{}
		for k, res := range all.Flags {
			if res.Enabled {
				active = append(active, k)
			}
		}
		sort.Strings(active)
		resp.FeatureFlags = active
	}
	return resp
}

// handleDefinitions serves the cached definitions to SDKs that evaluate
// locally, so a VM needs one poller (this agent), and SDKs start offline too.
func (h *Handler) handleDefinitions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeText(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+" (use GET)")
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || strings.TrimSpace(strings.TrimPrefix(auth, "Bearer ")) == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"type": "authentication_error", "code": "no_authentication",
			"detail": "send Authorization: Bearer <personal or project secret key>, as PostHog requires"})
		return
	}
	// Any local process and any web page can reach the TCP listener, and
	// definitions can hold emails and payloads: there only the configured
	// keys open them. The producer socket's file mode already says who may.
	if surfaceOf(r) == LoopbackTCP && !h.definitionsKeyOK(strings.TrimSpace(strings.TrimPrefix(auth, "Bearer "))) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"type": "authentication_error", "code": "authentication_failed",
			"detail": "this key may not read flag definitions here: on the TCP listener send [posthog] personal_api_key or a key from [flags] definitions_keys"})
		return
	}
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	if h.deps.Flags.Status().QuotaLimited {
		writeJSON(w, http.StatusPaymentRequired, map[string]string{"type": "quota_limited", "detail": "PostHog reports the feature flags quota is exceeded"})
		return
	}
	raw, etag, ok := h.deps.Flags.Definitions()
	if !ok {
		writeText(w, http.StatusServiceUnavailable, "no flag definitions cached yet (set [posthog] personal_api_key so the agent can fetch them)")
		return
	}
	if etag == "" {
		etag = fmt.Sprintf(`"hr-%x"`, fnv64(raw))
	}
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	if r.Method == http.MethodGet {
		_, _ = w.Write(raw)
	}
}

func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func (h *Handler) handleFlagsReload(w http.ResponseWriter, r *http.Request) {
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := h.deps.Flags.Reload(ctx); err != nil {
		writeText(w, http.StatusBadGateway, "reload failed: "+err.Error())
		return
	}
	writeJSON(w, 200, flagStatusJSON(h.deps.Flags.Status()))
}

// FlagStatus is the flag cache part of status output.
type FlagStatus struct {
	Source         string    `json:"source"`
	FetchedAt      time.Time `json:"fetched_at,omitzero"`
	AgeSeconds     float64   `json:"age_seconds,omitempty"`
	ETag           string    `json:"etag,omitempty"`
	FlagCount      int       `json:"flag_count"`
	QuotaLimited   bool      `json:"quota_limited"`
	PollingEnabled bool      `json:"polling_enabled"`
	PollInterval   string    `json:"poll_interval,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	LastPollAt     time.Time `json:"last_poll_at,omitzero"`
	Polls          uint64    `json:"polls"`
	PollErrors     uint64    `json:"poll_errors"`
}

func flagStatusJSON(s flags.Status) FlagStatus {
	fs := FlagStatus{
		Source: s.Source, FetchedAt: s.FetchedAt, ETag: s.ETag, FlagCount: s.FlagCount,
		QuotaLimited: s.QuotaLimited, PollingEnabled: s.PollingEnabled, LastError: s.LastError,
		LastErrorAt: s.LastErrorAt, LastPollAt: s.LastPollAt, Polls: s.Polls, PollErrors: s.PollErrors,
	}
	if s.PollInterval > 0 {
		fs.PollInterval = s.PollInterval.String()
	}
	if !s.FetchedAt.IsZero() {
		fs.AgeSeconds = time.Since(s.FetchedAt).Round(time.Second).Seconds()
	}
	return fs
}

// FlagStatusOf is used by the agent's status document.
func FlagStatusOf(s *flags.Service) *FlagStatus {
	if s == nil {
		return nil
	}
	fs := flagStatusJSON(s.Status())
	return &fs
}

// FlagListEntry is one definition in `hogrelay flags list`.
type FlagListEntry struct {
	Key       string `json:"key"`
	ID        int64  `json:"id"`
	Active    bool   `json:"active"`
	GroupType *int   `json:"aggregation_group_type_index,omitempty"`
	Variants  int    `json:"variants,omitempty"`
}

func (h *Handler) handleFlagsList(w http.ResponseWriter, r *http.Request) {
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	out := struct {
		Cache FlagStatus      `json:"cache"`
		Flags []FlagListEntry `json:"flags"`
	}{Cache: flagStatusJSON(h.deps.Flags.Status()), Flags: []FlagListEntry{}}
	if raw, _, ok := h.deps.Flags.Definitions(); ok {
		var doc struct {
			Flags []struct {
				Key     string `json:"key"`
				ID      int64  `json:"id"`
				Active  bool   `json:"active"`
				Filters struct {
					Agg          *int `json:"aggregation_group_type_index"`
					Multivariate *struct {
						Variants []json.RawMessage `json:"variants"`
					} `json:"multivariate"`
				} `json:"filters"`
			} `json:"flags"`
		}
		if err := json.Unmarshal(raw, &doc); err == nil {
			for _, f := range doc.Flags {
				e := FlagListEntry{Key: f.Key, ID: f.ID, Active: f.Active, GroupType: f.Filters.Agg}
				if f.Filters.Multivariate != nil {
					e.Variants = len(f.Filters.Multivariate.Variants)
				}
				out.Flags = append(out.Flags, e)
			}
		}
	}
	writeJSON(w, 200, out)
}

// EvaluateRequest is the CLI's flag question (POST /hogrelay/v1/flags/evaluate).
type EvaluateRequest struct {
	Key              string                    `json:"key,omitempty"` // "" = every flag
	DistinctID       string                    `json:"distinct_id"`
	Groups           map[string]string         `json:"groups,omitempty"`
	PersonProperties map[string]any            `json:"person_properties,omitempty"`
	GroupProperties  map[string]map[string]any `json:"group_properties,omitempty"`
	OnlyLocal        bool                      `json:"only_evaluate_locally,omitempty"`
	// SendCalledEvent records $feature_flag_called, as the SDKs' get calls do.
	SendCalledEvent bool `json:"send_feature_flag_events,omitempty"`
}

// EvaluateAnswer is one flag's answer: Value is null when there is none,
// and Error says why.
type EvaluateAnswer struct {
	Key     string          `json:"key"`
	Value   any             `json:"value"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	// LocallyEvaluated is false when PostHog's /flags gave the answer.
	LocallyEvaluated bool   `json:"locally_evaluated"`
	Error            string `json:"error,omitempty"`
}

func (h *Handler) handleFlagsEvaluate(w http.ResponseWriter, r *http.Request) {
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	var req EvaluateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeText(w, http.StatusBadRequest, "bad request: "+err.Error())
		return
	}
	if req.DistinctID == "" {
		writeText(w, http.StatusBadRequest, "missing distinct_id")
		return
	}
	in := eval.Input{DistinctID: req.DistinctID, Groups: req.Groups, PersonProperties: req.PersonProperties, GroupProperties: req.GroupProperties}
	ask := flags.Ask{Input: in, OnlyLocal: req.OnlyLocal, UserAgent: "hogrelay-cli"}
	if req.Key != "" {
		ans := EvaluateAnswer{Key: req.Key}
		source := "local"
		res, err := h.deps.Flags.Local(req.Key, in)
		if err != nil && !errors.Is(err, flags.ErrQuotaLimited) {
			source = "remote"
			res, err = h.deps.Flags.Flag(r.Context(), req.Key, ask)
		}
		if err != nil {
			source = "none"
			ans.Error = err.Error()
		} else {
			ans.Value, ans.Payload, ans.Reason = res.Value(), res.Payload, res.Reason.Code
			ans.LocallyEvaluated = source == "local"
			if req.SendCalledEvent {
				h.recordFlagCalled(r.Context(), req.DistinctID, req.Groups, res, ans.LocallyEvaluated)
			}
		}
		h.metrics.flagEval.WithLabelValues(source).Inc()
		writeJSON(w, 200, ans)
		return
	}
	all, err := h.deps.Flags.All(r.Context(), ask)
	if err != nil && !errors.Is(err, flags.ErrNoAnswer) {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	h.countAnswers(all)
	out := struct {
		Flags                map[string]any             `json:"flags"`
		Payloads             map[string]json.RawMessage `json:"payloads"`
		ErrorsWhileComputing bool                       `json:"errors_while_computing_flags"`
		QuotaLimited         bool                       `json:"quota_limited,omitempty"`
		Error                string                     `json:"error,omitempty"`
	}{Flags: map[string]any{}, Payloads: map[string]json.RawMessage{}, ErrorsWhileComputing: all.ErrorsWhileComputing || err != nil, QuotaLimited: all.QuotaLimited}
	if err != nil {
		out.Error = err.Error()
	}
	for k, res := range all.Flags {
		out.Flags[k] = res.Value()
		if len(res.Payload) > 0 {
			out.Payloads[k] = res.Payload
		}
	}
	writeJSON(w, 200, out)
}

// recordFlagCalled spools a $feature_flag_called event the first time a
// distinct id sees a flag value, as the SDKs do (their dedupe is per
// distinct_id, flag and value).
func (h *Handler) recordFlagCalled(ctx context.Context, distinctID string, groups map[string]string, res eval.Result, local bool) {
	token := h.ingest.Load().DefaultToken
	if token == "" {
		return
	}
	valueJSON, _ := json.Marshal(res.Value())
	if !h.called.firstTime(distinctID + "\x00" + res.Key + "\x00" + string(valueJSON)) {
		return
	}
	props := map[string]any{
		"$feature_flag": res.Key, "$feature_flag_response": res.Value(), "locally_evaluated": local,
		"$feature_flag_id": res.ID, "$feature_flag_version": res.Version, "$feature_flag_reason": res.Reason.Description,
		"$feature/" + res.Key: res.Value(), "$lib": "hogrelay",
	}
	if len(groups) > 0 {
		props["$groups"] = groups
	}
	ev, err := json.Marshal(map[string]any{
		"uuid": mustV7(), "event": "$feature_flag_called", "distinct_id": distinctID,
		"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "properties": props,
	})
	if err != nil {
		return
	}
	if err := h.deps.Spool.Append(ctx, token, false, [][]byte{ev}); err != nil {
		h.log.Warn().Err(err).Str("flag", res.Key).Msg("could not record $feature_flag_called")
	}
}

func mustV7() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// calledCache remembers which (distinct id, flag, value) were reported, up to
// a bound; the oldest entries are forgotten first.
type calledCache struct {
	mu    sync.Mutex
	seen  map[string]struct{}
	order []string
	next  int
}

func newCalledCache(n int) *calledCache {
	return &calledCache{seen: make(map[string]struct{}, n), order: make([]string, n)}
}

func (c *calledCache) firstTime(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[k]; ok {
		return false
	}
	if old := c.order[c.next]; old != "" {
		delete(c.seen, old)
	}
	c.order[c.next] = k
	c.next = (c.next + 1) % len(c.order)
	c.seen[k] = struct{}{}
	return true
}
