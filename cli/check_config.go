package cli

import (
	"context"
	"fmt"

	"github.com/hogrelay/hogrelay/config"
)

// checkConfigCmd validates a config file.
type checkConfigCmd struct{ env }

func (c *checkConfigCmd) Usage() string {
	return `usage: hogrelay check-config [--config FILE]

Validate a config file and exit: 0 and "configuration file … is valid" when
the agent would start with it, else 1 and what is wrong. Settings that are
valid but change how the agent behaves (an empty api_key) are named as
warnings on stderr.`
}

func (c *checkConfigCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("check-config")
	path := fs.String("config", config.DefaultPath, "config file to check")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(c.stderr, "warning:", w)
	}
	fmt.Fprintf(c.stdout, "configuration file %s is valid\n", *path)
	return nil
}
