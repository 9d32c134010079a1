package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/logging"
)

// Dev mode's stand-in keys: they only ever reach the embedded upstream.
const (
	devProjectKey  = "phc_dev_hogrelay"
	devPersonalKey = "phx_dev_hogrelay"
)

// devCmd runs the agent against an embedded PostHog stand-in on loopback, in
// a temporary data dir, so a newcomer can try everything without an account.
type devCmd struct{ env }

func (c *devCmd) Usage() string {
	return `usage: hogrelay dev [flags]

Try hogrelay without a PostHog account: run the agent against a local
PostHog stand-in that accepts batches and serves sample flags, with the
spool in a temporary directory. Ctrl-C stops everything. The agent evaluates
the stand-in's definitions locally; with --remote it has a project key only,
as most PostHog setups, and asks the stand-in's /flags, which answers from
the same definitions per distinct id.`
}

func (c *devCmd) Run(ctx context.Context, args []string) error {
	e := c.env
	fs := newFlagSet("dev")
	socket := fs.String("socket", "hogrelay.sock", "socket path (relative to the working directory)")
	httpAddr := fs.String("http", "127.0.0.1:8787", "loopback TCP listener for SDKs (\"\" = none)")
	dataDir := fs.String("data-dir", "", "keep the spool here (default: a temporary directory removed on exit)")
	level := fs.String("log-level", "info", "log level (debug shows every batch and retry)")
	remote := fs.Bool("remote", false, "project key only, as most PostHog users run: no definitions are polled, flags are asked of the stand-in's /flags (remote evaluation)")
	if _, err := parse(e, fs, c.Usage(), args); err != nil {
		return err
	}
	sock, err := filepath.Abs(*socket)
	if err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "hogrelay-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	log, err := logging.New(e.stderr, *level, "console")
	if err != nil {
		return err
	}
	up, err := fakeposthog.New(fakeposthog.Options{
		FlagDefinitions: fakeposthog.SampleFlagDefinitions,
		OnBatch: func(b fakeposthog.BatchInfo) {
			fmt.Fprintf(e.stdout, "[local posthog] %s %d: received %d event(s)\n", b.Path, b.Status, b.Events)
		},
	})
	if err != nil {
		return fmt.Errorf("dev: start the local PostHog stand-in: %w", err)
	}
	defer up.Close()

	cfg := config.Default()
	cfg.Path = "(dev mode)"
	cfg.DataDir = dir
	cfg.PostHog.Host = up.URL()
	cfg.PostHog.APIKey = devProjectKey
	cfg.PostHog.PersonalAPIKey = devPersonalKey
	mode := "local evaluation of the polled definitions (try --remote for a project key only)"
	if *remote {
		cfg.PostHog.PersonalAPIKey = ""
		mode = "remote evaluation: the stand-in's /flags answers, per distinct id (no personal key)"
	}
	cfg.Listen.Socket = sock
	cfg.Listen.HTTP = *httpAddr
	cfg.Log.Level = *level
	cfg.Flags.PollInterval = config.Duration(10 * time.Second)
	if err := cfg.Validate(); err != nil {
		return err
	}
	a, err := agent.New(cfg, log, Version)
	if err != nil {
		return err
	}
	self := os.Args[0]
	rel, _ := filepath.Rel(mustGetwd(), sock)
	if rel == "" || len(rel) > len(sock) {
		rel = sock
	}
	fmt.Fprintf(e.stdout, `
hogrelay dev mode
  socket:          %s
  admin socket:    %s (spool export, dead letters, compact)
  http:            %s
  local PostHog:   %s (accepts batches, serves sample flags)
  flags:           %s
  data dir:        %s

Try it (in another terminal):

  curl --unix-socket %s http://localhost/batch/ -H 'Content-Type: application/json' \
    -d '{"api_key":"%s","batch":[{"event":"signed_up","distinct_id":"user-1","properties":{"plan":"pro"}}]}'

  %s capture --socket %s --distinct-id user-1 --event clicked_buy --property price=9.99

  %s flags get checkout-button --socket %s --distinct-id user-1

Ctrl-C stops everything.

`, rel, config.DefaultAdminSocket(rel), orDash(cfg.Listen.HTTP), up.URL(), mode, dir, rel, devProjectKey, self, rel, self, rel)
	return runWithSignals(ctx, a, func() (config.Config, error) { return cfg, nil })
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}
