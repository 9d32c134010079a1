package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hogrelay/hogrelay/config"
)

// listen binds the unix socket (and the optional TCP listener).
func (a *Agent) listen(cfg config.Config) error {
	if cfg.Listen.Socket != "" {
		l, err := listenUnix(cfg.Listen.Socket, os.FileMode(cfg.Listen.SocketMode))
		if err != nil {
			return err
		}
		a.listeners = append(a.listeners, l)
		a.addrs = append(a.addrs, "unix:"+cfg.Listen.Socket)
		a.ownSocket = cfg.Listen.Socket
	}
	if cfg.Listen.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listen: [listen] http %s: %w", cfg.Listen.HTTP, err)
		}
		a.listeners = append(a.listeners, l)
		a.addrs = append(a.addrs, "tcp:"+l.Addr().String())
	}
	return nil
}

// listenUnix binds path. A socket file left by a crash is replaced; one a
// live agent answers on is not stolen.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
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
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen: socket %s: %w", path, err)
	}
	// Closing the listener must not unlink the path: shutdown removes it
	// explicitly, after in-flight requests are answered.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen: chmod socket %s to %04o: %w", path, mode, err)
	}
	return l, nil
}

func (a *Agent) closeListeners() {
	for _, l := range a.listeners {
		_ = l.Close()
	}
	a.removeSocket()
}

// removeSocket unlinks the socket this agent created, never one it found
// in use by someone else.
func (a *Agent) removeSocket() {
	if a.ownSocket != "" {
		_ = os.Remove(a.ownSocket)
	}
}
