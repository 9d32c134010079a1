// Package agent wires hogrelay together: config → spool → forwarder → flag
// service → api listeners, and owns the one shutdown path.
//
// Shutdown order matters for "nothing acknowledged is lost": stop accepting
// connections and wait for in-flight requests (their commits finish and they
// get their answer), then forward for at most shutdown_timeout, then stop the
// forwarder and the flag poller, then close the spool file cleanly.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/api"
	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/flags"
	"github.com/hogrelay/hogrelay/forwarder"
	"github.com/hogrelay/hogrelay/logging"
	"github.com/hogrelay/hogrelay/sdnotify"
	"github.com/hogrelay/hogrelay/spool"
)

// SpoolFile is the spool's file name inside data_dir.
const SpoolFile = "spool.db"

// Agent is one running hogrelay.
type Agent struct {
	log     zerolog.Logger
	version string
	started time.Time

	mu  sync.Mutex
	cfg config.Config

	spool     *spool.Spool
	forwarder *forwarder.Forwarder
	flags     *flags.Service
	handler   *api.Handler
	registry  *prometheus.Registry

	listeners []net.Listener
	addrs     []string
	ownSocket string // the socket path this agent bound ("" = none)
	ready     bool
}

// New opens the spool and binds the listeners. Nothing runs until Run.
func New(cfg config.Config, log zerolog.Logger, version string) (*Agent, error) {
	a := &Agent{log: log, version: version, started: time.Now(), cfg: cfg, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	policy, err := spool.ParsePolicy(cfg.Spool.WhenFull)
	if err != nil {
		return nil, err
	}
	a.spool, err = spool.Open(spool.Options{
		Path: filepath.Join(cfg.DataDir, SpoolFile), MaxBytes: int64(cfg.Spool.MaxBytes),
		WhenFull: policy, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	fo := forwarderOptions(cfg, version)
	fo.Logger, fo.Registerer = log, a.registry
	a.forwarder = forwarder.New(a.spool, fo)

	a.flags, err = flags.New(flags.Options{
		Host: cfg.PostHog.Host, ProjectToken: cfg.PostHog.APIKey.Reveal(),
		PersonalAPIKey: cfg.PostHog.PersonalAPIKey.Reveal(), PollInterval: cfg.Flags.PollInterval.D(),
		Dir: cfg.DataDir, OnlyEvaluateLocally: cfg.Flags.OnlyEvaluateLocally, Logger: log,
	})
	if err != nil {
		_ = a.spool.Close()
		return nil, err
	}
	a.handler = api.New(api.Deps{
		Spool: a.spool, Forwarder: a.forwarder, Flags: a.flags, Status: func() any { return a.Status() },
		Registry: a.registry, Logger: log, Ready: a.isReady,
	}, a.ingestOptions(cfg))
	a.registerMetrics()

	if err := a.listen(cfg); err != nil {
		a.closeListeners()
		_ = a.spool.Close()
		return nil, err
	}
	return a, nil
}

func forwarderOptions(cfg config.Config, version string) forwarder.Options {
	f := cfg.Forwarder
	return forwarder.Options{
		Host: cfg.PostHog.Host, BatchMaxEvents: f.BatchMaxEvents, BatchMaxBytes: int(f.BatchMaxBytes), MaxInFlight: f.MaxInFlight,
		RequestTimeout: f.RequestTimeout.D(), BackoffInitial: f.BackoffInitial.D(), BackoffMax: f.BackoffMax.D(),
		AuthRetryInterval: f.AuthRetryInterval.D(), CompactAbove: int64(cfg.Spool.CompactAbove),
		UserAgent: "hogrelay/" + version,
	}
}

func (a *Agent) ingestOptions(cfg config.Config) capture.Options {
	o := capture.Options{
		DefaultToken: cfg.PostHog.APIKey.Reveal(), MaxEventBytes: int(cfg.Ingest.MaxEventBytes),
		FlagProperties: a.flags.CaptureProperties,
	}
	if len(cfg.Ingest.AllowedTokens) > 0 {
		o.AllowedTokens = make(map[string]bool, len(cfg.Ingest.AllowedTokens))
		for _, t := range cfg.Ingest.AllowedTokens {
			o.AllowedTokens[t] = true
		}
	}
	return o
}

func (a *Agent) isReady() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready
}

// Run serves until ctx is done, then shuts down in order. It returns the
// first fatal error, or nil after a clean shutdown.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.config()
	fwdCtx, stopForwarder := context.WithCancel(context.Background())
	flagsCtx, stopFlags := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); _ = a.forwarder.Run(fwdCtx) }()
	go func() { defer bg.Done(); a.flags.Run(flagsCtx) }()

	servers := make([]*http.Server, len(a.listeners))
	serveErr := make(chan error, len(a.listeners))
	for i, l := range a.listeners {
		srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: nil}
		servers[i] = srv
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("listener %s: %w", a.addrs[i], err)
			}
		}()
	}
	a.mu.Lock()
	a.ready = true
	a.mu.Unlock()
	st, _ := a.spool.Stats()
	a.log.Info().Strs("listen", a.addrs).Str("data_dir", cfg.DataDir).Str("posthog", cfg.PostHog.Host).
		Int64("spooled_events", st.PendingEvents).Str("version", a.version).Msg("hogrelay is ready")
	for _, w := range cfg.Warnings() {
		a.log.Warn().Msg(w)
	}
	if cfg.PostHog.APIKey == "" {
		a.log.Warn().Msg("[posthog] api_key is not set: events that carry no project token will be refused with 401")
	}
	if cfg.PostHog.PersonalAPIKey == "" {
		a.log.Info().Msg("[posthog] personal_api_key is not set: flag definitions are not fetched, so flags answer only from a cache file, if one exists")
	}
	if err := sdnotify.Ready(); err != nil {
		a.log.Warn().Err(err).Msg("telling systemd we are ready failed")
	}
	watchdogDone := a.watchdog(ctx)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		a.log.Error().Err(runErr).Msg("a listener failed; shutting down")
	}

	// One shutdown path from here on.
	_ = sdnotify.Stopping()
	a.mu.Lock()
	a.ready = false
	a.mu.Unlock()
	a.log.Info().Msg("shutting down: no new connections; finishing in-flight requests")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for _, srv := range servers {
		_ = srv.Shutdown(shutCtx) // waits for handlers, i.e. for their spool commits
	}
	cancel()
	a.removeSocket()

	flushFor := cfg.Forwarder.ShutdownTimeout.D()
	drainCtx, cancel := context.WithTimeout(context.Background(), flushFor)
	a.forwarder.Drain(drainCtx)
	cancel()
	stopForwarder()
	stopFlags()
	bg.Wait()
	<-watchdogDone
	st, _ = a.spool.Stats()
	if err := a.spool.Close(); err != nil && runErr == nil {
		runErr = err
	}
	a.log.Info().Int64("events_left_in_spool", st.PendingEvents).Msg("hogrelay stopped; unsent events stay in the spool for the next start")
	return runErr
}

