package cli

import (
	"context"
	"fmt"
	"strings"
)

// group is a command made of subcommands (the top level, flags, spool,
// spool dead-letters): it dispatches on the first argument, and answers
// -h/--help/help with its list.
type group struct {
	env
	name    string // "spool dead-letters"; "" for the top level
	summary string
	subs    []entry
}

func (g *group) full() string { return strings.TrimSpace("hogrelay " + g.name) }

// Usage lists the subcommands.
func (g *group) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s <command> [flags]\n\n%s\n\ncommands:\n", g.full(), g.summary)
	for _, s := range g.subs {
		fmt.Fprintf(&b, "  %-15s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(&b, "\nRun '%s <command> -h' for a command's flags.\n", g.full())
	return b.String()
}

func (g *group) Run(ctx context.Context, args []string) error {
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
		// "flags --config x": flags come after the subcommand.
		return usageError{code: 1, msg: fmt.Sprintf("%s needs a subcommand: %s", g.full(), names(g.subs)), help: g.Usage()}
	}
	switch {
	case isHelp(args[0]):
		fmt.Fprint(g.stdout, g.Usage())
		return errHelpShown
	case args[0] == "help":
		// "help X" is "X -h".
		if len(args) == 1 {
			fmt.Fprint(g.stdout, g.Usage())
			return errHelpShown
		}
		return g.Run(ctx, append(args[1:2:2], "-h"))
	}
	for _, s := range g.subs {
		if s.name == args[0] {
			return s.new(g.env).Run(ctx, args[1:])
		}
	}
	what := "command"
	if g.name != "" {
		what = g.name + " subcommand"
	}
	return usageError{code: 2, msg: fmt.Sprintf("unknown %s %q", what, args[0]), help: g.Usage()}
}

// names joins the entries' names for a one-line summary.
func names(es []entry) string {
	n := make([]string, len(es))
	for i, e := range es {
		n[i] = e.name
	}
	return strings.Join(n, ", ")
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }
