package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyValueFlagsKeepJSONTypes(t *testing.T) {
	got, err := kvMap("property", []string{"n=3", "f=2.5", "ok=true", "no=false", "nil=null", `tags=["a","b"]`,
		`obj={"x":1}`, "plan=pro", "empty=", "eq=a=b", `quoted="3"`})
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"n": 3.0, "f": 2.5, "ok": true, "no": false, "nil": nil, "tags": []any{"a", "b"},
		"obj": map[string]any{"x": 1.0}, "plan": "pro", "empty": "", "eq": "a=b", "quoted": "3",
	}, got)
}

func TestKeyValueFlagsRefuseMalformedInput(t *testing.T) {
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"property without =", func() error { _, err := kvMap("property", []string{"plan"}); return err }, `--property "plan": expected key=value`},
		{"property without key", func() error { _, err := kvMap("set", []string{"=x"}); return err }, `--set "=x"`},
		{"group without key", func() error { _, err := groupMap([]string{"company="}); return err }, `--group "company=": expected type=key`},
		{"group property without type", func() error { _, err := groupPropMap([]string{"plan=pro"}); return err }, `expected type.key=value`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, tc.run(), tc.want)
		})
	}
}

func TestGroupFlags(t *testing.T) {
	g, err := groupMap([]string{"company=acme", "team=core"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"company": "acme", "team": "core"}, g)
	gp, err := groupPropMap([]string{"company.plan=enterprise", "company.seats=40", "team.name=core"})
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]any{
		"company": {"plan": "enterprise", "seats": 40.0},
		"team":    {"name": "core"},
	}, gp)
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	fs := newFlagSet("t")
	id := fs.String("distinct-id", "", "")
	pos, err := parse(env{}, fs, "usage: t KEY", []string{"my-flag", "--distinct-id", "u1"}, "KEY")
	require.NoError(t, err)
	require.Equal(t, []string{"my-flag"}, pos)
	require.Equal(t, "u1", *id)
}