// watchdog pings systemd at half its interval while the agent is healthy:
// the spool answers and the forwarder loop is alive.
func (a *Agent) watchdog(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	interval, ok := sdnotify.WatchdogInterval()
	if !ok {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := a.spool.Stats(); err != nil || a.forwarder.Status().State == forwarder.StateStopped {
					a.log.Error().Err(err).Msg("unhealthy: not pinging the systemd watchdog")
					continue
				}
				_ = sdnotify.Watchdog()
			}
		}
	}()
	return done
}

func (a *Agent) config() config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Reload applies what can change live and says what needs a restart. The
// agent's config afterwards is the running one: the new live values, the old
// values of everything that needs a restart (so status and the next reload
// describe what actually runs).
func (a *Agent) Reload(next config.Config) {
	_ = sdnotify.Reloading()
	defer func() { _ = sdnotify.Ready() }()
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.cfg
	run := next // becomes the running config
	var applied, restart []string
	keep := func(name string, changed bool, restore func()) {
		if changed {
			restart = append(restart, name)
			restore()
		}
	}
	keep("data_dir", next.DataDir != prev.DataDir, func() { run.DataDir = prev.DataDir })
	keep("[posthog]", next.PostHog != prev.PostHog, func() { run.PostHog = prev.PostHog })
	keep("[listen]", next.Listen != prev.Listen, func() { run.Listen = prev.Listen })
	keep("[log] format", next.Log.Format != prev.Log.Format, func() { run.Log.Format = prev.Log.Format })
	keep("[spool] max_bytes/when_full", next.Spool.MaxBytes != prev.Spool.MaxBytes || next.Spool.WhenFull != prev.Spool.WhenFull,
		func() { run.Spool.MaxBytes, run.Spool.WhenFull = prev.Spool.MaxBytes, prev.Spool.WhenFull })
	keep("[flags] only_evaluate_locally", next.Flags.OnlyEvaluateLocally != prev.Flags.OnlyEvaluateLocally,
		func() { run.Flags.OnlyEvaluateLocally = prev.Flags.OnlyEvaluateLocally })

	if run.Log.Level != prev.Log.Level {
		if err := logging.SetLevel(run.Log.Level); err == nil {
			applied = append(applied, "[log] level")
		}
	}
	if run.Forwarder != prev.Forwarder || run.Spool.CompactAbove != prev.Spool.CompactAbove {
		a.forwarder.SetOptions(forwarderOptions(run, a.version))
		applied = append(applied, "[forwarder]")
	}
	if run.Flags.PollInterval != prev.Flags.PollInterval {
		a.flags.SetPollInterval(run.Flags.PollInterval.D())
		applied = append(applied, "[flags] poll_interval")
	}
	if fmt.Sprint(run.Ingest) != fmt.Sprint(prev.Ingest) {
		a.handler.SetIngestOptions(a.ingestOptions(run))
		applied = append(applied, "[ingest]")
	}
	a.cfg = run
	// Logged without a level so a reload that raises the level to warn or
	// error still reports itself.
	a.log.Log().Str("severity", "info").Strs("applied", applied).Strs("needs_restart", restart).
		Str("config", next.Path).Msg("configuration reloaded")
}

