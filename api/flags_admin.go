package api

// The CLI's flag calls: /hogrelay/v1/flags (list), flags/reload and
// flags/evaluate, and the flag part of the status document.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hogrelay/hogrelay/flags"
	"github.com/hogrelay/hogrelay/flags/eval"
)

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
				h.recordFlagCalled(r.Context(), flags.Called{DistinctID: req.DistinctID, Groups: req.Groups, Result: res, Local: ans.LocallyEvaluated})
			}
		}
		writeJSON(w, 200, ans)
		return
	}
	all, err := h.deps.Flags.All(r.Context(), ask)
	if err != nil && !errors.Is(err, flags.ErrNoAnswer) {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
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
// distinct id sees a flag value, as the SDKs do.
func (h *Handler) recordFlagCalled(ctx context.Context, c flags.Called) {
	token := h.ingest.Load().DefaultToken
	if token == "" {
		return
	}
	ev, ok, err := h.called.Event(c)
	if err != nil {
		h.log.Warn().Err(err).Msg("could not build $feature_flag_called")
		return
	}
	if !ok {
		return
	}
	if err := h.deps.Spool.Append(ctx, token, false, [][]byte{ev}); err != nil {
		h.log.Warn().Err(err).Str("flag", c.Result.Key).Msg("could not record $feature_flag_called")
	}
}
