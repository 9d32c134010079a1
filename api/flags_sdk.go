package api

// PostHog's flag endpoints for SDKs: POST /flags and /decide, answered in
// the response shape of the version the SDK asked for.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
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
	h.mux.HandleFunc("POST /hogrelay/v1/flags/cache/clear", h.handleFlagsCacheClear)
}

// flagsRequest is the body SDKs send to /flags and /decide, with PostHog's
// aliases (flag_request.rs): api_key/$token, $distinct_id, $groups, …
type flagsRequest struct {
	Token            string                     `json:"token"`
	APIKey           string                     `json:"api_key"`
	DollarToken      string                     `json:"$token"`
	DistinctID       json.RawMessage            `json:"distinct_id"`
	DollarDistinctID json.RawMessage            `json:"$distinct_id"`
	Groups           map[string]json.RawMessage `json:"groups"`
	DollarGroups     map[string]json.RawMessage `json:"$groups"`
	PersonProperties map[string]any             `json:"person_properties"`
	DollarProperties map[string]any             `json:"$properties"`
	GroupProperties  map[string]map[string]any  `json:"group_properties"`
	DollarGroupProps map[string]map[string]any  `json:"$group_properties"`
	FlagKeys         []string                   `json:"flag_keys"`
	FlagKeysToEval   []string                   `json:"flag_keys_to_evaluate"`
	DeviceID         string                     `json:"device_id"`
	DollarDeviceID   string                     `json:"$device_id"`
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
	if len(raw) == 0 || string(raw) == "null" {
		return eval.Input{}, token, errors.New("missing distinct_id")
	}
	// An empty distinct_id is valid, as for PostHog's flags service
	// (FlagRequest::extract_distinct_id); only a missing one is refused.
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		id = eval.NumberText(string(raw)) // a number, as serde_json prints it
	}
	id = eval.TruncateDistinctID(id)
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
			if key, ok := groupKey(v); ok {
				in.Groups[k] = key
			}
		}
	}
	return in, token, nil
}

// groupKey is a group's key as the flags service hashes it: a string as
// itself, a number as serde_json prints it ("5.0" stays "5.0"). Anything
// else (null, a boolean, a list, an object) is no group key for the
// service (get_match skips the group's conditions), so the group is left out.
func groupKey(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		return s, json.Unmarshal(raw, &s) == nil
	case c == '-' || (c >= '0' && c <= '9'):
		return eval.NumberText(string(raw)), true
	}
	return "", false
}

