//go:build linux

package scripts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// The package's layout: PREFIX=/usr and the unit where packages put units.
const (
	debBinPath      = "/usr/bin/hogrelay"
	debUnitPath     = "/usr/lib/systemd/system/hogrelay.service"
	debWantsSymlink = "/etc/systemd/system/multi-user.target.wants/hogrelay.service"
)

// debTool finds a dpkg tool, skipping the test when it is missing unless CI
// has said (HOGRELAY_REQUIRE_DEB) that it must be there.
func debTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("HOGRELAY_REQUIRE_DEB") == "1" {
			t.Fatalf("%s not found but HOGRELAY_REQUIRE_DEB=1 (apt-get install dpkg): %v", name, err)
		}
		t.Skipf("%s not found: .deb tests need Debian's dpkg (set HOGRELAY_REQUIRE_DEB=1 to make this a failure)", name)
	}
	return path
}

// buildDeb runs build-deb.sh into a fresh directory and returns the .deb.
func buildDeb(t *testing.T, args ...string) string {
	t.Helper()
	out := t.TempDir()
	stdout, err := runBuildDeb(t, append(args, "--out", out)...)
	require.NoError(t, err, "build-deb.sh %s:\n%s", strings.Join(args, " "), stdout)
	debs, err := filepath.Glob(filepath.Join(out, "*.deb"))
	require.NoError(t, err)
	require.Len(t, debs, 1, "build-deb.sh output:\n%s", stdout)
	require.Contains(t, stdout, "built "+debs[0])
	return debs[0]
}

func runBuildDeb(t *testing.T, args ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs("build-deb.sh")
	require.NoError(t, err)
	cmd := exec.Command(script, args...)
	cmd.Dir = t.TempDir() // like install.sh, it finds the repo from its own path
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESTDIR=") && !strings.HasPrefix(kv, "PREFIX=") && !strings.HasPrefix(kv, "UNITDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// debFields is the control file as a map (single-line fields only).
func debFields(t *testing.T, deb string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, line := range strings.Split(run(t, "dpkg-deb", "--field", deb), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			fields[k] = v
		}
	}
	return fields
}

type debEntry struct{ perm, owner string }

// debContents parses dpkg-deb --contents (tar -tv lines) into path → entry.
func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	entries := map[string]debEntry{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 6, "odd --contents line %q", line)
		entries[strings.TrimPrefix(f[5], ".")] = debEntry{perm: f[0], owner: f[1]}
	}
	return entries
}

// debArch is Debian's name for the architecture these tests run on.
func debArch(t *testing.T) string {
	t.Helper()
	a, ok := map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "riscv64": "riscv64", "ppc64le": "ppc64el"}[runtime.GOARCH]
	if !ok {
		t.Skipf("build-deb.sh does not know a Debian architecture for GOARCH=%s", runtime.GOARCH)
	}
	return a
}

