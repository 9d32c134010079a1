package agent

import (
	"slices"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/logging"
	"github.com/hogrelay/hogrelay/sdnotify"
)

// A reloader is one subsystem's ApplyConfig: the keys it can change while
// running, and how it takes them from the running configuration. The
// libraries (forwarder, flags, api) do not import config; their reloader
// here maps the section onto their own setter. A changed key that no
// reloader claims needs a restart, so adding a config key can never make a
// reload claim "applied" for a value nothing reads.
type reloader struct {
	claims      []config.Change
	applyConfig func(run config.Config)
}

// reloaders lists every key that applies live and who applies it. The
// order is the order they are applied: the log level first, so what the
// others log already uses it.
func (a *Agent) reloaders() []reloader {
	fwd := []config.Change{{Section: "spool", Key: "compact_above"}}
	for _, k := range []string{"batch_max_events", "batch_max_bytes", "request_timeout", "backoff_initial", "backoff_max", "auth_retry_interval"} {
		fwd = append(fwd, config.Change{Section: "forwarder", Key: k})
	}
	return []reloader{
		{claims: []config.Change{{Section: "log", Key: "level"}}, applyConfig: func(run config.Config) {
			_ = logging.SetLevel(run.Log.Level) // Validate already applied the same rule
		}},
		{claims: fwd, applyConfig: func(run config.Config) {
			a.forwarder.SetOptions(forwarderOptions(run, a.version))
		}},
		// The agent's own stop phase reads shutdown_timeout from the running
		// configuration when it starts; nothing to tell anyone now.
		{claims: []config.Change{{Section: "forwarder", Key: "shutdown_timeout"}}, applyConfig: func(config.Config) {}},
		{claims: []config.Change{{Section: "flags", Key: "poll_interval"}}, applyConfig: func(run config.Config) {
			a.flags.SetPollInterval(run.Flags.PollInterval.D())
		}},
		{claims: []config.Change{{Section: "ingest", Key: "allowed_tokens"}, {Section: "ingest", Key: "max_event_bytes"}}, applyConfig: func(run config.Config) {
			a.handler.SetIngestOptions(a.ingestOptions(run))
		}},
		// The TCP listener's browser and definitions-key policy.
		{claims: []config.Change{{Section: "listen", Key: "allowed_origins"}, {Section: "flags", Key: "definitions_keys"}}, applyConfig: func(run config.Config) {
			a.handler.SetAccess(accessOf(run))
		}},
	}
}

// ReloadResult says what a reload did, by section ("[forwarder]") and by key
// ("[forwarder] batch_max_events").
type ReloadResult struct {
	Applied, NeedsRestart         []string // sections
	AppliedKeys, NeedsRestartKeys []string // keys
}

// Reload applies what can change live and says what needs a restart. The
// agent's config afterwards is the running one: the old config plus the
// keys that were applied (so status and the next reload describe what
// actually runs, and a key that needs a restart is reported again).
func (a *Agent) Reload(next config.Config) ReloadResult {
	_ = sdnotify.Reloading()
	defer func() { _ = sdnotify.Ready() }()
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.cfg
	run := prev
	run.Path = next.Path
	var res ReloadResult
	rs := a.reloaders()
	touched := make([]bool, len(rs))
	for _, ch := range config.Diff(prev, next) {
		i := slices.IndexFunc(rs, func(r reloader) bool { return slices.Contains(r.claims, ch) })
		if i < 0 {
			res.NeedsRestartKeys = append(res.NeedsRestartKeys, ch.String())
			res.NeedsRestart = appendOnce(res.NeedsRestart, ch.SectionName())
			continue
		}
		run.Take(next, ch)
		touched[i] = true
		res.AppliedKeys = append(res.AppliedKeys, ch.String())
		res.Applied = appendOnce(res.Applied, ch.SectionName())
	}
	for i, r := range rs {
		if touched[i] {
			r.applyConfig(run)
		}
	}
	a.cfg = run
	a.refused = nil // this file loaded: an earlier refusal no longer holds
	// Logged with Log(), which no level filters, so a reload that raises
	// the level to warn or error still reports itself; the level field is
	// the same "level" every other line has.
	a.log.Log().Str(zerolog.LevelFieldName, zerolog.InfoLevel.String()).Strs("applied", res.Applied).Strs("needs_restart", res.NeedsRestart).
		Strs("applied_keys", res.AppliedKeys).Strs("needs_restart_keys", res.NeedsRestartKeys).
		Str("config", next.Path).Msg("configuration reloaded")
	a.pokeStatus()
	return res
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