// readFlagsBody reads a /flags or /decide body in every encoding PostHog's
// flags service takes (JSON, gzip, base64, form data=), with capture's
// decoder: the encodings are the same.
func readFlagsBody(w http.ResponseWriter, r *http.Request, cl *claim) ([]byte, int, error) {
	const limit = 2 << 20
	body, err := readBody(w, r, limit, cl)
	if err != nil {
		status, msg := bodyError(err, limit, r.URL.Path)
		return nil, status, errors.New(msg)
	}
	payload, err := capture.Payload(capture.Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header, Body: body, Reserve: cl.reserve}, 8<<20)
	if status, msg, busy := budgetRefusal(err); busy {
		return nil, status, errors.New(msg)
	}
	if err != nil {
		status := http.StatusBadRequest
		var ce *capture.Error
		if errors.As(err, &ce) {
			status = ce.Status
		}
		return nil, status, err
	}
	return payload, 0, nil
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
		// PostHog answers GET /flags with a minimal empty response, in the
		// legacy shape unless v>=2 (endpoint.rs get_minimal_flags_response).
		v, _ := strconv.Atoi(r.URL.Query().Get("v"))
		writeJSON(w, 200, shapeFlagsResponse(flags.All{}, false, v))
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
	cl := h.budget.claim(r.Context())
	defer cl.release()
	body, status, err := readFlagsBody(w, r, cl)
	if err != nil {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
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
	// The same tokens as capture: [ingest] allowed_tokens keeps the agent
	// from asking PostHog on behalf of projects it does not serve.
	if err := h.ingest.Load().Admit(token); err != nil {
		writeText(w, http.StatusUnauthorized, err.Error())
		return
	}
	keys := fr.FlagKeysToEval
	if keys == nil {
		keys = fr.FlagKeys
	}
	all, err := h.deps.Flags.All(r.Context(), flags.Ask{Input: in, UserAgent: r.UserAgent(), FlagKeys: keys, Body: body, Token: token})
	if err != nil && !errors.Is(err, flags.ErrNoAnswer) {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err != nil {
		// Nothing could answer (offline with nothing cached, say): PostHog's
		// own answer when it cannot compute flags.
		all.ErrorsWhileComputing = !all.QuotaLimited
	}
	if !all.CachedAt.IsZero() {
		// SDKs ignore unknown headers and fields; operators and tests see
		// that PostHog could not be reached and how old the answer is.
		w.Header().Set("X-Hogrelay-Flags", fmt.Sprintf("cached; age=%d", int64(time.Since(all.CachedAt).Seconds())))
	}
	writeJSON(w, 200, shapeFlagsResponse(all, decide, responseVersion(r.URL.Query(), decide)))
}

// responseVersion is the answer version a request asks for, as the flags
// service reads it (endpoint.rs): a v that is not a number is 1; /flags with
// neither v nor config is answered as v=2; /flags with config but no v is
// v1; /decide without v is decide v1.
func responseVersion(q url.Values, decide bool) int {
	if !q.Has("v") {
		if !decide && !q.Has("config") {
			return 2
		}
		return 1
	}
	v, err := strconv.Atoi(q.Get("v"))
	if err != nil {
		return 1
	}
	return v
}

// flagsResponse is the /flags and /decide answer in every version's shape.
type flagsResponse struct {
	// Flags is a map of flags.WireFlag or PostHog's own objects; an
	// interface so that an empty v2 map is still sent (omitempty keeps it).
	Flags               any               `json:"flags,omitempty"`
	FeatureFlags        any               `json:"featureFlags,omitempty"`
	FeatureFlagPayloads map[string]string `json:"featureFlagPayloads,omitempty"`
	Errors              bool              `json:"errorsWhileComputingFlags"`
	QuotaLimited        []string          `json:"quotaLimited,omitempty"`
	// posthog-go reads the snake-case key.
	QuotaLimitedSnake []string `json:"quota_limited,omitempty"`
	RequestID         string   `json:"requestId"`
	EvaluatedAt       int64    `json:"evaluatedAt,omitempty"`
	// Hogrelay marks answers from the answer cache; SDKs ignore the field.
	Hogrelay *cachedMark `json:"hogrelay,omitempty"`
}

type cachedMark struct {
	Cached     bool      `json:"cached"`
	CachedAt   time.Time `json:"cachedAt"`
	AgeSeconds int64     `json:"ageSeconds"`
}

// shapeFlagsResponse follows the version matrix of PostHog's flags service
// (endpoint.rs get_versioned_response); v comes from responseVersion.
func shapeFlagsResponse(all flags.All, decide bool, v int) flagsResponse {
	resp := flagsResponse{Errors: all.ErrorsWhileComputing, RequestID: all.RequestID, EvaluatedAt: all.EvaluatedAt}
	if resp.RequestID == "" {
		resp.RequestID = uuid.NewString()
	}
	if all.QuotaLimited {
		resp.QuotaLimited = []string{"feature_flags"}
		resp.QuotaLimitedSnake = resp.QuotaLimited
	}
	if !all.CachedAt.IsZero() {
		resp.Hogrelay = &cachedMark{Cached: true, CachedAt: all.CachedAt.UTC(), AgeSeconds: int64(time.Since(all.CachedAt).Seconds())}
	}
	v2 := func() {
		out := make(map[string]any, len(all.Flags))
		for k, res := range all.Flags {
			if raw, ok := all.Raw[k]; ok {
				out[k] = raw // PostHog's object, fields this agent does not know included
			} else {
				out[k] = flags.WireFlagOf(res)
			}
		}
		resp.Flags = out
	}
	legacy := func() {
		ff := make(map[string]any, len(all.Flags))
		pl := map[string]string{}
		for k, res := range all.Flags {
			ff[k] = res.Value()
			if p := flags.PayloadString(res); p != nil {
				pl[k] = *p
			}
		}
		resp.FeatureFlags, resp.FeatureFlagPayloads = ff, pl
	}
	switch {
	case !decide && v >= 2:
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
