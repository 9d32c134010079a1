package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlagSet makes a command's flag set. It neither prints nor exits:
// parse turns its errors into usage errors and -h into the command's help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("hogrelay "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// help is a command's full help: its usage text, then its flags.
func help(usage string, fs *flag.FlagSet) string {
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(usage, "\n"))
	b.WriteString("\n")
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return b.String()
}

// parse parses a command's arguments. Flags may follow positional arguments
// ("flags get KEY --distinct-id x"), which the flag package alone does not
// allow. -h/--help prints the help on stdout. The command takes exactly the
// positional arguments named in want (as its usage line shows them); a
// missing or an extra one is a usage error.
func parse(e env, fs *flag.FlagSet, usage string, args []string, want ...string) ([]string, error) {
	name := strings.TrimPrefix(fs.Name(), "hogrelay ")
	hint := fmt.Sprintf("run '%s -h' for its usage and flags\n", fs.Name())
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, help(usage, fs))
			return nil, errHelpShown
		}
		if err != nil {
			return nil, usageError{code: 2, msg: name + ": " + err.Error(), help: hint}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	switch {
	case len(positional) > len(want):
		return nil, usageError{code: 2, msg: fmt.Sprintf("%s: unexpected argument %q", name, positional[len(want)]), help: hint}
	case len(positional) < len(want):
		return nil, usageError{code: 1, msg: fmt.Sprintf("%s needs %s", name, strings.Join(want[len(positional):], " ")), help: hint}
	}
	return positional, nil
}

// kvList is a repeatable k=v flag.
type kvList []string

func (l *kvList) String() string     { return strings.Join(*l, ",") }
func (l *kvList) Set(v string) error { *l = append(*l, v); return nil }
