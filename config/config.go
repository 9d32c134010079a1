// Package config loads and validates hogrelay's TOML configuration.
//
// Every default lives in Default(); Load applies the file over it, then the
// environment (for secrets), then Validate. Any problem is refused at start
// with an error that names the file, the key and what is wrong, so an operator
// never has to guess which line of a 40-line file broke the agent.
package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hogrelay/hogrelay/spool"
)

// DefaultPath is where the CLI looks for the config when --config is not given.
const DefaultPath = "/etc/hogrelay/config.toml"

// Environment variables that override secrets from the file, so keys can come
// from a systemd EnvironmentFile= (mode 0600) instead of the config file.
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
	// MaxConnections bounds the open connections of each listener, so a
	// flood cannot use up the process's file descriptors (LimitNOFILE).
	MaxConnections int `toml:"max_connections"`
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
	// MaxDecodeBytes bounds the bytes of request bodies being read and
	// decoded at once (wire, decompressed and normalised); peak memory
	// follows it (README "Security model").
	MaxDecodeBytes ByteSize `toml:"max_decode_bytes"`
}

// SpoolConfig bounds the on-disk write-ahead spool.
type SpoolConfig struct {
	MaxBytes ByteSize `toml:"max_bytes"`
	// WhenFull is "reject" (producers get 503 + Retry-After) or
	// "drop_oldest" (oldest events are deleted, counted and logged); the
	// policy type parses and checks itself.
	WhenFull spool.Policy `toml:"when_full"`
	// CompactAbove: once the spool has drained, a file larger than this is
	// compacted, because bbolt never gives pages back to the filesystem.
	CompactAbove ByteSize `toml:"compact_above"`
}

// ForwarderConfig tunes batching and retry towards PostHog.
type ForwarderConfig struct {
	BatchMaxEvents    int      `toml:"batch_max_events"`
	BatchMaxBytes     ByteSize `toml:"batch_max_bytes"`
	MaxInFlight       int      `toml:"max_in_flight"`
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
	// GeoIPDisable is geoip_disable on the agent's own /flags calls (CLI,
	// send_feature_flags): PostHog would locate the agent's server, not the
	// user. SDK requests keep what the SDK sent.
	GeoIPDisable bool `toml:"geoip_disable"`
	// RemoteTimeout bounds one remote evaluation, its one retry included.
	RemoteTimeout Duration `toml:"remote_timeout"`
	// The answer cache keeps PostHog's last answer per evaluation context
	// for offline use: at most this many entries and bytes (least recently
	// used go first), none older than AnswerCacheMaxAge.
	AnswerCacheMaxEntries int      `toml:"answer_cache_max_entries"`
	AnswerCacheMaxBytes   ByteSize `toml:"answer_cache_max_bytes"`
	AnswerCacheMaxAge     Duration `toml:"answer_cache_max_age"`
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
			MaxConnections:  1024,
		},
		Log:    LogConfig{Level: "info", Format: "auto"},
		Ingest: IngestConfig{AllowedTokens: []string{}, MaxEventBytes: 1_000_000, MaxDecodeBytes: 256 << 20},
		Spool: SpoolConfig{
			MaxBytes:     2 << 30,
			WhenFull:     spool.Reject,
			CompactAbove: 64 << 20,
		},
		Forwarder: ForwarderConfig{
			BatchMaxEvents:    1000,
			BatchMaxBytes:     5 << 20,
			MaxInFlight:       32,
			RequestTimeout:    Duration(30 * time.Second),
			BackoffInitial:    Duration(time.Second),
			BackoffMax:        Duration(5 * time.Second),
			AuthRetryInterval: Duration(5 * time.Minute),
			ShutdownTimeout:   Duration(10 * time.Second),
		},
		Flags: FlagsConfig{
			PollInterval: Duration(30 * time.Second), DefinitionsKeys: []Secret{}, GeoIPDisable: true, RemoteTimeout: Duration(2500 * time.Millisecond),
			AnswerCacheMaxEntries: 100_000, AnswerCacheMaxBytes: 64 << 20, AnswerCacheMaxAge: Duration(7 * 24 * time.Hour),
		},
	}
}

// Load reads path over Default(), applies secrets from the environment and
// validates the result. A missing file is an error: running with silent
// defaults would point the agent at the wrong project. Every error is an
// *Error.
func Load(path string) (Config, error) {
	cfg := Default()
	cfg.Path = path
	raw, err := os.ReadFile(path)
	if err != nil {
		problem := err.Error()
		if pe, ok := err.(*fs.PathError); ok {
			problem = "cannot " + pe.Op + ": " + pe.Err.Error()
		}
		return cfg, &Error{File: path, Problem: problem, err: err}
	}
	md, err := toml.Decode(string(raw), &cfg)
	if err != nil {
		return cfg, decodeError(path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return cfg, &Error{File: path, Problem: fmt.Sprintf("unknown key %s (see config.example.toml for every key)", strings.Join(keys, ", "))}
	}
	cfg.ApplyEnv()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// tomlPosition matches what the TOML decoder puts in front of a problem:
// `toml: line 2 (last key "spool.max_bytes"): ` or `toml: line 2: `.
var tomlPosition = regexp.MustCompile(`^toml: line (\d+)(?: \(last key "([^"]*)"\))?: `)

// decodeError turns the decoder's message into an *Error with the key
// written as the docs write it, so a bad value reads like a failed rule.
func decodeError(path string, err error) *Error {
	e := &Error{File: path, Problem: strings.TrimPrefix(err.Error(), "toml: "), err: err}
	if m := tomlPosition.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.Key = displayKey(strings.Split(m[2], "."))
		}
		e.Problem = err.Error()[len(m[0]):]
	}
	return e
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