func TestDebPackage(t *testing.T) {
	debTool(t, "dpkg-deb")
	arch := debArch(t)
	deb := buildDeb(t, "--binary", dummyBinary(t, "echo v1"), "--version", "1.2.3", "--arch", arch)
	require.Equal(t, "hogrelay_1.2.3_"+arch+".deb", filepath.Base(deb))

	t.Run("control", func(t *testing.T) {
		f := debFields(t, deb)
		require.Equal(t, "hogrelay", f["Package"])
		require.Equal(t, "1.2.3", f["Version"])
		require.Equal(t, arch, f["Architecture"])
		require.Regexp(t, `^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$`, f["Maintainer"])
		require.Equal(t, "systemd", f["Recommends"])
		require.NotContains(t, f, "Depends", "a static binary needs nothing")
		require.NotEmpty(t, f["Description"])
		size, err := strconv.Atoi(f["Installed-Size"])
		require.NoError(t, err)
		require.Positive(t, size)
	})

	t.Run("conffiles", func(t *testing.T) {
		require.Equal(t, confPath+"\n", run(t, "dpkg-deb", "--info", deb, "conffiles"),
			"dpkg must treat the config as the operator's")
	})

	t.Run("files, modes and owners", func(t *testing.T) {
		entries := debContents(t, deb)
		files := map[string]string{}
		for path, e := range entries {
			require.Equal(t, "root/root", e.owner, "%s in the package", path)
			if e.perm[0] != 'd' {
				files[path] = e.perm
			}
		}
		require.Equal(t, map[string]string{
			debBinPath:   "-rwxr-xr-x",
			debUnitPath:  "-rw-r--r--",
			sysusersPath: "-rw-r--r--",
			tmpfilesPath: "-rw-r--r--",
			confPath:     "-rw-r-----",
			// What Debian policy asks of every package (see TestDebPassesLintian).
			"/usr/share/doc/hogrelay/copyright":     "-rw-r--r--",
			"/usr/share/doc/hogrelay/changelog.gz":  "-rw-r--r--",
			"/usr/share/man/man1/hogrelay.1.gz":     "-rw-r--r--",
			"/usr/share/lintian/overrides/hogrelay": "-rw-r--r--",
		}, files)
		require.Equal(t, "drwxr-x---", entries[confDir+"/"].perm)
		require.Equal(t, "drwxr-xr-x", entries["/"].perm, "the package must not change / on install")
	})

	t.Run("file contents", func(t *testing.T) {
		dir := t.TempDir()
		run(t, "dpkg-deb", "--extract", deb, dir)
		require.Equal(t, "#!/bin/sh\necho v1\n", stat(t, dir+debBinPath).content)
		require.Equal(t, readRepoFile(t, "config.example.toml"), stat(t, dir+confPath).content)
		require.Equal(t, readRepoFile(t, "systemd/hogrelay.sysusers"), stat(t, dir+sysusersPath).content)
		unit := stat(t, dir+debUnitPath).content
		require.Contains(t, unit, "\nExecStart=/usr/bin/hogrelay serve --config /etc/hogrelay/config.toml\n")
		require.Contains(t, unit, "\nExecStartPre=/usr/bin/hogrelay check-config ")
		require.Contains(t, unit, "\nExecReload=/usr/bin/hogrelay check-config ")
		require.NotContains(t, unit, "/usr/local/bin")
	})

	t.Run("maintainer scripts", func(t *testing.T) {
		dir := t.TempDir()
		run(t, "dpkg-deb", "--control", deb, dir)
		scripts := []string{"postinst", "prerm", "postrm"}
		for _, s := range scripts {
			require.Equal(t, os.FileMode(0o755), stat(t, filepath.Join(dir, s)).mode, s)
			run(t, "sh", "-n", filepath.Join(dir, s))
		}
		if sc, err := exec.LookPath("shellcheck"); err == nil {
			args := []string{"--shell=sh"}
			for _, s := range scripts {
				args = append(args, filepath.Join(dir, s))
			}
			run(t, sc, args...)
		}
	})
}

func TestDebVersionAndArch(t *testing.T) {
	dpkg := debTool(t, "dpkg")
	debTool(t, "dpkg-deb")
	bin := dummyBinary(t, "true")

	t.Run("derived from git is a valid Debian version", func(t *testing.T) {
		if out, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").CombinedOutput(); err != nil {
			t.Skipf("git cannot read this checkout, so there is no version to derive: %s", out)
		}
		v := debFields(t, buildDeb(t, "--binary", bin))["Version"]
		require.Regexp(t, `^[0-9]`, v)
		require.NotContains(t, v, "-", "no Debian revision, so no hyphen")
		run(t, dpkg, "--validate-version", v)
	})
	t.Run("leading v is dropped", func(t *testing.T) {
		require.Equal(t, "2.0.0~rc1", debFields(t, buildDeb(t, "--binary", bin, "--version", "v2.0.0~rc1"))["Version"])
	})
	t.Run("explicit arch", func(t *testing.T) {
		require.Equal(t, "arm64", debFields(t, buildDeb(t, "--binary", bin, "--version", "1", "--arch", "arm64"))["Architecture"])
	})

	// A real binary for the wrong architecture is refused: /bin/true is an
	// ELF for this machine.
	host := debArch(t)
	other := "arm64"
	if host == "arm64" {
		other = "amd64"
	}
	tests := []struct {
		name    string
		args    []string
		wantOut string
	}{
		{"bad version", []string{"--binary", bin, "--version", "1.2 3"}, "is not a Debian version"},
		{"version not starting with a digit", []string{"--binary", bin, "--version", "abc"}, "is not a Debian version"},
		{"unknown arch", []string{"--binary", bin, "--version", "1", "--arch", "mips"}, "unsupported --arch"},
		{"binary missing", []string{"--version", "1", "--binary", "/nonexistent/hogrelay"}, "is not an executable file"},
		{"binary for another arch", []string{"--version", "1", "--binary", "/bin/true", "--arch", other}, "is not a " + other + " binary"},
		{"unknown flag", []string{"--frobnicate"}, "unknown argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			stdout, err := runBuildDeb(t, append(tt.args, "--out", out)...)
			require.Error(t, err, stdout)
			require.Contains(t, stdout, tt.wantOut)
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			require.Empty(t, entries)
		})
	}
	t.Run("binary for this arch", func(t *testing.T) {
		buildDeb(t, "--binary", "/bin/true", "--version", "1", "--arch", host)
	})
}

