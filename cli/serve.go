package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/logging"
)

// serveCmd runs the agent.
type serveCmd struct{ env }

func (c *serveCmd) Usage() string {
	return `usage: hogrelay serve [--config FILE]

Run the agent: accept events on the socket, spool them to disk, forward them
to PostHog, and serve feature flags. SIGTERM or SIGINT stops it cleanly;
SIGHUP re-reads the config and applies what can change while running.`
}

func (c *serveCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("serve")
	path := fs.String("config", config.DefaultPath, "config file")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log, err := logging.New(c.stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, log, Version)
	if err != nil {
		return err
	}
	return runWithSignals(ctx, a, func() (config.Config, error) { return config.Load(*path) })
}

// runWithSignals runs the agent until SIGTERM or SIGINT; SIGHUP re-reads
// the config with load and applies what can change live, or reports why it
// refused it.
func runWithSignals(ctx context.Context, a *agent.Agent, load func() (config.Config, error)) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				cfg, err := load()
				if err != nil {
					a.RefuseReload(err)
					continue
				}
				a.Reload(cfg)
			}
		}
	}()
	return a.Run(ctx)
}
