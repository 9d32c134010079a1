package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// leaf is a runnable command and the words that name it.
type leaf struct {
	path []string
	cmd  command
}

// leaves walks the command tree.
func leaves(prefix []string, es []entry) []leaf {
	var out []leaf
	for _, e := range es {
		path := append(append([]string{}, prefix...), e.name)
		c := e.new(env{})
		if g, ok := c.(*group); ok {
			out = append(out, leaves(path, g.subs)...)
			continue
		}
		out = append(out, leaf{path, c})
	}
	return out
}

// positionals returns a placeholder for each positional argument the
// command's usage line names: upper-case words not following a --flag.
func positionals(l leaf) []string {
	line := strings.SplitN(l.cmd.Usage(), "\n", 2)[0]
	words := strings.Fields(strings.TrimPrefix(line, "usage: hogrelay "+strings.Join(l.path, " ")))
	var out []string
	for i, w := range words {
		if w == strings.ToUpper(w) && strings.Trim(w, "[]") == w && !strings.HasPrefix(w, "-") && (i == 0 || !strings.HasPrefix(words[i-1], "-")) {
			out = append(out, "placeholder-"+strings.ToLower(w))
		}
	}
	return out
}

func TestEveryCommandAnswersHelp(t *testing.T) {
	all := leaves(nil, commands())
	require.Greater(t, len(all), 15)
	for _, l := range all {
		for _, h := range []string{"-h", "--help"} {
			name := strings.Join(l.path, " ")
			t.Run(name+" "+h, func(t *testing.T) {
				out, errOut, code := runCLI(t, nil, append(l.path, h)...)
				require.Zero(t, code, errOut)
				require.Empty(t, errOut)
				require.True(t, strings.HasPrefix(out, "usage: hogrelay "+name), "help starts with its usage line:\n%s", out)
				require.Contains(t, out, l.cmd.Usage())
			})
		}
	}
	for _, g := range [][]string{{}, {"flags"}, {"spool"}, {"spool", "dead-letters"}} {
		for _, h := range []string{"-h", "--help", "help"} {
			t.Run(strings.Join(g, " ")+" "+h, func(t *testing.T) {
				out, errOut, code := runCLI(t, nil, append(g, h)...)
				require.Zero(t, code, errOut)
				require.Contains(t, out, "usage: "+strings.TrimSpace("hogrelay "+strings.Join(g, " "))+" <command>")
			})
		}
	}
}

func TestHelpIsWhatTheBareCommandPrints(t *testing.T) {
	bare, _, code := runCLI(t, nil)
	require.Zero(t, code)
	h, _, _ := runCLI(t, nil, "--help")
	require.Equal(t, bare, h)
	for _, l := range leaves(nil, commands()) {
		require.Contains(t, bare, "\n  "+l.path[0]+" ", "the top-level help lists %s", l.path[0])
	}
	// help X is X -h.
	viaHelp, _, code := runCLI(t, nil, "help", "capture")
	require.Zero(t, code)
	direct, _, _ := runCLI(t, nil, "capture", "-h")
	require.Equal(t, direct, viaHelp)
}

func TestEachCommandListsOnlyItsOwnFlags(t *testing.T) {
	help := func(args ...string) string {
		out, _, code := runCLI(t, nil, append(args, "-h")...)
		require.Zero(t, code)
		return out
	}
	cases := []struct {
		args     []string
		has, not []string
	}{
		{[]string{"spool", "export"}, []string{"-dead-letters", "-file", "-socket"}, nil},
		{[]string{"spool", "stats"}, []string{"-file", "-socket", "-config"}, []string{"-dead-letters"}},
		{[]string{"spool", "compact"}, []string{"-file"}, []string{"-dead-letters"}},
		{[]string{"spool", "dead-letters", "list"}, []string{"-file"}, []string{"-dead-letters"}},
		{[]string{"spool", "dead-letters", "drop"}, []string{"-file"}, []string{"-dead-letters"}},
		{[]string{"flags", "get"}, []string{"-payload", "-distinct-id"}, []string{"-file", "-token"}},
		{[]string{"flags", "enabled"}, []string{"-distinct-id"}, []string{"-payload"}},
		{[]string{"flags", "all"}, []string{"-distinct-id"}, []string{"-payload"}},
		{[]string{"flags", "reload"}, []string{"-socket"}, []string{"-distinct-id", "-json"}},
		{[]string{"capture"}, []string{"-token", "-event", "-send-feature-flags"}, []string{"-file", "-url"}},
		{[]string{"pageview"}, []string{"-token", "-url"}, []string{"-event"}},
		{[]string{"status"}, []string{"-json", "-socket"}, []string{"-file"}},
		{[]string{"check-config"}, []string{"-config"}, []string{"-socket"}},
		{[]string{"version"}, nil, []string{"-socket", "-config"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := help(tc.args...)
			for _, f := range tc.has {
				require.Regexp(t, `(?m)^  `+f+`( |$)`, out)
			}
			for _, f := range tc.not {
				require.NotRegexp(t, `(?m)^  `+f+`( |$)`, out)
			}
		})
	}
}

func TestUsageLinesNamePositionalArguments(t *testing.T) {
	for _, sub := range []string{"get", "enabled"} {
		out, _, _ := runCLI(t, nil, "flags", sub, "-h")
		require.True(t, strings.HasPrefix(out, "usage: hogrelay flags "+sub+" KEY "), out)
	}
	_, errOut, code := runCLI(t, nil, "flags", "get", "--distinct-id", "u1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "flags get needs KEY")
}

func TestAnUnexpectedArgumentIsAnError(t *testing.T) {
	for _, l := range leaves(nil, commands()) {
		// Give the positional arguments the usage line names (flags get
		// KEY, spool salvage FILE), then one more.
		args := append(append([]string{}, l.path...), positionals(l)...)
		args = append(args, "stray")
		t.Run(strings.Join(l.path, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, args...)
			require.Equal(t, 2, code, errOut)
			require.Contains(t, errOut, `unexpected argument "stray"`)
			require.Contains(t, errOut, "-h' for its usage")
		})
	}
	for _, args := range [][]string{{"frobnicate"}, {"spool", "frobnicate"}, {"spool", "dead-letters", "frobnicate"}, {"flags", "frobnicate"}} {
		_, errOut, code := runCLI(t, nil, args...)
		require.Equal(t, 2, code, args)
		require.Contains(t, errOut, `"frobnicate"`)
	}
	_, errOut, code := runCLI(t, nil, "status", "--no-such-flag")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "flag provided but not defined: -no-such-flag")
}

func TestGroupsWithoutASubcommandSayWhichExist(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"flags"}, "hogrelay flags needs a subcommand: get, enabled, all, list, reload"},
		{[]string{"spool"}, "hogrelay spool needs a subcommand: stats, export, dead-letters, compact"},
		{[]string{"spool", "dead-letters"}, "hogrelay spool dead-letters needs a subcommand: list, requeue, drop"},
	} {
		_, errOut, code := runCLI(t, nil, tc.args...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, tc.want)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := runCLI(t, nil, args...)
		require.Zero(t, code, errOut)
		require.Equal(t, "hogrelay "+Version+"\n", out)
	}
}
