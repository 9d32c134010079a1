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
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	var err error
	a.spool, err = spool.Open(spool.Options{
		Path: filepath.Join(cfg.DataDir, SpoolFile), MaxBytes: int64(cfg.Spool.MaxBytes),
		WhenFull: cfg.Spool.WhenFull, Logger: log, WaitForDisk: true,
	})
	if err != nil {
		return nil, err
	}
	fo := forwarderOptions(cfg, version)
	fo.Logger = log
	a.forwarder = forwarder.New(a.spool, fo)

	a.flags, err = flags.New(flags.Options{
		Host: cfg.PostHog.Host, ProjectToken: cfg.PostHog.APIKey.Reveal(),
		PersonalAPIKey: cfg.PostHog.PersonalAPIKey.Reveal(), PollInterval: cfg.Flags.PollInterval.D(),
		Dir: cfg.DataDir, OnlyEvaluateLocally: cfg.Flags.OnlyEvaluateLocally, Logger: log,
		GeoIPDisable: cfg.Flags.GeoIPDisable, RemoteTimeout: cfg.Flags.RemoteTimeout.D(),
		AnswerCache: flags.AnswerCacheOptions{MaxEntries: cfg.Flags.AnswerCacheMaxEntries,
			MaxBytes: int64(cfg.Flags.AnswerCacheMaxBytes), MaxAge: cfg.Flags.AnswerCacheMaxAge.D()},
	})
	if err != nil {
		_ = a.spool.Close()
		return nil, err
	}
	a.handler = api.New(api.Deps{
		Spool: a.spool, Forwarder: a.forwarder, Flags: a.flags, Status: func() any { return a.Status() },
		Registry: a.registry, Logger: log, Ready: a.isReady, DecodeBudget: int64(cfg.Ingest.MaxDecodeBytes),
		Called: flags.NewCalledEvents(50_000, "hogrelay", version, cfg.Flags.GeoIPDisable),
	}, a.ingestOptions(cfg))
	setMemoryLimit(cfg, log)
	a.handler.SetAccess(accessOf(cfg))
	a.registerMetrics()

	if err := a.listen(cfg); err != nil {
		a.closeListeners()
		_ = a.flags.Close()
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

// setMemoryLimit gives the Go runtime a soft memory limit that follows the
// decode budget (MemoryLimit), unless the operator set GOMEMLIMIT: the GC
// then collects the garbage of decoded bodies before the heap doubles, so
// peak memory stays near the documented bound.
func setMemoryLimit(cfg config.Config, log zerolog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := MemoryLimit(cfg)
	debug.SetMemoryLimit(limit)
	log.Debug().Int64("bytes", limit).Msg("Go memory limit set from [ingest] max_decode_bytes")
}

// MemoryLimit is the soft memory limit for a config: twice the decode
// budget (the bodies being decoded plus their garbage) and 256 MiB for
// everything else (runtime, spool writes in flight, flag cache, buffers).
func MemoryLimit(cfg config.Config) int64 {
	return 2*int64(cfg.Ingest.MaxDecodeBytes) + 256<<20
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
