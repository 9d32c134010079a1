package sdnotify_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/sdnotify"
)

// listen binds a unixgram socket standing in for systemd's and points
// NOTIFY_SOCKET at it. name is a path, or "@..." for the abstract namespace.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

// socketPath is short enough for sun_path (108 bytes), which t.TempDir's
// test-name-based paths can exceed.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "notify.sock")
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name string
		send func() error
		want *regexp.Regexp
	}{
		{"ready", sdnotify.Ready, regexp.MustCompile(`^READY=1$`)},
		{"stopping", sdnotify.Stopping, regexp.MustCompile(`^STOPPING=1$`)},
		{"watchdog", sdnotify.Watchdog, regexp.MustCompile(`^WATCHDOG=1$`)},
		{"reloading", sdnotify.Reloading, regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`)},
		{"status", func() error { return sdnotify.Status("spool: 12 events, oldest 3s") },
			regexp.MustCompile(`^STATUS=spool: 12 events, oldest 3s$`)},
		{"status newlines cannot inject fields", func() error { return sdnotify.Status("a\nREADY=1\r\nb") },
			regexp.MustCompile(`^STATUS=a READY=1 b$`)},
		{"notify several", func() error { return sdnotify.Notify("EXTEND_TIMEOUT_USEC=5000000", "STATUS=recovering") },
			regexp.MustCompile(`^EXTEND_TIMEOUT_USEC=5000000\nSTATUS=recovering$`)},
	}
	sockets := map[string]func(t *testing.T) string{
		"path": socketPath,
		"abstract": func(*testing.T) string {
			return fmt.Sprintf("@hogrelay-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		},
	}
	for kind, addr := range sockets {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				conn := listen(t, addr(t))
				require.NoError(t, tt.send())
				require.Regexp(t, tt.want, receive(t, conn))
			})
		}
	}
}

// MONOTONIC_USEC must be CLOCK_MONOTONIC (what systemd compares against), not
// wall time or Go's process-relative monotonic clock. CLOCK_MONOTONIC never runs
// ahead of /proc/uptime (CLOCK_BOOTTIME, which also counts suspend), and it is
// far smaller than a Unix timestamp.
func TestReloadingMonotonicIsSystemClock(t *testing.T) {
	if _, err := os.Stat("/proc/uptime"); err != nil {
		t.Skip("no /proc/uptime:", err)
	}
	conn := listen(t, socketPath(t))
	require.NoError(t, sdnotify.Reloading())
	m := regexp.MustCompile(`MONOTONIC_USEC=(\d+)`).FindStringSubmatch(receive(t, conn))
	require.NotNil(t, m)
	usec, err := strconv.ParseUint(m[1], 10, 64)
	require.NoError(t, err)

	raw, err := os.ReadFile("/proc/uptime")
	require.NoError(t, err)
	var uptime float64
	_, err = fmt.Sscanf(string(raw), "%f", &uptime)
	require.NoError(t, err)
	require.LessOrEqual(t, float64(usec)/1e6, uptime+0.01, "MONOTONIC_USEC ahead of boot time")
	require.Less(t, usec, uint64(time.Now().UnixMicro()/2), "MONOTONIC_USEC looks like wall-clock time")
}

func TestNoSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for name, send := range map[string]func() error{
		"ready": sdnotify.Ready, "stopping": sdnotify.Stopping, "reloading": sdnotify.Reloading,
		"watchdog": sdnotify.Watchdog, "status": func() error { return sdnotify.Status("x") },
	} {
		require.NoError(t, send(), name)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, socket, wantErr string
	}{
		{"nobody listening", filepath.Join(os.TempDir(), "hogrelay-sdnotify-missing.sock"), "sdnotify: "},
		{"relative path", "notify.sock", "unsupported address"},
		{"vsock", "vsock:2:1234", "unsupported address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tt.socket)
			err := sdnotify.Ready()
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name, usec, pid string
		want            time.Duration
		wantOK          bool
	}{
		{"unset", "", "", 0, false},
		{"30s for us", "30000000", self, 30 * time.Second, true},
		{"no pid given", "15000000", "", 15 * time.Second, true},
		{"for another process", "30000000", strconv.Itoa(os.Getpid() + 1), 0, false},
		{"malformed pid", "30000000", "abc", 0, false},
		{"malformed usec", "30s", self, 0, false},
		{"zero", "0", self, 0, false},
		{"negative", "-5", self, 0, false},
		{"overflows Duration", "18446744073709551", self, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			got, ok := sdnotify.WatchdogInterval()
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
