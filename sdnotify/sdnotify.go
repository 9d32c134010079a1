// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) without a
// dependency: a datagram of newline-separated KEY=VALUE lines sent to the
// unix socket named by $NOTIFY_SOCKET.
//
// The agent runs as a Type=notify unit, so it tells systemd when it is
// actually ready (spool recovered, socket listening), when it is reloading or
// stopping, what it is doing (STATUS=: the agent's statusNotifier sends
// spool depth, the forwarder's state and a refused reload, which `systemctl
// status` shows), and that it is still healthy (WATCHDOG=1). Outside systemd
// NOTIFY_SOCKET is unset and every call is a no-op returning nil, so callers
// never need to ask whether they run under systemd.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// sendTimeout bounds one notification. systemd reads its socket promptly, but
// a wedged PID 1 must not wedge the goroutine that pings the watchdog.
const sendTimeout = time.Second

// Ready tells systemd start-up is complete; Type=notify units are "activating"
// until this arrives, so dependants (producers ordered After=hogrelay) wait.
func Ready() error { return Notify("READY=1") }

// Stopping tells systemd a clean shutdown has begun, so the final flush shows
// as "deactivating" rather than as an unresponsive service.
func Stopping() error { return Notify("STOPPING=1") }

// Reloading tells systemd a config reload has begun; send Ready when it is
// done. MONOTONIC_USEC is what systemd ≥ 253 requires for Type=notify-reload
// to match the reload to this message; older versions ignore it.
func Reloading() error {
	if usec, ok := monotonicUsec(); ok {
		return Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatUint(usec, 10))
	}
	return Notify("RELOADING=1")
}

// Status sets the one-line text `systemctl status` shows (e.g. spool depth).
// Newlines would end the STATUS= field and start a bogus one, so they become
// spaces.
func Status(s string) error {
	return Notify("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// Watchdog pings systemd's watchdog. Call it only after a self-check passes:
// a free-running ticker would keep a wedged agent alive forever.
func Watchdog() error { return Notify("WATCHDOG=1") }

// WatchdogInterval reports the WatchdogSec= systemd expects pings within, and
// whether the watchdog is enabled for this process. Ping at about half the
// interval. It is false when WATCHDOG_USEC is unset or malformed, or when
// WATCHDOG_PID names another process (the variables leaked to a child).
func WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseUint(os.Getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0, false
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" {
		if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
			return 0, false
		}
	}
	if usec > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}

// Notify sends the given KEY=VALUE assignments as one datagram, for states the
// helpers above do not cover (e.g. "EXTEND_TIMEOUT_USEC=..." during a long
// spool recovery). It returns nil without doing anything when NOTIFY_SOCKET is
// unset.
func Notify(states ...string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	// systemd names either a filesystem path or, with a leading '@', a socket
	// in the abstract namespace. Go's net package maps a leading '@' to the
	// abstract namespace itself on Linux, so both forms dial as they are.
	// Anything else (e.g. systemd ≥ 254's "vsock:") is not ours to guess at.
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET=%q: unsupported address (want an absolute path or @abstract name)", addr)
	}
	if len(states) == 0 {
		return errors.New("sdnotify: nothing to send")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", states[0], err)
	}
	return nil
}
