package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/logging"
)

func runCheckConfig(e env, args []string) error {
	fs := newFlagSet(e, "check-config")
	path := fs.String("config", config.DefaultPath, "config file to check")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	fmt.Fprintf(e.stdout, "configuration file %s is valid\n", *path)
	return nil
}

func runServe(e env, args []string) error {
	fs := newFlagSet(e, "serve")
	path := fs.String("config", config.DefaultPath, "config file")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log, err := logging.New(e.stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, log, Version)
	if err != nil {
		return err
	}
	return runWithSignals(a, func() (config.Config, error) { return config.Load(*path) }, func(err error) {
		log.Error().Err(err).Msg("configuration reload refused; keeping the running configuration")
	})
}

// runWithSignals runs the agent until SIGTERM or SIGINT; SIGHUP re-reads
// the config with load and applies what can change live.
func runWithSignals(a *agent.Agent, load func() (config.Config, error), refused func(error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
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
					refused(err)
					continue
				}
				a.Reload(cfg)
			}
		}
	}()
	return a.Run(ctx)
}