// Status is the document behind `hogrelay status`.
type Status struct {
	Version       string            `json:"version"`
	StartedAt     time.Time         `json:"started_at"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Listeners     []string          `json:"listeners"`
	PostHogHost   string            `json:"posthog_host"`
	Spool         spool.Stats       `json:"spool"`
	OldestAgeSecs float64           `json:"oldest_event_age_seconds"`
	Forwarder     forwarder.Status  `json:"forwarder"`
	Flags         *api.FlagStatus   `json:"flags,omitempty"`
	Errors        map[string]string `json:"errors,omitempty"`
}

// Status snapshots the agent. It carries no key.
func (a *Agent) Status() Status {
	cfg := a.config()
	s := Status{
		Version: a.version, StartedAt: a.started, UptimeSeconds: time.Since(a.started).Round(time.Second).Seconds(),
		Listeners: a.addrs, PostHogHost: cfg.PostHog.Host, Forwarder: a.forwarder.Status(),
		Flags: api.FlagStatusOf(a.flags),
	}
	st, err := a.spool.Stats()
	if err != nil {
		s.Errors = map[string]string{"spool": err.Error()}
	}
	s.Spool = st
	if !st.Oldest.IsZero() {
		s.OldestAgeSecs = time.Since(st.Oldest).Round(time.Second).Seconds()
	}
	return s
}

func (a *Agent) registerMetrics() {
	a.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_forwarder_up", Help: "1 while the forwarder is sending or idle, 0 while backing off or auth failed."},
			func() float64 {
				switch a.forwarder.Status().State {
				case forwarder.StateBackingOff, forwarder.StateAuthFailed, forwarder.StateStopped:
					return 0
				}
				return 1
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_forwarder_auth_failed", Help: "1 while PostHog refuses the project key (401/403)."},
			func() float64 {
				if a.forwarder.Status().State == forwarder.StateAuthFailed {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_forwarder_last_success_timestamp_seconds", Help: "Unix time of the last batch PostHog accepted."},
			func() float64 {
				if t := a.forwarder.Status().LastSuccess; !t.IsZero() {
					return float64(t.UnixNano()) / 1e9
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_flags_cache_age_seconds", Help: "Seconds since PostHog last confirmed the flag definitions in use (0 when none)."},
			func() float64 {
				if t := a.flags.Status().FetchedAt; !t.IsZero() {
					return time.Since(t).Seconds()
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_flags_definitions", Help: "Flag definitions loaded."},
			func() float64 { return float64(a.flags.Status().FlagCount) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_flags_quota_limited", Help: "1 while PostHog reports the flags quota exceeded (flags are not evaluated)."},
			func() float64 {
				if a.flags.Status().QuotaLimited {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hogrelay_flags_polls_total", Help: "Definition polls made."},
			func() float64 { return float64(a.flags.Status().Polls) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hogrelay_flags_poll_errors_total", Help: "Definition polls that failed."},
			func() float64 { return float64(a.flags.Status().PollErrors) }),
	)
}
