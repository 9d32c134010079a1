// Package config loads and validates hogrelay's TOML configuration.
//
// Every default lives in Default(); Load applies the file over it, then the
// environment (for secrets), then Validate. Any problem is refused at start
// with an error that names the file, the key and what is wrong, so an operator
// never has to guess which line of a 40-line file broke the agent.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the CLI looks for the config when --config is not given.
const DefaultPath = "/etc/hogrelay/config.toml"

// Environment variables that override secrets from the file, so keys can come
// from a systemd credential or EnvironmentFile instead of a world-readable file.
const (
	EnvAPIKey         = "HOGRELAY_API_KEY"
	EnvPersonalAPIKey = "HOGRELAY_PERSONAL_API_KEY"
)

// Config is the whole agent configuration. Field tags are the TOML key names
// and are part of the public contract (outside tooling depends on them).
type Config struct {
	DataDir   string          `toml:"data_dir"`
	PostHog   PostHogConfig   `toml:"posthog"`
	Listen    ListenConfig    `toml:"listen"`
	Log       LogConfig       `toml:"log"`
	Ingest    IngestConfig    `toml:"ingest"`
	Spool     SpoolConfig     `toml:"spool"`
	Forwarder ForwarderConfig `toml:"forwarder"`
	Flags     FlagsConfig     `toml:"flags"`

	// Path is the file this config came from ("" for defaults only).
	Path string `toml:"-"`
}

// PostHogConfig says where events and flag requests go upstream.
type PostHogConfig struct {
	Host           string `toml:"host"`
	APIKey         Secret `toml:"api_key"`
	PersonalAPIKey Secret `toml:"personal_api_key"`
}

// ListenConfig holds the listeners: the producer socket, the admin socket
// and the optional loopback TCP listener.
type ListenConfig struct {
	Socket     string   `toml:"socket"`
	SocketMode FileMode `toml:"socket_mode"`
	// AdminSocket serves what producers must not do (export, dead-letter
	// drop/requeue, compact, forwarder retry, flags reload). "" means
	// admin.sock in the producer socket's directory (AdminSocketPath).
	AdminSocket     string   `toml:"admin_socket"`
	AdminSocketMode FileMode `toml:"admin_socket_mode"`
	// AdminSocketGroup, when set, is the group the admin socket is chowned
	// to (the agent must be a member); "" keeps the agent's own group.
	AdminSocketGroup string `toml:"admin_socket_group"`
	HTTP             string `toml:"http"`
	// AllowedOrigins are browser origins (e.g. "http://localhost:3000") the
	// TCP listener serves; requests with any other Origin are refused.
	AllowedOrigins []string `toml:"allowed_origins"`
}

// AdminSocketPath is the admin socket's path: admin_socket, or admin.sock
// next to the producer socket ("" when neither is set).
func (l ListenConfig) AdminSocketPath() string {
	if l.AdminSocket != "" {
		return l.AdminSocket
	}
	return DefaultAdminSocket(l.Socket)
}

// DefaultAdminSocket is admin.sock in the directory of socket ("" for "").
func DefaultAdminSocket(socket string) string {
	if socket == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(socket), "admin.sock")
}

// LogConfig selects zerolog's level and output format.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// IngestConfig bounds what producers may send.
type IngestConfig struct {
	// AllowedTokens, when non-empty, is the list of project tokens the agent
	// accepts; anything else gets 401 like PostHog would give for a bad key.
	AllowedTokens []string `toml:"allowed_tokens"`
	MaxEventBytes ByteSize `toml:"max_event_bytes"`
}

// SpoolConfig bounds the on-disk write-ahead spool.
type SpoolConfig struct {
	MaxBytes ByteSize `toml:"max_bytes"`
	// WhenFull is "reject" (producers get 503 + Retry-After) or
	// "drop_oldest" (oldest events are deleted, counted and logged).
	WhenFull string `toml:"when_full"`
	// CompactAbove: once the spool has drained, a file larger than this is
	// compacted, because bbolt never gives pages back to the filesystem.
	CompactAbove ByteSize `toml:"compact_above"`
}

