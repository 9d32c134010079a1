package api

// PostHog's flag endpoints for SDKs: POST /flags and /decide, answered in
// the response shape of the version the SDK asked for.

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

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
	if len(raw) == 0 || string(raw) == "null" {
		return eval.Input{}, token, errors.New("missing distinct_id")
	}
	// An empty distinct_id is valid, as for PostHog's flags service
	// (FlagRequest::extract_distinct_id); only a missing one is refused.
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		id = string(raw) // numbers are stringified, as PostHog does
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
	version, _ := strconv.Atoi(r.URL.Query().Get("v"))
	writeJSON(w, 200, shapeFlagsResponse(all, decide, version, r.URL.Query().Has("v")))
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
