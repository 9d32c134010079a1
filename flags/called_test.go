package flags

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
)

func TestCalledEventsOncePerDistinctIDFlagAndValue(t *testing.T) {
	e := NewCalledEvents(2)
	on := eval.Result{Key: "f", Enabled: true}
	red := eval.Result{Key: "f", Enabled: true, Variant: "red"}
	steps := []struct {
		id   string
		res  eval.Result
		sent bool
	}{
		{"u1", on, true},
		{"u1", on, false}, // same triple
		{"u1", red, true}, // another value
		{"u2", on, true},  // another person; forgets (u1, on)
		{"u1", on, true},  // forgotten, so reported again
		{"u2", on, false},
	}
	for i, st := range steps {
		_, ok, err := e.Event(Called{DistinctID: st.id, Result: st.res})
		require.NoError(t, err)
		require.Equal(t, st.sent, ok, "step %d", i)
	}
}

func TestCalledEventShape(t *testing.T) {
	e := NewCalledEvents(10)
	e.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC) }
	ev, ok, err := e.Event(Called{DistinctID: "u1", Groups: map[string]string{"company": "acme"}, Local: true,
		Result: eval.Result{Key: "f", Enabled: true, Variant: "red", ID: 7, Version: 3, Reason: eval.Reason{Description: "Matched condition set 1"}}})
	require.NoError(t, err)
	require.True(t, ok)
	var got map[string]any
	require.NoError(t, json.Unmarshal(ev, &got))
	require.Equal(t, "$feature_flag_called", got["event"])
	require.Equal(t, "u1", got["distinct_id"])
	require.Equal(t, "2026-01-02T03:04:05.006Z", got["timestamp"])
	require.NotEmpty(t, got["uuid"])
	props := got["properties"].(map[string]any)
	require.Equal(t, "f", props["$feature_flag"])
	require.Equal(t, "red", props["$feature_flag_response"])
	require.Equal(t, "red", props["$feature/f"])
	require.Equal(t, true, props["locally_evaluated"])
	require.EqualValues(t, 7, props["$feature_flag_id"])
	require.EqualValues(t, 3, props["$feature_flag_version"])
	require.Equal(t, map[string]any{"company": "acme"}, props["$groups"])
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
