// Package cli implements hogrelay's commands. serve and dev run the agent;
// the others talk to a running agent over its unix socket (or, for spool
// tools, read the spool file of a stopped agent).
//
// Each command is a small type with Run(ctx, args) and Usage() in its own
// file, registering only the flags it uses (litestream's and bbolt's shape);
// commands with subcommands (flags, spool, spool dead-letters) are a group
// that dispatches to them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Version is set at build time (-ldflags "-X github.com/hogrelay/hogrelay/cli.Version=…").
var Version = "dev"

// env carries the process's streams and environment so commands are testable.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one CLI command.
type command interface {
	// Run executes the command with the arguments that follow its name.
	Run(ctx context.Context, args []string) error
	// Usage is the help text: the usage line (naming positional arguments)
	// and what the command does. -h prints it followed by the flags.
	Usage() string
}

// entry names a command in a list; new builds it for one run.
type entry struct {
	name    string
	summary string
	new     func(e env) command
}

// commands is the top-level list, in the order the help shows them.
func commands() []entry {
	return []entry{
		{"serve", "run the agent", func(e env) command { return &serveCmd{env: e} }},
		{"dev", "try it: the agent plus a local PostHog stand-in, no account needed", func(e env) command { return &devCmd{env: e} }},
		{"check-config", "validate a config file and exit", func(e env) command { return &checkConfigCmd{env: e} }},
		{"status", "show what the agent is doing", func(e env) command { return &statusCmd{env: e} }},
		{"capture", "send an event", func(e env) command { return &captureCmd{env: e} }},
		{"identify", "identify a person", func(e env) command { return &identifyCmd{env: e} }},
		{"alias", "alias two distinct ids", func(e env) command { return &aliasCmd{env: e} }},
		{"group-identify", "set a group's properties", func(e env) command { return &groupIdentifyCmd{env: e} }},
		{"pageview", "send a $pageview", func(e env) command { return &pageviewCmd{env: e} }},
		{"flags", "feature flags: " + names(flagsCommands()), func(e env) command { return newFlagsGroup(e) }},
		{"spool", "spool tools: " + names(spoolCommands()), func(e env) command { return newSpoolGroup(e) }},
		{"version", "print the version", func(e env) command { return &versionCmd{env: e} }},
	}
}

// Main runs one command and returns the process exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(context.Background(), env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

func run(ctx context.Context, e env, args []string) int {
	top := &group{env: e, name: "", summary: "durable PostHog event forwarder and feature-flag cache", subs: commands()}
	if len(args) > 0 && args[0] == "--version" {
		args = []string{"version"}
	}
	if len(args) == 0 {
		// No command at all is a request for help, not a mistake.
		args = []string{"help"}
	}
	return exitCode(e, top.Run(ctx, args))
}

// exitCode reports err on stderr and maps it to the process's status.
func exitCode(e env, err error) int {
	var ex exitError
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintln(e.stderr, "hogrelay:", ex.msg)
		}
		return ex.code
	case errors.As(err, &ue):
		fmt.Fprintln(e.stderr, "hogrelay:", ue.msg)
		if ue.help != "" {
			fmt.Fprintf(e.stderr, "\n%s", ue.help)
		}
		return ue.code
	default:
		fmt.Fprintln(e.stderr, "hogrelay:", err)
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

// usageError is a command line the command cannot run: the message, and the
// help to show after it.
type usageError struct {
	code int
	msg  string
	help string
}

func (e usageError) Error() string { return e.msg }

// errHelpShown means -h printed the help; the process exits 0.
var errHelpShown = errors.New("help shown")
