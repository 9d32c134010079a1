package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
)

// WriteManPage writes hogrelay(1) in roff, made from the commands' own -h
// output, so the man page cannot drift from the CLI.
func WriteManPage(w io.Writer, version string, date time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH HOGRELAY 1 %q %q \"User Commands\"\n", date.UTC().Format("2006-01-02"), "hogrelay "+version)
	b.WriteString(".SH NAME\nhogrelay \\- durable PostHog event forwarder and feature-flag cache\n")
	b.WriteString(".SH SYNOPSIS\n.B hogrelay\n.I command\n[\\fIflags\\fR]\n.br\n.B hogrelay\n.I command\n.B \\-h\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffLiteral("hogrelay runs as one agent per machine (hogrelay serve, usually as the systemd unit hogrelay.service). " +
		"Producers send PostHog events to its unix socket; each event is fsynced to a disk spool before it is acknowledged, " +
		"and the agent forwards the spool to PostHog with retries. Feature flags are evaluated locally from definitions " +
		"cached on disk. The other commands talk to a running agent over its socket, or work on a stopped agent's spool file."))
	b.WriteString(".SH COMMANDS\n")
	var walk func(prefix []string, es []entry) error
	walk = func(prefix []string, es []entry) error {
		for _, e := range es {
			path := append(append([]string{}, prefix...), e.name)
			help, err := helpOf(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, ".SS \"hogrelay %s\"\n.nf\n%s.fi\n", roffEscaper.Replace(strings.Join(path, " ")), roffLiteral(help))
			if g, ok := e.new(env{}).(*group); ok {
				if err := walk(path, g.subs); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(nil, commands()); err != nil {
		return err
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, v := range [][2]string{
		{EnvSocket, "the agent's socket for client commands run without --socket or --config"},
		{config.EnvAPIKey, "[posthog] api_key, instead of the config file"},
		{config.EnvPersonalAPIKey, "[posthog] personal_api_key, instead of the config file"},
		{"NO_COLOR", "when set, console logs (hogrelay dev) carry no colour codes"},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s", v[0], roffLiteral(v[1]))
	}
	fmt.Fprintf(&b, ".SH FILES\n.TP\n.I %s\nthe configuration (hogrelay check\\-config validates it)\n", config.DefaultPath)
	fmt.Fprintf(&b, ".TP\n.I %s\nthe spool (%s) and the flag definitions cache\n", config.Default().DataDir, agent.SpoolFile)
	b.WriteString(".SH EXIT STATUS\n0 on success; 1 when a command failed (the message says why); 2 for a command line it does not take; " +
		"flags enabled exits 1 for a flag that is off and 3 when the agent could not answer.\n")
	b.WriteString(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// helpOf runs "hogrelay <path> -h" and returns what it printed.
func helpOf(path []string) (string, error) {
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, append(path, "-h")); code != 0 {
		return "", fmt.Errorf("hogrelay %s -h exited %d: %s", strings.Join(path, " "), code, errOut.String())
	}
	return out.String(), nil
}

var roffEscaper = strings.NewReplacer(`\`, `\e`, "-", `\-`)

// roffLiteral escapes text for a no-fill block: backslashes and hyphens,
// characters outside ASCII (as \[uXXXX]), and a leading dot or quote, which
// roff would read as a request.
func roffLiteral(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		line = roffEscaper.Replace(line)
		var esc strings.Builder
		for _, r := range line {
			if r > 127 {
				fmt.Fprintf(&esc, `\[u%04X]`, r)
				continue
			}
			esc.WriteRune(r)
		}
		line = esc.String()
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}
