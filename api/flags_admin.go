package api

// The CLI's flag calls: /hogrelay/v1/flags (list), flags/reload and
// flags/evaluate, and the flag part of the status document.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hogrelay/hogrelay/config"
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
	if err := h.deps.Flags.Reload(ctx); errors.Is(err, flags.ErrPollingDisabled) {
		st := h.deps.Flags.Status()
		mode := "flags are answered from the definitions cache file only"
		if st.RemoteEnabled {
			mode = "flags are asked of PostHog's /flags (remote evaluation) on each question, so there is nothing to reload"
		}
		writeText(w, http.StatusConflict, "no definitions to reload: polling is off because "+st.PollingOff+"; "+mode)
		return
	} else if err != nil {
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
	PollingOff     string    `json:"polling_off_because,omitempty"`
	RemoteEnabled  bool      `json:"remote_evaluation"`
	RemoteOff      string    `json:"remote_off_because,omitempty"`
	// Answers: local, remote, cached or none (see flags.Status.Answers).
	Answers         string           `json:"answers"`
	RemoteOKAt      time.Time        `json:"remote_last_ok_at,omitzero"`
	RemoteLastError string           `json:"remote_last_error,omitempty"`
	RemoteErrorAt   time.Time        `json:"remote_last_error_at,omitzero"`
	AnswerCache     *AnswerCacheJSON `json:"answer_cache,omitempty"`
	PollInterval    string           `json:"poll_interval,omitempty"`
	LastError       string           `json:"last_error,omitempty"`
	LastErrorAt     time.Time        `json:"last_error_at,omitzero"`
	LastPollAt      time.Time        `json:"last_poll_at,omitzero"`
	Polls           uint64           `json:"polls"`
	PollErrors      uint64           `json:"poll_errors"`
}

// FlagModeLines describes, for people, which mode answers flags and why
// polling is off; `hogrelay status` and `flags list` print them.
func FlagModeLines(fs FlagStatus) []string {
	var out []string
	switch fs.Answers {
	case "local":
		line := "answers: local evaluation of the definitions"
		if fs.RemoteEnabled {
			line += ", PostHog's /flags for what they cannot decide"
		}
		out = append(out, line)
	case "remote":
		out = append(out, "answers: remote evaluation (PostHog's /flags, asked for each question)")
	case "cached":
		out = append(out, "answers: CACHED — PostHog's /flags cannot be reached ("+fs.RemoteLastError+"); contexts seen before get PostHog's last answer, others none")
	default:
		why := fs.RemoteOff
		if why == "" {
			why = "PostHog reports the flags quota exceeded"
		}
		out = append(out, "answers: none — no definitions and no remote evaluation ("+why+")")
	}
	if !fs.PollingEnabled && fs.PollingOff != "" {
		out = append(out, "polling: off because "+fs.PollingOff)
	}
	if c := fs.AnswerCache; c != nil {
		out = append(out, fmt.Sprintf("answer cache: %d context(s), %s (file %s; bounds %d entries, %s, %s)",
			c.Entries, config.ByteSize(c.Bytes).Human(), config.ByteSize(c.FileBytes).Human(), c.MaxEntries, config.ByteSize(c.MaxBytes).Human(), c.MaxAge))
	}
	return out
}

// AnswerCacheJSON is the answer cache in status output.
type AnswerCacheJSON struct {
	Path       string `json:"path"`
	Entries    int    `json:"entries"`
	Bytes      int64  `json:"bytes"`
	FileBytes  int64  `json:"file_bytes"`
	MaxEntries int    `json:"max_entries"`
	MaxBytes   int64  `json:"max_bytes"`
	MaxAge     string `json:"max_age"`
	Hits       uint64 `json:"offline_hits"`
	Misses     uint64 `json:"offline_misses"`
	Evicted    uint64 `json:"evicted"`
	Dropped    uint64 `json:"dropped_writes,omitempty"`
	LastError  string `json:"last_error,omitempty"`
}

