package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/logging"
)

// problem is one broken rule inside a section: the key (empty for the
// section as a whole) and what is wrong. Validate adds the file and section.
type problem struct{ key, what string }

func problemf(key, format string, args ...any) *problem {
	return &problem{key: key, what: fmt.Sprintf(format, args...)}
}

// Validate checks every section in file order and returns the first problem
// as an *Error naming its key. A rule lives with the type it checks: token
// shape and host URL in capture, log level and format in logging.
func (c *Config) Validate() error {
	for _, s := range []struct {
		section string
		check   func() *problem
	}{
		{"", c.validateTopLevel},
		{"posthog", c.PostHog.validate},
		{"listen", c.Listen.validate},
		{"log", c.Log.validate},
		{"ingest", c.Ingest.validate},
		{"spool", c.Spool.validate},
		{"forwarder", func() *problem { return c.Forwarder.validate(c.Ingest) }},
		{"flags", c.Flags.validate},
	} {
		if p := s.check(); p != nil {
			return &Error{File: c.file(), Key: sectionKey(s.section, p.key), Problem: p.what}
		}
	}
	return nil
}

func (c *Config) file() string {
	if c.Path == "" {
		return "(defaults)"
	}
	return c.Path
}

// sectionKey writes a key the way the docs do: "data_dir", "[listen]",
// "[spool] max_bytes".
func sectionKey(section, key string) string {
	switch {
	case section == "":
		return key
	case key == "":
		return "[" + section + "]"
	}
	return "[" + section + "] " + key
}

func (c *Config) validateTopLevel() *problem {
	if c.DataDir == "" {
		return problemf("data_dir", "must not be empty")
	}
	return nil
}

func (p PostHogConfig) validate() *problem {
	if err := capture.CheckHost(p.Host); err != nil {
		return problemf("host", "%v", err)
	}
	if k := p.APIKey.Reveal(); k != "" {
		err := capture.CheckToken(k)
		if errors.Is(err, capture.ErrPersonalAPIKey) {
			return problemf("api_key", "is a personal API key (phx_...); put the project API key (phc_...) here and the personal key in personal_api_key")
		}
		if err != nil {
			return problemf("api_key", "%v", err)
		}
	}
	if k := p.PersonalAPIKey.Reveal(); strings.HasPrefix(k, "phc_") {
		return problemf("personal_api_key", "is a project API key (phc_...); use a personal API key (phx_...) or a project secret key (phs_...)")
	}
	return nil
}

func (l ListenConfig) validate() *problem {
	if l.Socket == "" && l.HTTP == "" {
		return problemf("", "neither socket nor http is set; producers could not reach the agent")
	}
	// sun_path holds 108 bytes including the terminating NUL; a longer path
	// fails at bind with a bare "invalid argument".
	if n := len(l.Socket); n > 107 {
		return problemf("socket", "%q is %d bytes long; unix socket paths are limited to 107 bytes", l.Socket, n)
	}
	if l.SocketMode&^0o777 != 0 {
		return problemf("socket_mode", "%o is not a permission mode (use e.g. \"0660\")", uint32(l.SocketMode))
	}
	if n := len(l.AdminSocket); n > 107 {
		return problemf("admin_socket", "%q is %d bytes long; unix socket paths are limited to 107 bytes", l.AdminSocket, n)
	}
	if l.AdminSocketMode&^0o777 != 0 {
		return problemf("admin_socket_mode", "%o is not a permission mode (use e.g. \"0600\")", uint32(l.AdminSocketMode))
	}
	if l.AdminSocketMode&0o007 != 0 {
		return problemf("admin_socket_mode", "%04o lets every local user export and drop events; use 0600, or 0660 with admin_socket_group", uint32(l.AdminSocketMode))
	}
	if p := l.AdminSocketPath(); p != "" && p == l.Socket {
		return problemf("admin_socket", "%q is the producer socket; the admin socket needs its own path", p)
	}
	if l.MaxConnections < 16 || l.MaxConnections > 60000 {
		return problemf("max_connections", "%d is out of range (16 to 60000; each listener's limit must stay below the unit's LimitNOFILE=65536)", l.MaxConnections)
	}
	for i, o := range l.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return problemf("allowed_origins", "entry %d: %q is not an origin (use e.g. \"http://localhost:3000\": scheme, host, optional port)", i, o)
		}
	}
	if l.HTTP != "" {
		host, _, err := net.SplitHostPort(l.HTTP)
		if err != nil {
			return problemf("http", "%q is not host:port (use e.g. \"127.0.0.1:8787\")", l.HTTP)
		}
		if !isLoopbackHost(host) {
			return problemf("http", "%q is not a loopback address; the TCP listener has no authentication and must stay on 127.0.0.1 or ::1", l.HTTP)
		}
	}
	return nil
}

