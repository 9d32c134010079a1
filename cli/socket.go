package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hogrelay/hogrelay/client"
	"github.com/hogrelay/hogrelay/config"
)

// target is how a client command finds the agent: --socket, or the socket
// named in --config.
type target struct {
	socket *string
	config *string
}

func addTarget(fs *flag.FlagSet) *target {
	return &target{
		socket: fs.String("socket", "", "agent socket (default: [listen] socket from --config)"),
		config: fs.String("config", config.DefaultPath, "config file naming the socket and data_dir"),
	}
}

// loadConfig reads --config; when the file is absent and --socket was given
// it is not needed.
func (t *target) loadConfig() (config.Config, error) {
	cfg, err := config.Load(*t.config)
	if err != nil && *t.socket == "" {
		if os.IsNotExist(unwrapAll(err)) {
			return cfg, fmt.Errorf("no --socket given and config %s does not exist (use --socket PATH or --config PATH)", *t.config)
		}
		return cfg, err
	}
	return cfg, nil
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}

func (t *target) socketPath() (string, error) {
	if *t.socket != "" {
		return *t.socket, nil
	}
	cfg, err := t.loadConfig()
	if err != nil {
		return "", err
	}
	if cfg.Listen.Socket == "" {
		return "", fmt.Errorf("config %s has no [listen] socket; use --socket", *t.config)
	}
	return cfg.Listen.Socket, nil
}

func (t *target) client() (*client.Client, error) {
	p, err := t.socketPath()
	if err != nil {
		return nil, err
	}
	return client.New(p), nil
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), client.Timeout)
}

func ctxNoDeadline() context.Context { return context.Background() }

// call makes one request to the agent with the default deadline and decodes
// the JSON answer into out.
func (t *target) call(method, path string, body, out any) error {
	c, err := t.client()
	if err != nil {
		return err
	}
	ctx, cancel := callCtx()
	defer cancel()
	return c.Do(ctx, method, path, body, out)
}