// TestDebInstall installs the package into a throwaway root the way an
// image build would (dpkg --root with the maintainer scripts run outside a
// chroot, told where the root is by DPKG_ROOT), then upgrades, removes and
// purges it.
func TestDebInstall(t *testing.T) {
	dpkg := debTool(t, "dpkg")
	debTool(t, "dpkg-deb")
	arch := debArch(t)
	if got := strings.TrimSpace(run(t, dpkg, "--print-architecture")); got != arch {
		t.Skipf("dpkg's architecture is %s, not %s", got, arch)
	}
	v1 := buildDeb(t, "--binary", dummyBinary(t, "echo v1"), "--version", "1.0.0")
	v2 := buildDeb(t, "--binary", dummyBinary(t, "echo v2"), "--version", "1.0.1")

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644))
	dpkgRun := func(args ...string) (string, error) {
		cmd := exec.Command(dpkg, append([]string{
			"--root=" + root, "--log=" + filepath.Join(root, "var/log/dpkg.log"),
			"--force-not-root", "--force-script-chrootless",
		}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	hostPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	hostGroup, err := os.ReadFile("/etc/group")
	require.NoError(t, err)

	out, err := dpkgRun("--install", v1)
	if err != nil && strings.Contains(out, "requested operation requires superuser privilege") {
		t.Skipf("this dpkg will not install into another root without root:\n%s", out)
	}
	require.NoError(t, err, "dpkg --install:\n%s", out)
	require.Contains(t, out, "installed and enabled, not started")

	t.Run("host untouched", func(t *testing.T) {
		p, err := os.ReadFile("/etc/passwd")
		require.NoError(t, err)
		g, err := os.ReadFile("/etc/group")
		require.NoError(t, err)
		require.Equal(t, string(hostPasswd), string(p), "postinst changed the host's users")
		require.Equal(t, string(hostGroup), string(g), "postinst changed the host's groups")
	})
	t.Run("files landed", func(t *testing.T) {
		require.Equal(t, fileState{mode: 0o755, content: "#!/bin/sh\necho v1\n"}, withoutMtime(stat(t, root+debBinPath)))
		require.Equal(t, readRepoFile(t, "config.example.toml"), stat(t, root+confPath).content)
		require.Equal(t, os.FileMode(0o640), stat(t, root+confPath).mode)
		require.Equal(t, os.ModeDir|0o750, stat(t, root+confDir).mode)
	})
	gid := -1
	t.Run("user created in the root", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-sysusers"); err != nil {
			t.Skip("systemd-sysusers not installed; postinst leaves the user to the target's boot")
		}
		passwd := stat(t, root+"/etc/passwd").content
		require.Regexp(t, `(?m)^hogrelay:x:\d+:\d+:[^:]*:/var/lib/hogrelay:/usr/sbin/nologin$`, passwd)
		m := regexp.MustCompile(`(?m)^hogrelay:x:(\d+):`).FindStringSubmatch(stat(t, root+"/etc/group").content)
		require.NotNil(t, m)
		gid, _ = strconv.Atoi(m[1])
	})
	configOwned := func(t *testing.T) {
		t.Helper()
		if gid < 0 || os.Geteuid() != 0 {
			t.Skip("ownership is only set by a root dpkg with systemd-sysusers")
		}
		for _, p := range []string{confDir, confPath} {
			fi, err := os.Stat(root + p)
			require.NoError(t, err)
			st := fi.Sys().(*syscall.Stat_t)
			require.Equal(t, uint32(0), st.Uid, "%s owner", p)
			require.Equal(t, uint32(gid), st.Gid, "%s group", p)
		}
	}
	t.Run("config is root:hogrelay", configOwned)
	hasSystemctl := true
	if _, err := exec.LookPath("systemctl"); err != nil {
		hasSystemctl = false
	}
	t.Run("enabled", func(t *testing.T) {
		if !hasSystemctl {
			t.Skip("systemctl not installed")
		}
		target, err := os.Readlink(root + debWantsSymlink)
		require.NoError(t, err)
		require.Equal(t, debUnitPath, target)
	})

	// The operator edits the config; neither a reinstall nor an upgrade may
	// touch it.
	edited := "# mine\n[posthog]\napi_key = \"phc_test\"\n"
	require.NoError(t, os.WriteFile(root+confPath, []byte(edited), 0o640))
	out, err = dpkgRun("--install", v1)
	require.NoError(t, err, "reinstall:\n%s", out)
	require.Equal(t, edited, stat(t, root+confPath).content, "reinstall overwrote the edited config")
	require.NotContains(t, out, "installed and enabled", "a reinstall is not a first install")

	out, err = dpkgRun("--force-confdef", "--force-confold", "--install", v2)
	require.NoError(t, err, "upgrade:\n%s", out)
	require.Equal(t, "#!/bin/sh\necho v2\n", stat(t, root+debBinPath).content)
	require.Equal(t, edited, stat(t, root+confPath).content, "upgrade overwrote the edited config")
	t.Run("config still root:hogrelay after upgrade", configOwned)

	out, err = dpkgRun("--remove", "hogrelay")
	require.NoError(t, err, "remove:\n%s", out)
	for _, p := range []string{debBinPath, debUnitPath, sysusersPath, tmpfilesPath} {
		_, err := os.Lstat(root + p)
		require.ErrorIs(t, err, os.ErrNotExist, "%s after remove", p)
	}
	require.Equal(t, edited, stat(t, root+confPath).content, "remove (not purge) keeps the config")
	if hasSystemctl {
		_, err := os.Lstat(root + debWantsSymlink)
		require.ErrorIs(t, err, os.ErrNotExist, "remove leaves the service enabled")
	}

	// Purge: config gone, spooled events kept (and said so).
	spool := root + "/var/lib/hogrelay/spool.db"
	require.NoError(t, os.MkdirAll(filepath.Dir(spool), 0o750))
	require.NoError(t, os.WriteFile(spool, []byte("unsent"), 0o600))
	require.NoError(t, os.WriteFile(root+"/etc/hogrelay/env", []byte("HOGRELAY_API_KEY=phc_x\n"), 0o600))
	out, err = dpkgRun("--purge", "hogrelay")
	require.NoError(t, err, "purge:\n%s", out)
	_, err = os.Lstat(root + confDir)
	require.ErrorIs(t, err, os.ErrNotExist, "purge leaves /etc/hogrelay")
	require.Equal(t, "unsent", stat(t, spool).content, "purge removed spooled events")
	require.Contains(t, out, "Kept /var/lib/hogrelay")
	require.NotContains(t, stat(t, root+"/var/lib/dpkg/status").content, "Package: hogrelay")
}

func withoutMtime(s fileState) fileState {
	return fileState{mode: s.mode, content: s.content}
}

// TestBuildDebShellcheck keeps build-deb.sh free of the usual sh pitfalls.
func TestBuildDebShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not installed")
	}
	var out bytes.Buffer
	cmd := exec.Command(sc, "--shell=sh", "build-deb.sh")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), out.String())
}
