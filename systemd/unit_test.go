//go:build linux

package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
)

const (
	unitFile     = "hogrelay.service"
	sysusersFile = "hogrelay.sysusers"
	tmpfilesFile = "hogrelay.tmpfiles"
	// installedBinary is the path the unit runs; install.sh rewrites it for
	// other PREFIXes.
	installedBinary = "/usr/local/bin/hogrelay"
)

// systemdTool finds a systemd binary, skipping the test when it is missing
// unless CI has said (HOGRELAY_REQUIRE_SYSTEMD) that it must be there.
func systemdTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("HOGRELAY_REQUIRE_SYSTEMD") != "" {
			t.Fatalf("%s not found but HOGRELAY_REQUIRE_SYSTEMD is set (apt-get install systemd): %v", name, err)
		}
		t.Skipf("%s not found (set HOGRELAY_REQUIRE_SYSTEMD=1 to make this a failure)", name)
	}
	return path
}

// unit is a parsed unit file: section → key → every value in file order
// (keys such as ExecReload= may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			require.NotEqual(t, "", section, "%s:%d: setting outside a section", path, n)
			require.False(t, strings.HasSuffix(line, `\`), "%s:%d: keep settings on one line so this parser stays honest", path, n)
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s:%d: %q is not Key=Value", path, n, line)
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			u[section][k] = append(u[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// one returns the single value of a key, failing if it is absent or repeated.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	require.Len(t, vs, 1, "[%s] %s= should be set exactly once", section, key)
	return vs[0]
}

// timespan parses the systemd time spans this unit uses ("30", "30s", "5min").
func timespan(t *testing.T, s string) time.Duration {
	t.Helper()
	if strings.Trim(s, "0123456789") == "" {
		s += "s" // a bare number is seconds
	}
	d, err := time.ParseDuration(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "min", "m"))
	require.NoError(t, err, "time span %q", s)
	return d
}

func TestUnitKeySettings(t *testing.T) {
	u := parseUnit(t, unitFile)
	exact := []struct{ section, key, want string }{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "User", "hogrelay"},
		{"Service", "Group", "hogrelay"},
		{"Service", "SupplementaryGroups", "hogrelay-admin"},
		{"Service", "ExecStartPre", installedBinary + " check-config --config " + config.DefaultPath},
		{"Service", "ExecStart", installedBinary + " serve --config " + config.DefaultPath},
		{"Service", "EnvironmentFile", "-/etc/hogrelay/env"},
		{"Service", "StateDirectoryMode", "0750"},
		{"Service", "RuntimeDirectoryMode", "0750"},
		{"Service", "Restart", "on-failure"},
		{"Service", "KillMode", "mixed"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "yes"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "ProtectKernelTunables", "yes"},
		{"Service", "ProtectKernelModules", "yes"},
		{"Service", "ProtectKernelLogs", "yes"},
		{"Service", "ProtectControlGroups", "yes"},
		{"Service", "ProtectClock", "yes"},
		{"Service", "ProtectHostname", "yes"},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"Service", "RestrictNamespaces", "yes"},
		{"Service", "LockPersonality", "yes"},
		{"Service", "MemoryDenyWriteExecute", "yes"},
		{"Service", "RestrictRealtime", "yes"},
		{"Service", "RestrictSUIDSGID", "yes"},
		{"Service", "SystemCallArchitectures", "native"},
		{"Service", "SystemCallFilter", "@system-service"},
		{"Service", "LimitNOFILE", "65536"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, tt := range exact {
		t.Run(tt.section+"/"+tt.key, func(t *testing.T) {
			require.Equal(t, tt.want, u.one(t, tt.section, tt.key))
		})
	}

	t.Run("reload validates, then signals", func(t *testing.T) {
		require.Equal(t, []string{
			installedBinary + " check-config --config " + config.DefaultPath,
			"/bin/kill -HUP $MAINPID",
		}, u["Service"]["ExecReload"])
	})

	def := config.Default()
	t.Run("stop timeout outlasts the shutdown flush", func(t *testing.T) {
		flush := time.Duration(def.Forwarder.ShutdownTimeout)
		stop := timespan(t, u.one(t, "Service", "TimeoutStopSec"))
		// Margin for closing bbolt and the final fsync after the flush ends.
		require.Greater(t, stop, flush+10*time.Second,
			"TimeoutStopSec=%s would SIGKILL the agent during its %s shutdown flush", stop, flush)
	})
	t.Run("memory limits leave room for the agent's own bound", func(t *testing.T) {
		size := func(v string) int64 {
			b, err := config.ParseByteSize(strings.NewReplacer("G", "GiB", "M", "MiB").Replace(v))
			require.NoError(t, err, v)
			return int64(b)
		}
		high := size(u.one(t, "Service", "MemoryHigh"))
		limit := agent.MemoryLimit(def)
		require.Greater(t, high, limit, "MemoryHigh must sit above the Go memory limit the agent sets")
		require.Greater(t, size(u.one(t, "Service", "MemoryMax")), high)
	})
	t.Run("connection limits stay below LimitNOFILE", func(t *testing.T) {
		nofile, err := strconv.Atoi(u.one(t, "Service", "LimitNOFILE"))
		require.NoError(t, err)
		require.Less(t, 3*def.Listen.MaxConnections+1024, nofile, "three listeners at max_connections, plus the spool and upstream connections")
	})
	t.Run("watchdog is on", func(t *testing.T) {
		require.Equal(t, 30*time.Second, timespan(t, u.one(t, "Service", "WatchdogSec")))
	})
	t.Run("start limit is in [Unit], where systemd reads it", func(t *testing.T) {
		interval := timespan(t, u.one(t, "Unit", "StartLimitIntervalSec"))
		restart := timespan(t, u.one(t, "Service", "RestartSec"))
		burst := u.one(t, "Unit", "StartLimitBurst")
		require.NotEmpty(t, burst)
		// Otherwise restarts are spaced too far apart for the limit to trip.
		require.Greater(t, interval, restart*5)
	})
	t.Run("state directory is the default data_dir", func(t *testing.T) {
		require.Equal(t, def.DataDir, "/var/lib/"+u.one(t, "Service", "StateDirectory"))
	})
	t.Run("runtime directory holds the default socket", func(t *testing.T) {
		require.Equal(t, filepath.Dir(def.Listen.Socket), "/run/"+u.one(t, "Service", "RuntimeDirectory"))
	})
	t.Run("umask keeps the socket's group bits", func(t *testing.T) {
		mask := u.one(t, "Service", "UMask")
		require.Regexp(t, `^0[0-7][0-7]7$`, mask, "no world access")
		require.Equal(t, byte('0'), mask[2], "group bits must survive for the %o socket", uint32(def.Listen.SocketMode))
	})
}

// TestUnitVerifies runs systemd-analyze verify, which checks every setting's
// syntax and that the executables exist, and fails on any message about our
// unit (verify exits 0 on unknown keys and bad values, only printing them).
func TestUnitVerifies(t *testing.T) {
	analyze := systemdTool(t, "systemd-analyze")
	tests := []struct {
		name   string
		mutate func(string) string
		clean  bool
	}{
		{"as shipped", func(s string) string { return s }, true},
		// Proves the check below would catch a problem at all.
		{"unknown key is caught", func(s string) string {
			return strings.Replace(s, "[Service]\n", "[Service]\nNoSuchSetting=1\n", 1)
		}, false},
		{"bad value is caught", func(s string) string {
			return strings.Replace(s, "KillMode=mixed", "KillMode=mixd", 1)
		}, false},
	}
	raw, err := os.ReadFile(unitFile)
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// verify insists the ExecStart= binary exists and is executable.
			bin := filepath.Join(dir, "hogrelay")
			require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755))
			text := tt.mutate(strings.ReplaceAll(string(raw), installedBinary, bin))
			path := filepath.Join(dir, unitFile)
			require.NoError(t, os.WriteFile(path, []byte(text), 0o644))

			cmd := exec.Command(analyze, "verify", "--man=no", path)
			cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=info", "SYSTEMD_LOG_COLOR=0")
			out, err := cmd.CombinedOutput()
			var about []string
			for _, line := range strings.Split(string(out), "\n") {
				// Other units on the host may have problems of their own.
				if strings.Contains(line, unitFile) || strings.Contains(line, dir) {
					about = append(about, line)
				}
			}
			if tt.clean {
				require.NoError(t, err, "systemd-analyze verify:\n%s", out)
				require.Empty(t, about, "systemd-analyze verify complained:\n%s", out)
			} else {
				require.NotEmpty(t, about, "systemd-analyze verify missed a broken unit:\n%s", out)
			}
		})
	}
}

// TestSysusersAndTmpfiles applies both files to an empty root, as first boot
// of an image would, and checks the user and the config's ownership.
func TestSysusersAndTmpfiles(t *testing.T) {
	sysusers := systemdTool(t, "systemd-sysusers")
	tmpfiles := systemdTool(t, "systemd-tmpfiles")
	root := t.TempDir()
	cfgDir := filepath.Join(root, "etc", "hogrelay")
	require.NoError(t, os.MkdirAll(cfgDir, 0o755))
	cfg := filepath.Join(cfgDir, "config.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("# placeholder\n"), 0o644))

	abs := func(name string) string {
		p, err := filepath.Abs(name)
		require.NoError(t, err)
		return p
	}
	out, err := exec.Command(sysusers, "--root="+root, abs(sysusersFile)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	rules := abs(tmpfilesFile)
	if os.Geteuid() != 0 {
		// Only root may chown; check syntax and modes with ownership left alone.
		raw, err := os.ReadFile(rules)
		require.NoError(t, err)
		rules = filepath.Join(t.TempDir(), "hogrelay.conf")
		require.NoError(t, os.WriteFile(rules, []byte(strings.ReplaceAll(string(raw), " root hogrelay ", " -    -        ")), 0o644))
	}
	out, err = exec.Command(tmpfiles, "--root="+root, "--create", rules).CombinedOutput()
	require.NoError(t, err, "%s", out)

	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	require.NoError(t, err)
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^hogrelay:x:\d+:\d+:[^:]*:/var/lib/hogrelay:/usr/sbin/nologin$`, string(passwd))
	require.Regexp(t, `(?m)^hogrelay-admin:x:\d+:`, string(group), "the unit's SupplementaryGroups= must exist")
	m := regexp.MustCompile(`(?m)^hogrelay:x:(\d+):`).FindStringSubmatch(string(group))
	require.NotNil(t, m, "no hogrelay group in:\n%s", group)
	gid, err := strconv.Atoi(m[1])
	require.NoError(t, err)

	for _, tt := range []struct {
		path string
		mode os.FileMode
	}{
		{cfgDir, os.ModeDir | 0o750},
		{cfg, 0o640},
	} {
		fi, err := os.Stat(tt.path)
		require.NoError(t, err)
		require.Equal(t, tt.mode, fi.Mode(), tt.path)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			require.Equal(t, uint32(0), st.Uid, "%s owner", tt.path)
			require.Equal(t, uint32(gid), st.Gid, "%s group", tt.path)
		}
	}
}
