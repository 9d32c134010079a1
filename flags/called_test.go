package flags

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
)

func answered(res eval.Result, src Source) Called {
	return Called{Key: res.Key, Answer: Answer{Result: res, Source: src}, Answered: true}
}

// The SDKs report a flag once per distinct id, flag, value and groups
// (posthog-node _captureFlagCalledEventIfNeeded, posthog-python
// _capture_feature_flag_called_if_needed).
func TestCalledEventsOncePerDistinctIDFlagValueAndGroups(t *testing.T) {
	e := NewCalledEvents(3, "hogrelay", "1.2.3", true)
	on := eval.Result{Key: "f", Enabled: true}
	red := eval.Result{Key: "f", Enabled: true, Variant: "red"}
	with := func(id string, c Called, groups map[string]string) Called {
		c.DistinctID, c.Groups = id, groups
		return c
	}
	acme := map[string]string{"company": "acme"}
	steps := []struct {
		c    Called
		sent bool
	}{
		{with("u1", answered(on, SourceLocal), nil), true},
		{with("u1", answered(on, SourceRemote), nil), false}, // same triple, another source
		{with("u1", answered(red, SourceLocal), nil), true},  // another value
		{with("u1", answered(red, SourceLocal), acme), true}, // another group context
		{with("u2", answered(on, SourceLocal), nil), true},   // another person; forgets (u1, on)
		{with("u1", answered(on, SourceLocal), nil), true},   // forgotten, so reported again
		{with("u2", answered(on, SourceLocal), nil), false},
		{with("u3", Called{Key: "f", Err: errors.New("x")}, nil), true}, // no answer is reported too, as null
		{with("u3", Called{Key: "f", Err: errors.New("y")}, nil), false},
	}
	for i, st := range steps {
		_, ok, err := e.Event(st.c)
		require.NoError(t, err)
		require.Equal(t, st.sent, ok, "step %d", i)
	}
}

func TestCalledEventProperties(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	loaded := now.Add(-time.Minute)
	cases := []struct {
		name string
		c    Called
		want map[string]any // properties beyond $feature_flag, $lib, $lib_version, $geoip_disable
	}{
		{"remote", Called{DistinctID: "u1", Key: "f", Groups: map[string]string{"company": "acme"}, Answered: true,
			Answer: Answer{Result: eval.Result{Key: "f", Enabled: true, Variant: "red", ID: 7, Version: 3,
				Reason: eval.Reason{Code: "condition_match", Description: "Matched condition set 1"}},
				Source: SourceRemote, RequestID: "req-1", EvaluatedAt: 1767323045000}},
			map[string]any{"$feature_flag_response": "red", "$feature/f": "red", "locally_evaluated": false,
				"$feature_flag_id": 7.0, "$feature_flag_version": 3.0, "$feature_flag_reason": "Matched condition set 1",
				"$feature_flag_request_id": "req-1", "$feature_flag_evaluated_at": 1767323045000.0,
				"$groups": map[string]any{"company": "acme"}}},
		{"local", Called{DistinctID: "u1", Key: "f", Answered: true, DefinitionsLoadedAt: loaded,
			Answer: Answer{Result: eval.Result{Key: "f", Enabled: false, ID: 7, Version: 3, Reason: eval.Reason{Code: "no_condition_match"}}, Source: SourceLocal}},
			map[string]any{"$feature_flag_response": false, "$feature/f": false, "locally_evaluated": true,
				"$feature_flag_id": 7.0, "$feature_flag_version": 3.0, "$feature_flag_reason": "no_condition_match",
				"$feature_flag_evaluated_at": float64(now.UnixMilli()), "$feature_flag_definitions_loaded_at": float64(loaded.UnixMilli())}},
		{"PostHog had errors", Called{DistinctID: "u1", Key: "f", Answered: true,
			Answer: Answer{Result: eval.Result{Key: "f", Enabled: true}, Source: SourceRemote, ErrorsWhileComputing: true}},
			map[string]any{"$feature_flag_response": true, "$feature/f": true, "locally_evaluated": false,
				"$feature_flag_error": "errors_while_computing_flags"}},
		{"no answer: PostHog unreachable", Called{DistinctID: "u1", Key: "f",
			Err: newNoAnswer("down", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})},
			map[string]any{"$feature_flag_response": nil, "$feature/f": nil, "locally_evaluated": false,
				"$feature_flag_error": "connection_error"}},
		{"no answer: 500", Called{DistinctID: "u1", Key: "f", Err: newNoAnswer("x", &StatusError{Code: 500, Err: errors.New("500")})},
			map[string]any{"$feature_flag_response": nil, "$feature/f": nil, "locally_evaluated": false, "$feature_flag_error": "api_error_500"}},
		{"no answer: timeout", Called{DistinctID: "u1", Key: "f", Err: context.DeadlineExceeded},
			map[string]any{"$feature_flag_response": nil, "$feature/f": nil, "locally_evaluated": false, "$feature_flag_error": "timeout"}},
		{"no answer: quota", Called{DistinctID: "u1", Key: "f", Err: newNoAnswer("q", ErrQuotaLimited)},
			map[string]any{"$feature_flag_response": nil, "$feature/f": nil, "locally_evaluated": false, "$feature_flag_error": "quota_limited"}},
		{"no answer: no such flag", Called{DistinctID: "u1", Key: "f", Err: newNoAnswer("n", eval.ErrUnknownFlag)},
			map[string]any{"$feature_flag_response": nil, "$feature/f": nil, "locally_evaluated": false, "$feature_flag_error": "flag_missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := NewCalledEvents(10, "hogrelay", "1.2.3", true)
			e.now = func() time.Time { return now }
			ev, ok, err := e.Event(tc.c)
			require.NoError(t, err)
			require.True(t, ok)
			var got map[string]any
			require.NoError(t, json.Unmarshal(ev, &got))
			require.Equal(t, "$feature_flag_called", got["event"])
			require.Equal(t, "u1", got["distinct_id"])
			require.Equal(t, "2026-01-02T03:04:05.006Z", got["timestamp"])
			require.NotEmpty(t, got["uuid"])
			want := map[string]any{"$feature_flag": "f", "$lib": "hogrelay", "$lib_version": "1.2.3", "$geoip_disable": true}
			for k, v := range tc.want {
				want[k] = v
			}
			require.Equal(t, want, got["properties"])
		})
	}
}

func TestFeatureProperties(t *testing.T) {
	cases := []struct {
		name  string
		flags map[string]eval.Result
		want  string
	}{
		{"none", map[string]eval.Result{}, `"$active_feature_flags":[]`},
		{"sorted, active only in the list", map[string]eval.Result{
			"b": {Key: "b", Enabled: true, Variant: "red"},
			"a": {Key: "a", Enabled: false},
			"c": {Key: "c", Enabled: true},
		}, `"$feature/a":false,"$feature/b":"red","$feature/c":true,"$active_feature_flags":["b","c"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := featureProperties(tc.flags)
			require.Equal(t, tc.want, got)
			require.True(t, json.Valid([]byte("{"+got+"}")))
		})
	}
}
