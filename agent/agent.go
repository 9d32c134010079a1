// Package agent wires hogrelay together: config → spool → forwarder → flag
// service → api listeners, and owns the one shutdown path.
//
// Shutdown order matters for "nothing acknowledged is lost": stop accepting
// connections and wait for in-flight requests (their commits finish and they
// get their answer), then forward for at most shutdown_timeout, then stop the
// forwarder and the flag poller, then close the spool file cleanly.
package agent

import (
	"net"
	"path/filepath"
	"strings"
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
	surfaces  []api.Surface // what each listener serves
	addrs     []string
	ownSocket []string // the socket paths this agent bound
	ready     bool
	refused   *ReloadRefusal // the last refused reload, until one succeeds
	// statusPoke asks the status notifier to send STATUS= now (a reload
	// happened); buffered, so a poke never blocks.
	statusPoke chan struct{}
}

// New opens the spool and binds the listeners. Nothing runs until Run.
func New(cfg config.Config, log zerolog.Logger, version string) (*Agent, error) {
	a := &Agent{log: log, version: version, started: time.Now(), cfg: cfg, registry: prometheus.NewRegistry(), statusPoke: make(chan struct{}, 1)}
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
	a.handler.SetAccess(accessOf(cfg))
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
		Host: cfg.PostHog.Host, BatchMaxEvents: f.BatchMaxEvents, BatchMaxBytes: int(f.BatchMaxBytes),
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

// accessOf is the TCP listener's policy from the config.
func accessOf(cfg config.Config) api.Access {
	keys := []string{cfg.PostHog.PersonalAPIKey.Reveal()}
	for _, k := range cfg.Flags.DefinitionsKeys {
		keys = append(keys, k.Reveal())
	}
	return api.Access{AllowedOrigins: cfg.Listen.AllowedOrigins, DefinitionsKeys: keys}
}

func (a *Agent) isReady() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready
}

func (a *Agent) config() config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Status is the document behind `hogrelay status`.
type Status struct {
	Version       string           `json:"version"`
	StartedAt     time.Time        `json:"started_at"`
	UptimeSeconds float64          `json:"uptime_seconds"`
	Listeners     []string         `json:"listeners"`
	AdminSocket   string           `json:"admin_socket,omitempty"`
	PostHogHost   string           `json:"posthog_host"`
	Spool         spool.Stats      `json:"spool"`
	OldestAgeSecs float64          `json:"oldest_event_age_seconds"`
	Forwarder     forwarder.Status `json:"forwarder"`
	Flags         *api.FlagStatus  `json:"flags,omitempty"`
	// ReloadRefused is the last SIGHUP whose config was refused (the
	// running configuration was kept), until a reload succeeds.
	ReloadRefused *ReloadRefusal    `json:"reload_refused,omitempty"`
	Errors        map[string]string `json:"errors,omitempty"`
}

// Status snapshots the agent. It carries no key.
func (a *Agent) Status() Status {
	cfg := a.config()
	s := Status{
		Version: a.version, StartedAt: a.started, UptimeSeconds: time.Since(a.started).Round(time.Second).Seconds(),
		Listeners: a.producerAddrs(), AdminSocket: a.adminSocket(), PostHogHost: cfg.PostHog.Host, Forwarder: a.forwarder.Status(),
		Flags: api.FlagStatusOf(a.flags), ReloadRefused: a.reloadRefused(),
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

// producerAddrs are the listeners producers use (the admin socket is
// reported on its own).
func (a *Agent) producerAddrs() []string {
	out := make([]string, 0, len(a.addrs))
	for i, addr := range a.addrs {
		if a.surfaces[i] != api.AdminSocket {
			out = append(out, addr)
		}
	}
	return out
}

func (a *Agent) adminSocket() string {
	for i, addr := range a.addrs {
		if a.surfaces[i] == api.AdminSocket {
			return strings.TrimPrefix(addr, "unix-admin:")
		}
	}
	return ""
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