// ForwarderConfig tunes batching and retry towards PostHog.
type ForwarderConfig struct {
	BatchMaxEvents    int      `toml:"batch_max_events"`
	BatchMaxBytes     ByteSize `toml:"batch_max_bytes"`
	RequestTimeout    Duration `toml:"request_timeout"`
	BackoffInitial    Duration `toml:"backoff_initial"`
	BackoffMax        Duration `toml:"backoff_max"`
	AuthRetryInterval Duration `toml:"auth_retry_interval"`
	ShutdownTimeout   Duration `toml:"shutdown_timeout"`
}

// FlagsConfig tunes the feature-flag definitions cache.
type FlagsConfig struct {
	PollInterval        Duration `toml:"poll_interval"`
	OnlyEvaluateLocally bool     `toml:"only_evaluate_locally"`
	// DefinitionsKeys are bearer keys, besides personal_api_key, that
	// local-evaluation SDKs may send to /flags/definitions on the TCP listener.
	DefinitionsKeys []Secret `toml:"definitions_keys"`
}

// Default returns the configuration used for every key the file leaves out.
// config.example.toml documents the same values; a test keeps them in step.
func Default() Config {
	return Config{
		DataDir: "/var/lib/hogrelay",
		PostHog: PostHogConfig{Host: "https://us.i.posthog.com"},
		Listen: ListenConfig{
			Socket:          "/run/hogrelay/hogrelay.sock",
			SocketMode:      0o660,
			AdminSocketMode: 0o600,
			AllowedOrigins:  []string{},
		},
		Log:    LogConfig{Level: "info", Format: "auto"},
		Ingest: IngestConfig{AllowedTokens: []string{}, MaxEventBytes: 1_000_000},
		Spool: SpoolConfig{
			MaxBytes:     2 << 30,
			WhenFull:     "reject",
			CompactAbove: 64 << 20,
		},
		Forwarder: ForwarderConfig{
			BatchMaxEvents:    1000,
			BatchMaxBytes:     5 << 20,
			RequestTimeout:    Duration(30 * time.Second),
			BackoffInitial:    Duration(time.Second),
			BackoffMax:        Duration(5 * time.Minute),
			AuthRetryInterval: Duration(5 * time.Minute),
			ShutdownTimeout:   Duration(10 * time.Second),
		},
		Flags: FlagsConfig{PollInterval: Duration(30 * time.Second), DefinitionsKeys: []Secret{}},
	}
}

// Load reads path over Default(), applies secrets from the environment and
// validates the result. A missing file is an error: running with silent
// defaults would point the agent at the wrong project.
func Load(path string) (Config, error) {
	cfg := Default()
	cfg.Path = path
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(raw), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config: %s: %s", path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return cfg, fmt.Errorf("config: %s: unknown key %s (see config.example.toml for every key)", path, strings.Join(keys, ", "))
	}
	cfg.ApplyEnv()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// ApplyEnv lets HOGRELAY_API_KEY and HOGRELAY_PERSONAL_API_KEY override the file.
func (c *Config) ApplyEnv() {
	if v := os.Getenv(EnvAPIKey); v != "" {
		c.PostHog.APIKey = Secret(v)
	}
	if v := os.Getenv(EnvPersonalAPIKey); v != "" {
		c.PostHog.PersonalAPIKey = Secret(v)
	}
}

