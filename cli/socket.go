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
	admin  *string // --admin-socket, for admin commands only (nil otherwise)
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

// adminFlag adds --admin-socket for commands served on the admin socket.
func (t *target) adminFlag(fs *flag.FlagSet) *target {
	t.admin = fs.String("admin-socket", "", "agent admin socket (default: admin.sock next to --socket, else [listen] admin_socket from --config)")
	return t
}

// adminSocketPath finds the admin socket: --admin-socket; admin.sock next
// to --socket (where the agent puts it unless told otherwise); else the
// config's [listen] admin_socket (or admin.sock next to its socket).
func (t *target) adminSocketPath() (string, error) {
	if t.admin != nil && *t.admin != "" {
		return *t.admin, nil
	}
	if *t.socket != "" {
		return config.DefaultAdminSocket(*t.socket), nil
	}
	cfg, err := t.loadConfig()
	if err != nil {
		return "", err
	}
	p := cfg.Listen.AdminSocketPath()
	if p == "" {
		return "", fmt.Errorf("config %s has no [listen] socket or admin_socket; use --admin-socket", *t.config)
	}
	return p, nil
}

// adminClient is a client for the admin socket.
func (t *target) adminClient() (*client.Client, error) {
	p, err := t.adminSocketPath()
	if err != nil {
		return nil, err
	}
	return client.NewAdmin(p), nil
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
