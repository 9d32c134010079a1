package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/api"
	"github.com/hogrelay/hogrelay/config"
)

// statusCmd shows what the agent is doing.
type statusCmd struct{ env }

func (c *statusCmd) Usage() string {
	return `usage: hogrelay status [--json] [flags]

Show what the running agent is doing: its listeners, spool depth and oldest
event, dead letters, the forwarder's state and last error, and the flag
cache.`
}

func (c *statusCmd) Run(ctx context.Context, args []string) error {
	e := c.env
	fs := newFlagSet("status")
	t := addTarget(e, fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(e, fs, c.Usage(), args); err != nil {
		return err
	}
	var raw json.RawMessage
	if err := t.call(ctx, http.MethodGet, "/hogrelay/v1/status", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		fmt.Fprintln(e.stdout, string(raw))
		return nil
	}
	var s agent.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("decoding status: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string, args ...any) { fmt.Fprintf(tw, "%s\t"+v+"\n", append([]any{k}, args...)...) }
	row("version", "%s (up %s)", s.Version, (time.Duration(s.UptimeSeconds) * time.Second).String())
	for _, l := range s.Listeners {
		row("listening", "%s", l)
	}
	row("posthog", "%s", s.PostHogHost)
	row("spool", "%d events, %s (file %s, bound %s)", s.Spool.PendingEvents, config.ByteSize(s.Spool.PendingBytes).Human(), config.ByteSize(s.Spool.FileBytes).Human(), config.ByteSize(s.Spool.MaxBytes).Human())
	if s.OldestAgeSecs > 0 {
		row("oldest event", "%s old", (time.Duration(s.OldestAgeSecs) * time.Second).String())
	}
	row("dead letters", "%d events", s.Spool.DeadEvents)
	if s.Spool.DroppedEvents > 0 {
		row("dropped (full)", "%d events since start", s.Spool.DroppedEvents)
	}
	if s.Spool.OpenError != "" {
		row("SPOOL", "not open: %s", s.Spool.OpenError)
	}
	if r := s.Spool.Recovery; r != nil {
		row("SPOOL DAMAGED", "at start: %s", r.Problem)
		row("", "moved to %s; salvaged %d events and %d dead letters, %d damaged records left out", r.MovedTo, r.SalvagedEvents, r.SalvagedDeadLetters, r.DamagedRecords)
	}
	f := s.Forwarder
	state := string(f.State)
	if !f.Until.IsZero() && f.Until.After(time.Now()) {
		state += " until " + f.Until.Local().Format(time.TimeOnly)
	}
	row("forwarder", "%s", state)
	row("in flight", "%d requests (limit %.2g of max_in_flight %d)", f.InFlight, f.Limit, f.MaxInFlight)
	drain := fmt.Sprintf("%.0f events/s over the last minute", f.DrainRate)
	if f.EmptyIn > 0 {
		drain += ", backlog empty in about " + (time.Duration(f.EmptyIn) * time.Second).String()
	}
	row("drain", "%s", drain)
	if f.RefusingAll {
		row("UPSTREAM", "PostHog refuses every event; they are kept (see last error)")
	}
	row("forwarded", "%d events in %d batches since start (%d retries)", f.EventsForwarded, f.Batches, f.Retries)
	if !f.LastSuccess.IsZero() {
		row("last success", "%s", f.LastSuccess.Local().Format(time.RFC3339))
	}
	if f.LastError != "" {
		row("last error", "%s at %s", f.LastError, f.LastErrorAt.Local().Format(time.RFC3339))
	}
	if r := s.ReloadRefused; r != nil {
		row("reload refused", "%s at %s (the running configuration is kept)", r.Error, r.At.Local().Format(time.RFC3339))
	}
	if fl := s.Flags; fl != nil {
		age := "never"
		if !fl.FetchedAt.IsZero() {
			age = (time.Duration(fl.AgeSeconds) * time.Second).String() + " old"
		}
		row("flags", "%d definitions from %s, %s", fl.FlagCount, fl.Source, age)
		for _, l := range api.FlagModeLines(*fl) {
			name, text, _ := strings.Cut(l, ": ")
			row("flags "+name, "%s", text)
		}
		if fl.QuotaLimited {
			row("flags quota", "LIMITED: flags are not evaluated until PostHog serves definitions again")
		}
		if fl.LastError != "" {
			row("flags error", "%s", fl.LastError)
		}
	}
	return tw.Flush()
}