// Validate checks every value and returns the first problem, naming its key.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		where := c.Path
		if where == "" {
			where = "(defaults)"
		}
		return fmt.Errorf("config: %s: %s: %s", where, key, fmt.Sprintf(format, args...))
	}
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty")
	}
	u, err := url.Parse(c.PostHog.Host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("[posthog] host", "%q is not an http(s) URL with a scheme (use e.g. \"https://us.i.posthog.com\")", c.PostHog.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("[posthog] host", "%q must not have a query or fragment", c.PostHog.Host)
	}
	if k := string(c.PostHog.APIKey); k != "" {
		if strings.HasPrefix(k, "phx_") {
			return bad("[posthog] api_key", "is a personal API key (phx_...); put the project API key (phc_...) here and the personal key in personal_api_key")
		}
		if err := CheckToken(k); err != nil {
			return bad("[posthog] api_key", "%v", err)
		}
	}
	if k := string(c.PostHog.PersonalAPIKey); k != "" && strings.HasPrefix(k, "phc_") {
		return bad("[posthog] personal_api_key", "is a project API key (phc_...); use a personal API key (phx_...) or a project secret key (phs_...)")
	}
	if c.Listen.Socket == "" && c.Listen.HTTP == "" {
		return bad("[listen]", "neither socket nor http is set; producers could not reach the agent")
	}
	// sun_path holds 108 bytes including the terminating NUL; a longer path
	// fails at bind with a bare "invalid argument".
	if n := len(c.Listen.Socket); n > 107 {
		return bad("[listen] socket", "%q is %d bytes long; unix socket paths are limited to 107 bytes", c.Listen.Socket, n)
	}
	if c.Listen.SocketMode&^0o777 != 0 {
		return bad("[listen] socket_mode", "%o is not a permission mode (use e.g. \"0660\")", uint32(c.Listen.SocketMode))
	}
	if n := len(c.Listen.AdminSocket); n > 107 {
		return bad("[listen] admin_socket", "%q is %d bytes long; unix socket paths are limited to 107 bytes", c.Listen.AdminSocket, n)
	}
	if c.Listen.AdminSocketMode&^0o777 != 0 {
		return bad("[listen] admin_socket_mode", "%o is not a permission mode (use e.g. \"0600\")", uint32(c.Listen.AdminSocketMode))
	}
	if c.Listen.AdminSocketMode&0o007 != 0 {
		return bad("[listen] admin_socket_mode", "%04o lets every local user export and drop events; use 0600, or 0660 with admin_socket_group", uint32(c.Listen.AdminSocketMode))
	}
	if p := c.Listen.AdminSocketPath(); p != "" && p == c.Listen.Socket {
		return bad("[listen] admin_socket", "%q is the producer socket; the admin socket needs its own path", p)
	}
	for i, o := range c.Listen.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("[listen] allowed_origins", "entry %d: %q is not an origin (use e.g. \"http://localhost:3000\": scheme, host, optional port)", i, o)
		}
	}
	if c.Listen.HTTP != "" {
		host, _, err := net.SplitHostPort(c.Listen.HTTP)
		if err != nil {
			return bad("[listen] http", "%q is not host:port (use e.g. \"127.0.0.1:8787\")", c.Listen.HTTP)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return bad("[listen] http", "%q is not a loopback address; the TCP listener has no authentication and must stay on 127.0.0.1 or ::1", c.Listen.HTTP)
		}
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		return bad("[log] level", "%q is not one of trace, debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		return bad("[log] format", "%q is not one of auto, json, console", c.Log.Format)
	}
	for i, t := range c.Ingest.AllowedTokens {
		if err := CheckToken(t); err != nil {
			return bad("[ingest] allowed_tokens", "entry %d: %v", i, err)
		}
	}
	if c.Ingest.MaxEventBytes < 1024 || c.Ingest.MaxEventBytes > 2<<20 {
		return bad("[ingest] max_event_bytes", "%s is out of range (1KiB to 2MiB; PostHog drops events over ~1MB)", c.Ingest.MaxEventBytes)
	}
	if c.Spool.MaxBytes < 1<<20 {
		return bad("[spool] max_bytes", "%s is too small (at least 1MiB)", c.Spool.MaxBytes)
	}
	switch c.Spool.WhenFull {
	case "reject", "drop_oldest":
	default:
		return bad("[spool] when_full", "%q is not \"reject\" or \"drop_oldest\"", c.Spool.WhenFull)
	}
	f := c.Forwarder
	if f.BatchMaxEvents < 1 || f.BatchMaxEvents > 10000 {
		return bad("[forwarder] batch_max_events", "%d is out of range (1 to 10000)", f.BatchMaxEvents)
	}
	if f.BatchMaxBytes < ByteSize(c.Ingest.MaxEventBytes) || f.BatchMaxBytes > 20<<20 {
		return bad("[forwarder] batch_max_bytes", "%s is out of range (at least [ingest] max_event_bytes, at most 20MiB, PostHog's /batch limit)", f.BatchMaxBytes)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"[forwarder] request_timeout", f.RequestTimeout},
		{"[forwarder] backoff_initial", f.BackoffInitial},
		{"[forwarder] backoff_max", f.BackoffMax},
		{"[forwarder] auth_retry_interval", f.AuthRetryInterval},
		{"[forwarder] shutdown_timeout", f.ShutdownTimeout},
	} {
		if d.v <= 0 {
			return bad(d.key, "must be a positive duration (use e.g. \"30s\")")
		}
	}
	if f.BackoffMax < f.BackoffInitial {
		return bad("[forwarder] backoff_max", "%s is shorter than backoff_initial %s", f.BackoffMax, f.BackoffInitial)
	}
	for i, k := range c.Flags.DefinitionsKeys {
		if len(k) < 8 {
			return bad("[flags] definitions_keys", "entry %d is shorter than 8 characters; use a long random key", i)
		}
	}
	if c.Flags.PollInterval < Duration(time.Second) {
		return bad("[flags] poll_interval", "%s is too short (at least 1s; PostHog rate-limits definitions to 600/min per project)", c.Flags.PollInterval)
	}
	return nil
}

