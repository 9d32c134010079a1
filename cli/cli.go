// Package cli implements hogrelay's subcommands. serve and dev run the agent;
// the others talk to a running agent over its unix socket (or, for spool
// tools, read the spool file of a stopped agent).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Version is set at build time (-ldflags "-X github.com/hogrelay/hogrelay/cli.Version=…").
var Version = "dev"

// env carries the process's streams so commands are testable.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	summary string
	run     func(e env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":          {"run the agent: hogrelay serve --config /etc/hogrelay/config.toml", runServe},
		"dev":            {"try it: the agent plus a local PostHog stand-in, no account needed", runDev},
		"check-config":   {"validate a config file and exit", runCheckConfig},
		"version":        {"print the version", func(e env, _ []string) error { fmt.Fprintln(e.stdout, "hogrelay", Version); return nil }},
		"capture":        {"send an event: --distinct-id ID --event NAME [--property k=v] [--set k=v] [--set-once k=v] [--group type=key]", runCapture},
		"identify":       {"identify a person: --distinct-id ID [--set k=v] [--set-once k=v]", runIdentify},
		"alias":          {"alias two ids: --distinct-id ID --alias OTHER", runAlias},
		"group-identify": {"set group properties: --type TYPE --key KEY [--property k=v]", runGroupIdentify},
		"pageview":       {"send a $pageview: --distinct-id ID --url URL", runPageview},
		"flags":          {"feature flags: get|enabled|all|list|reload", runFlags},
		"status":         {"show what the agent is doing [--json]", runStatus},
		"spool":          {"spool tools: stats|export|dead-letters list|requeue|drop|compact|salvage FILE", runSpool},
	}
}

// Main runs one command and returns the process exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hogrelay: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(e, args[1:])
	var ex exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintln(stderr, "hogrelay:", ex.msg)
		}
		return ex.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, "hogrelay:", err)
		return 1
	}
}

// exitError ends a command with a specific status (flags enabled uses 1
// for "off", which is not a failure to report).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func usage(w io.Writer) {
	fmt.Fprintln(w, "hogrelay: durable PostHog event forwarder and feature-flag cache")
	fmt.Fprintln(w, "\nusage: hogrelay <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nEvery command takes -h for its flags.")
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(e env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("hogrelay "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse handles flags given after positional arguments too
// ("flags get KEY --distinct-id x"), which the flag package alone does not.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// kvList is a repeatable k=v flag.
type kvList []string

func (l *kvList) String() string     { return strings.Join(*l, ",") }
func (l *kvList) Set(v string) error { *l = append(*l, v); return nil }
