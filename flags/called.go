package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// Called is one flag question a caller looked at the answer of, the input
// to a $feature_flag_called event.
type Called struct {
	DistinctID string
	Groups     map[string]string
	Key        string
	Answer     Answer // zero when there is none
	Answered   bool
	Err        error // why there is no answer
	// DefinitionsLoadedAt is when the definitions in use were fetched (for
	// local answers, as posthog-node reports it).
	DefinitionsLoadedAt time.Time
}

// CalledEvents builds $feature_flag_called events the way PostHog's SDKs
// send them (posthog-node _getFeatureFlagResult, posthog-python
// _capture_feature_flag_called): once per distinct id, flag, value and
// groups, remembered up to a bound (the oldest are forgotten first, as the
// SDKs' bounded caches do). It is safe for concurrent use.
type CalledEvents struct {
	lib, version string
	geoIPDisable bool

	mu    sync.Mutex
	seen  map[string]struct{}
	order []string // ring of keys, oldest at next
	next  int
	now   func() time.Time
}

// NewCalledEvents remembers up to n reported (distinct id, flag, value,
// groups); events carry $lib and $lib_version, and $geoip_disable as set.
func NewCalledEvents(n int, lib, version string, geoIPDisable bool) *CalledEvents {
	n = max(n, 1)
	return &CalledEvents{lib: lib, version: version, geoIPDisable: geoIPDisable,
		seen: make(map[string]struct{}, n), order: make([]string, n), now: time.Now}
}

// Event returns the event to capture for c, or ok false when it was already
// reported.
func (e *CalledEvents) Event(c Called) (ev []byte, ok bool, err error) {
	var value any // null when there is no answer, as the SDKs send None/undefined
	if c.Answered {
		value = c.Answer.Value()
	}
	valueJSON, err := json.Marshal(value)
	if err != nil {
		return nil, false, fmt.Errorf("flags: $feature_flag_called for %q: encoding the value: %w", c.Key, err)
	}
	groupsJSON, _ := json.Marshal(c.Groups) // sorted keys
	if len(c.Groups) == 0 {
		groupsJSON = nil
	}
	if !e.firstTime(c.DistinctID + "\x00" + c.Key + "\x00" + string(valueJSON) + "\x00" + string(groupsJSON)) {
		return nil, false, nil
	}
	ev, err = json.Marshal(map[string]any{
		"uuid": newV7(), "event": "$feature_flag_called", "distinct_id": c.DistinctID,
		"timestamp": e.now().UTC().Format("2006-01-02T15:04:05.000Z"), "properties": e.properties(c, value),
	})
	if err != nil {
		return nil, false, fmt.Errorf("flags: $feature_flag_called for %q: %w", c.Key, err)
	}
	return ev, true, nil
}

func (e *CalledEvents) properties(c Called, value any) map[string]any {
	a := c.Answer
	local := c.Answered && a.Source == SourceLocal
	p := map[string]any{
		"$feature_flag": c.Key, "$feature_flag_response": value, "$feature/" + c.Key: value,
		"locally_evaluated": local, "$lib": e.lib, "$lib_version": e.version, "$geoip_disable": e.geoIPDisable,
	}
	if len(c.Groups) > 0 {
		p["$groups"] = c.Groups
	}
	if c.Answered {
		if a.ID != 0 {
			p["$feature_flag_id"] = a.ID
		}
		if a.Version != 0 {
			p["$feature_flag_version"] = a.Version
		}
		switch {
		case a.Reason.Description != "":
			p["$feature_flag_reason"] = a.Reason.Description
		case a.Reason.Code != "":
			p["$feature_flag_reason"] = a.Reason.Code
		}
		if a.RequestID != "" {
			p["$feature_flag_request_id"] = a.RequestID
		}
		switch {
		case local:
			p["$feature_flag_evaluated_at"] = e.now().UnixMilli()
			if !c.DefinitionsLoadedAt.IsZero() {
				p["$feature_flag_definitions_loaded_at"] = c.DefinitionsLoadedAt.UnixMilli()
			}
		case a.EvaluatedAt != 0:
			p["$feature_flag_evaluated_at"] = a.EvaluatedAt
		}
		if a.ErrorsWhileComputing {
			p["$feature_flag_error"] = FlagErrorErrorsWhileComputing
		}
	} else if c.Err != nil {
		p["$feature_flag_error"] = FlagError(c.Err)
	}
	return p
}

// $feature_flag_error values, as posthog-python's FeatureFlagError names them.
const (
	FlagErrorErrorsWhileComputing = "errors_while_computing_flags"
	FlagErrorMissing              = "flag_missing"
	FlagErrorQuotaLimited         = "quota_limited"
	FlagErrorTimeout              = "timeout"
	FlagErrorConnection           = "connection_error"
	FlagErrorUnknown              = "unknown_error"
)

// FlagError names why there is no answer the way the SDKs' $feature_flag_error does.
func FlagError(err error) string {
	var se *StatusError
	var ne net.Error
	switch {
	case errors.Is(err, ErrQuotaLimited):
		return FlagErrorQuotaLimited
	case errors.As(err, &se):
		return fmt.Sprintf("api_error_%d", se.Code)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return FlagErrorTimeout
	case errors.As(err, &ne):
		return FlagErrorConnection
	case errors.Is(err, eval.ErrUnknownFlag):
		return FlagErrorMissing
	}
	return FlagErrorUnknown
}

func (e *CalledEvents) firstTime(k string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.seen[k]; ok {
		return false
	}
	if old := e.order[e.next]; old != "" {
		delete(e.seen, old)
	}
	e.order[e.next] = k
	e.next = (e.next + 1) % len(e.order)
	e.seen[k] = struct{}{}
	return true
}

func newV7() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