func (l LogConfig) validate() *problem {
	if err := logging.CheckLevel(l.Level); err != nil {
		return problemf("level", "%v", err)
	}
	if err := logging.CheckFormat(l.Format); err != nil {
		return problemf("format", "%v", err)
	}
	return nil
}

func (in IngestConfig) validate() *problem {
	for i, t := range in.AllowedTokens {
		if err := capture.CheckToken(t); err != nil {
			return problemf("allowed_tokens", "entry %d: %v", i, err)
		}
	}
	if in.MaxEventBytes < 1024 || in.MaxEventBytes > 2<<20 {
		return problemf("max_event_bytes", "%s is out of range (1KiB to 2MiB; PostHog drops events over ~1MB)", in.MaxEventBytes)
	}
	if in.MaxDecodeBytes < 128<<20 {
		return problemf("max_decode_bytes", "%s is too small (at least 128MiB: decoding one 20MiB batch takes up to ~85MiB)", in.MaxDecodeBytes)
	}
	return nil
}

func (s SpoolConfig) validate() *problem {
	if s.MaxBytes < 1<<20 {
		return problemf("max_bytes", "%s is too small (at least 1MiB)", s.MaxBytes)
	}
	return nil
}

// validate needs [ingest] because a batch must hold at least one event.
func (f ForwarderConfig) validate(in IngestConfig) *problem {
	if f.BatchMaxEvents < 1 || f.BatchMaxEvents > 10000 {
		return problemf("batch_max_events", "%d is out of range (1 to 10000)", f.BatchMaxEvents)
	}
	if f.BatchMaxBytes < in.MaxEventBytes || f.BatchMaxBytes > 20<<20 {
		return problemf("batch_max_bytes", "%s is out of range (at least [ingest] max_event_bytes, at most 20MiB, PostHog's /batch limit)", f.BatchMaxBytes)
	}
	if f.MaxInFlight < 1 || f.MaxInFlight > 256 {
		return problemf("max_in_flight", "%d is out of range (1 to 256; 1 sends one batch at a time in strict order)", f.MaxInFlight)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"request_timeout", f.RequestTimeout},
		{"backoff_initial", f.BackoffInitial},
		{"backoff_max", f.BackoffMax},
		{"auth_retry_interval", f.AuthRetryInterval},
		{"shutdown_timeout", f.ShutdownTimeout},
	} {
		if d.v <= 0 {
			return problemf(d.key, "must be a positive duration (use e.g. \"30s\")")
		}
	}
	if f.BackoffMax < f.BackoffInitial {
		return problemf("backoff_max", "%s is shorter than backoff_initial %s", f.BackoffMax, f.BackoffInitial)
	}
	return nil
}

func (f FlagsConfig) validate() *problem {
	if f.PollInterval < Duration(time.Second) {
		return problemf("poll_interval", "%s is too short (at least 1s; PostHog rate-limits definitions to 600/min per project)", f.PollInterval)
	}
	for i, k := range f.DefinitionsKeys {
		if len(k) < 8 {
			return problemf("definitions_keys", "entry %d is shorter than 8 characters; use a long random key", i)
		}
	}
	if f.RemoteTimeout < Duration(100*time.Millisecond) || f.RemoteTimeout > Duration(time.Minute) {
		return problemf("remote_timeout", "%s is out of range (100ms to 1m; keep it below the SDKs' own 3s so they get the agent's answer)", f.RemoteTimeout)
	}
	if f.AnswerCacheMaxEntries < 1 {
		return problemf("answer_cache_max_entries", "must be at least 1")
	}
	if f.AnswerCacheMaxBytes < 64<<10 {
		return problemf("answer_cache_max_bytes", "%s is too small (at least 64KiB)", f.AnswerCacheMaxBytes)
	}
	if f.AnswerCacheMaxAge < Duration(time.Minute) {
		return problemf("answer_cache_max_age", "%s is too short (at least 1m)", f.AnswerCacheMaxAge)
	}
	return nil
}

// Warnings lists settings that are valid but probably wrong; check-config
// prints them and the agent logs them at start.
func (c Config) Warnings() []string {
	var w []string
	if u, err := url.Parse(c.PostHog.Host); err == nil && u.Scheme == "http" {
		if !isLoopbackHost(u.Hostname()) {
			w = append(w, fmt.Sprintf("[posthog] host: %q is plain http to another machine: events and keys cross the network unencrypted, and a redirect to https (which hogrelay never follows) stops delivery; use https://", c.PostHog.Host))
		}
	}
	if c.PostHog.APIKey == "" {
		w = append(w, "[posthog] api_key is empty (and $"+EnvAPIKey+" is not set): every producer must send its "+
			"project token itself (api_key or token in the body, as PostHog's SDKs do; hogrelay capture --token); "+
			"events without one are refused with 401")
	}
	return w
}

// isLoopbackHost reports whether host (no port) is localhost or a loopback
// IP: where the TCP listener may bind, and where plain http stays on this
// machine.
func isLoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