// CheckToken applies PostHog capture's shape check to a project token: non-empty,
// at most 64 ASCII characters, and not a personal API key.
func CheckToken(t string) error {
	switch {
	case t == "":
		return errors.New("token is empty")
	case len(t) > 64:
		return fmt.Errorf("token is %d characters long (at most 64)", len(t))
	case strings.HasPrefix(t, "phx_"):
		return errors.New("token is a personal API key (phx_...), not a project API key")
	}
	for _, r := range t {
		if r > 127 || r < 0x21 {
			return errors.New("token contains a character that is not printable ASCII")
		}
	}
	return nil
}

// Secret is a string that never prints itself, so a key cannot leak through a
// log line, an error or a status dump by accident.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText keeps secrets out of JSON and TOML output too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is needed because MarshalText exists; it stores the value as is.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Reveal returns the secret for the one place that must send it upstream.
func (s Secret) Reveal() string { return string(s) }

// Duration is a time.Duration written as a Go duration string ("30s", "5m").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. \"30s\" or \"5m\")", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a size written as an integer of bytes or a string with a unit
// ("512KiB", "2GiB", "1MB").
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

func (s *ByteSize) UnmarshalText(b []byte) error {
	v, err := ParseByteSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalTOML accepts a bare integer as well as a string with a unit.
func (s *ByteSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("%d is negative", x)
		}
		*s = ByteSize(x)
		return nil
	case string:
		return s.UnmarshalText([]byte(x))
	default:
		return fmt.Errorf("%v is not a size (use e.g. \"2GiB\" or a number of bytes)", v)
	}
}

// ParseByteSize parses "123", "64MiB", "1.5GB" and similar.
func ParseByteSize(text string) (ByteSize, error) {
	t := strings.TrimSpace(text)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || t == "" {
		return 0, fmt.Errorf("%q is not a size (use e.g. \"2GiB\", \"512MiB\" or a number of bytes)", text)
	}
	return ByteSize(f * float64(mult)), nil
}

func (s ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(s) >= u.mult && int64(s)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// FileMode is a permission mode written as an octal string ("0660").
type FileMode uint32

func (m *FileMode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("%q is not an octal file mode (use e.g. \"0660\")", b)
	}
	*m = FileMode(v)
	return nil
}

func (m FileMode) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%04o", uint32(m))), nil }
