// Command hogrelay is the durable PostHog event forwarder and flag cache.
// Everything lives in packages; main only hands over the arguments.
package main

import (
	"os"

	"github.com/hogrelay/hogrelay/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
