package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hogrelay/hogrelay/api"
	"github.com/hogrelay/hogrelay/config"
)

// listen binds the producer socket, the admin socket and the optional TCP
// listener, each serving its own api.Surface.
func (a *Agent) listen(cfg config.Config) error {
	add := func(l net.Listener, s api.Surface, addr string) {
		a.listeners = append(a.listeners, limitConns(l, cfg.Listen.MaxConnections))
		a.surfaces = append(a.surfaces, s)
		a.addrs = append(a.addrs, addr)
	}
	if cfg.Listen.Socket != "" {
		l, err := listenUnix(cfg.Listen.Socket, os.FileMode(cfg.Listen.SocketMode), "")
		if err != nil {
			return err
		}
		a.ownSocket = append(a.ownSocket, cfg.Listen.Socket)
		add(l, api.ProducerSocket, "unix:"+cfg.Listen.Socket)
	}
	if p := cfg.Listen.AdminSocketPath(); p != "" {
		l, err := listenUnix(p, os.FileMode(cfg.Listen.AdminSocketMode), cfg.Listen.AdminSocketGroup)
		if err != nil {
			return fmt.Errorf("[listen] admin_socket: %w", err)
		}
		a.ownSocket = append(a.ownSocket, p)
		add(l, api.AdminSocket, "unix-admin:"+p)
	}
	if cfg.Listen.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listen: [listen] http %s: %w", cfg.Listen.HTTP, err)
		}
		add(l, api.LoopbackTCP, "tcp:"+l.Addr().String())
	}
	return nil
}

// listenUnix binds path with mode, and chowns it to group when one is
// named. A socket file left by a crash is replaced; one a live agent answers
// on is not stolen.
func listenUnix(path string, mode os.FileMode, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen: create directory for socket %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen: %s exists and is not a socket; refusing to replace it", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen: socket %s is in use by a running process (another hogrelay?)", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen: socket %s exists and cannot be checked: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen: remove stale socket %s: %w", path, err)
		}
	}
	// Bind in a private directory, set owner and mode, then move the socket
	// into place: nobody can connect while it still has the umask's mode.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".bind-")
	if err != nil {
		return nil, fmt.Errorf("listen: socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	l, err := net.Listen("unix", bound)
	if err != nil {
		return nil, fmt.Errorf("listen: socket %s: %w", path, err)
	}
	// Closing the listener must not unlink the path: shutdown removes it
	// explicitly, after in-flight requests are answered.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		l.Close()
		return nil, err
	}
	if group != "" {
		if err := chgrp(bound, group); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(bound, mode); err != nil {
		return fail(fmt.Errorf("listen: chmod socket %s to %04o: %w", path, mode, err))
	}
	if err := os.Rename(bound, path); err != nil {
		return fail(fmt.Errorf("listen: socket %s: %w", path, err))
	}
	return l, nil
}

// chgrp gives path to the named group (or numeric gid). Only a member may
// do that, so the unit adds the agent to the admin group.
func chgrp(path, group string) error {
	gid, err := strconv.Atoi(group)
	if err != nil {
		g, lerr := user.LookupGroup(group)
		if lerr != nil {
			return fmt.Errorf("listen: admin socket group %q: %w", group, lerr)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("listen: give the admin socket to group %q (the agent must be a member, e.g. SupplementaryGroups=%s in the unit): %w", group, group, err)
	}
	return nil
}

func (a *Agent) closeListeners() {
	for _, l := range a.listeners {
		_ = l.Close()
	}
	a.removeSocket()
}

// removeSocket unlinks the sockets this agent created, never one it found
// in use by someone else.
func (a *Agent) removeSocket() {
	for _, p := range a.ownSocket {
		_ = os.Remove(p)
	}
}
