package cli

import (
	"context"
	"fmt"
)

// versionCmd prints the version (also hogrelay --version).
type versionCmd struct{ env }

func (c *versionCmd) Usage() string {
	return `usage: hogrelay version

Print the version (the same as hogrelay --version).`
}

func (c *versionCmd) Run(_ context.Context, args []string) error {
	if _, err := parse(c.env, newFlagSet("version"), c.Usage(), args); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "hogrelay", Version)
	return nil
}
