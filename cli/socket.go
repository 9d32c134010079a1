package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"

	"github.com/hogrelay/hogrelay/client"
	"github.com/hogrelay/hogrelay/config"
)

// EnvSocket names the agent's socket for client commands run without
// --socket or --config (e.g. HOGRELAY_SOCKET=./hogrelay.sock in dev mode).
const EnvSocket = "HOGRELAY_SOCKET"

// target is how a client command finds the agent: --socket; else the socket
// named in an explicitly given --config; else $HOGRELAY_SOCKET; else the
// socket named in the default config file.
type target struct {
	fs     *flag.FlagSet
	getenv func(string) string
	socket string
	config string
	admin  string // --admin-socket (admin commands only; see adminFlag)
}

func addTarget(e env, fs *flag.FlagSet) *target {
	t := &target{fs: fs, getenv: e.getenv}
	fs.StringVar(&t.socket, "socket", "", "agent socket (default: $"+EnvSocket+", else [listen] socket from --config)")
	fs.StringVar(&t.config, "config", config.DefaultPath, "config file naming the socket and data_dir")
	return t
}

// set reports whether the flag was given on the command line.
func (t *target) set(name string) bool {
	found := false
	t.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func (t *target) envSocket() string {
	if t.getenv == nil {
		return ""
	}
	return t.getenv(EnvSocket)
}

// loadConfig reads --config.
func (t *target) loadConfig() (config.Config, error) {
	cfg, err := config.Load(t.config)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("no --socket given and config %s does not exist (use --socket PATH, $%s or --config PATH)", t.config, EnvSocket)
	}
	return cfg, err
}

func (t *target) socketPath() (string, error) {
	if t.socket != "" {
		return t.socket, nil
	}
	if s := t.envSocket(); s != "" && !t.set("config") {
		return s, nil
	}
	cfg, err := t.loadConfig()
	if err != nil {
		return "", err
	}
	if cfg.Listen.Socket == "" {
		return "", fmt.Errorf("config %s has no [listen] socket; use --socket", t.config)
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

// call makes one request to the agent with the default deadline and decodes
// the JSON answer into out.
func (t *target) call(ctx context.Context, method, path string, body, out any) error {
	c, err := t.client()
	if err != nil {
		return err
	}
	return do(ctx, c, method, path, body, out)
}

// adminCall is call on the admin socket.
func (t *target) adminCall(ctx context.Context, method, path string, body, out any) error {
	c, err := t.adminClient()
	if err != nil {
		return err
	}
	return do(ctx, c, method, path, body, out)
}

// do is one request with the CLI's default deadline (client.Timeout).
func do(ctx context.Context, c *client.Client, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, client.Timeout)
	defer cancel()
	return c.Do(ctx, method, path, body, out)
}

// adminFlag adds --admin-socket, for the commands the agent serves on its
// admin socket only.
func (t *target) adminFlag() *target {
	t.fs.StringVar(&t.admin, "admin-socket", "", "agent admin socket (default: admin.sock next to --socket or $"+EnvSocket+", else [listen] admin_socket from --config)")
	return t
}

// adminSocketPath finds the admin socket: --admin-socket; admin.sock next
// to --socket or $HOGRELAY_SOCKET (where the agent puts it unless told
// otherwise); else the config's [listen] admin_socket.
func (t *target) adminSocketPath() (string, error) {
	if t.admin != "" {
		return t.admin, nil
	}
	if t.socket != "" {
		return config.DefaultAdminSocket(t.socket), nil
	}
	if s := t.envSocket(); s != "" && !t.set("config") {
		return config.DefaultAdminSocket(s), nil
	}
	cfg, err := t.loadConfig()
	if err != nil {
		return "", err
	}
	p := cfg.Listen.AdminSocketPath()
	if p == "" {
		return "", fmt.Errorf("config %s has no [listen] socket or admin_socket; use --admin-socket", t.config)
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