func flagStatusJSON(s flags.Status) FlagStatus {
	fs := FlagStatus{
		Source: s.Source, FetchedAt: s.FetchedAt, ETag: s.ETag, FlagCount: s.FlagCount,
		QuotaLimited: s.QuotaLimited, PollingEnabled: s.PollingEnabled, LastError: s.LastError,
		LastErrorAt: s.LastErrorAt, LastPollAt: s.LastPollAt, Polls: s.Polls, PollErrors: s.PollErrors,
	}
	fs.PollingOff, fs.RemoteEnabled, fs.RemoteOff, fs.Answers = s.PollingOff, s.RemoteEnabled, s.RemoteOff, s.Answers
	fs.RemoteOKAt, fs.RemoteLastError, fs.RemoteErrorAt = s.RemoteOKAt, s.RemoteLastError, s.RemoteErrorAt
	if c := s.AnswerCache; c != nil {
		fs.AnswerCache = &AnswerCacheJSON{Path: c.Path, Entries: c.Entries, Bytes: c.Bytes, FileBytes: c.FileBytes,
			MaxEntries: c.MaxEntries, MaxBytes: c.MaxBytes, MaxAge: c.MaxAge.String(), Hits: c.Hits, Misses: c.Misses,
			Evicted: c.Evicted, Dropped: c.Dropped, LastError: c.LastError}
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

func (h *Handler) handleFlagsCacheClear(w http.ResponseWriter, r *http.Request) {
	if h.deps.Flags == nil {
		writeText(w, http.StatusServiceUnavailable, "feature flags are not enabled on this agent")
		return
	}
	before := flagStatusJSON(h.deps.Flags.Status())
	if err := h.deps.Flags.ClearAnswers(); err != nil {
		writeText(w, http.StatusInternalServerError, "clearing the flag answer cache failed: "+err.Error())
		return
	}
	removed := 0
	if before.AnswerCache != nil {
		removed = before.AnswerCache.Entries
	}
	h.log.Info().Int("entries", removed).Msg("flag answer cache cleared")
	writeJSON(w, 200, map[string]any{"cleared_entries": removed})
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
	LocallyEvaluated bool `json:"locally_evaluated"`
	// Source is local, remote or cached ("" when there is no answer).
	Source string `json:"source,omitempty"`
	// CachedAt is set for a cached answer: when PostHog gave it.
	CachedAt time.Time `json:"cached_at,omitzero"`
	Error    string    `json:"error,omitempty"`
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
		out := EvaluateAnswer{Key: req.Key}
		ans, err := h.deps.Flags.Flag(r.Context(), req.Key, ask)
		source := "none"
		if err != nil {
			out.Error = err.Error()
		} else {
			source = string(ans.Source)
			out.Value, out.Payload, out.Reason = ans.Value(), ans.Payload, ans.Reason.Code
			out.LocallyEvaluated, out.Source, out.CachedAt = ans.Source == flags.SourceLocal, source, ans.CachedAt
		}
		if req.SendCalledEvent {
			h.recordFlagCalled(r.Context(), flags.Called{DistinctID: req.DistinctID, Groups: req.Groups, Key: req.Key,
				Answer: ans, Answered: err == nil, Err: err})
		}
		writeJSON(w, 200, out)
		return
	}
	all, err := h.deps.Flags.All(r.Context(), ask)
	if err != nil && !errors.Is(err, flags.ErrNoAnswer) {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := EvaluateAllAnswer{Flags: map[string]any{}, Payloads: map[string]json.RawMessage{}, Sources: map[string]string{},
		ErrorsWhileComputing: all.ErrorsWhileComputing || err != nil, QuotaLimited: all.QuotaLimited, CachedAt: all.CachedAt}
	if err != nil {
		out.Error = err.Error()
	}
	for k, res := range all.Flags {
		out.Flags[k] = res.Value()
		out.Sources[k] = string(all.Source[k])
		if len(res.Payload) > 0 {
			out.Payloads[k] = res.Payload
		}
	}
	writeJSON(w, 200, out)
}

// EvaluateAllAnswer is every flag's answer (`hogrelay flags all`).
type EvaluateAllAnswer struct {
	Flags                map[string]any             `json:"flags"`
	Payloads             map[string]json.RawMessage `json:"payloads"`
	Sources              map[string]string          `json:"sources"` // local, remote or cached, per flag
	ErrorsWhileComputing bool                       `json:"errors_while_computing_flags"`
	QuotaLimited         bool                       `json:"quota_limited,omitempty"`
	// CachedAt is set when answers came from the answer cache: when
	// PostHog gave the oldest of them.
	CachedAt time.Time `json:"cached_at,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// recordFlagCalled spools a $feature_flag_called event the first time a
// distinct id sees a flag value, as the SDKs do.
func (h *Handler) recordFlagCalled(ctx context.Context, c flags.Called) {
	token := h.ingest.Load().DefaultToken
	if token == "" {
		return
	}
	if c.Answered && c.Answer.Source == flags.SourceLocal {
		c.DefinitionsLoadedAt = h.deps.Flags.Status().FetchedAt
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
		h.log.Warn().Err(err).Str("flag", c.Key).Msg("could not record $feature_flag_called")
	}
}
