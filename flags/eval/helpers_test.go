package eval

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// obj and arr keep test definitions readable.
type obj = map[string]any
type arr = []any

// defs builds a definitions document from flags (and optional mapping/cohorts).
func defs(t testing.TB, flags arr, extra ...obj) *Evaluator {
	t.Helper()
	doc := obj{"flags": flags, "group_type_mapping": obj{}, "cohorts": obj{}}
	for _, x := range extra {
		for k, v := range x {
			doc[k] = v
		}
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	e, err := Compile(raw)
	require.NoError(t, err)
	e.now = func() time.Time { return fixedNow }
	return e
}

var fixedNow = time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC)

// flag builds an active person flag with the given condition groups.
func flag(key string, groups ...obj) obj {
	gs := arr{}
	for _, g := range groups {
		gs = append(gs, g)
	}
	return obj{"id": 1, "key": key, "active": true, "version": 3, "filters": obj{"groups": gs}}
}

func cond(rollout any, props ...obj) obj {
	ps := arr{}
	for _, p := range props {
		ps = append(ps, p)
	}
	return obj{"properties": ps, "rollout_percentage": rollout}
}

func prop(key, op string, value any) obj {
	return obj{"key": key, "operator": op, "value": value, "type": "person"}
}

// outcome is what a test expects from Evaluate: a value, or inconclusive.
type outcome struct {
	value        any // bool or variant string
	inconclusive bool
	unserved     bool // not in the definitions as PostHog serves them
}

var (
	on   = outcome{value: true}
	off  = outcome{value: false}
	inco = outcome{inconclusive: true}
	// unserved: the service cannot decode the flag and never serves it.
	unserved = outcome{unserved: true}
)

func requireOutcome(t *testing.T, want outcome, r Result, err error, msgAndArgs ...any) {
	t.Helper()
	if want.inconclusive {
		require.ErrorIs(t, err, ErrInconclusive, msgAndArgs...)
		return
	}
	if want.unserved {
		require.ErrorIs(t, err, ErrUnknownFlag, msgAndArgs...)
		return
	}
	require.NoError(t, err, msgAndArgs...)
	require.Equal(t, want.value, r.Value(), msgAndArgs...)
}

func intp(i int) *int { return &i }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
