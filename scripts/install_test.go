//go:build linux

package scripts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The files install.sh lays down, relative to DESTDIR, with default PREFIX.
const (
	binPath      = "/usr/local/bin/hogrelay"
	unitPath     = "/etc/systemd/system/hogrelay.service"
	sysusersPath = "/usr/lib/sysusers.d/hogrelay.conf"
	tmpfilesPath = "/usr/lib/tmpfiles.d/hogrelay.conf"
	confDir      = "/etc/hogrelay"
	confPath     = "/etc/hogrelay/config.toml"
)

// dummyBinary stands in for hogrelay so the test needs no build of the agent.
func dummyBinary(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hogrelay")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

// install runs install.sh with the given DESTDIR and extra environment
// (e.g. "PREFIX=/usr"), returning its combined output.
func install(t *testing.T, destdir string, env []string, args ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs("install.sh")
	require.NoError(t, err)
	cmd := exec.Command(script, args...)
	cmd.Dir = t.TempDir() // the script must find the repo from its own path, not the cwd
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESTDIR=") && !strings.HasPrefix(kv, "PREFIX=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DESTDIR="+destdir)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustInstall(t *testing.T, destdir string, env []string, args ...string) string {
	t.Helper()
	out, err := install(t, destdir, env, args...)
	require.NoError(t, err, "install.sh %s:\n%s", strings.Join(args, " "), out)
	return out
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	require.NoError(t, err)
	return string(b)
}

type fileState struct {
	mode    os.FileMode
	content string
	mtime   time.Time
}

func stat(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	s := fileState{mode: fi.Mode(), mtime: fi.ModTime()}
	if fi.Mode().IsRegular() {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		s.content = string(b)
	}
	return s
}

func TestInstallIntoDestdir(t *testing.T) {
	dest := t.TempDir()
	bin := dummyBinary(t, "echo v1")
	hostPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)

	out := mustInstall(t, dest, nil, "--binary", bin)

	want := []struct {
		path    string
		mode    os.FileMode
		content string // "" = not checked
	}{
		{binPath, 0o755, "#!/bin/sh\necho v1\n"},
		{unitPath, 0o644, readRepoFile(t, "systemd/hogrelay.service")},
		{sysusersPath, 0o644, readRepoFile(t, "systemd/hogrelay.sysusers")},
		{tmpfilesPath, 0o644, readRepoFile(t, "systemd/hogrelay.tmpfiles")},
		{confDir, os.ModeDir | 0o750, ""},
		{confPath, 0o640, readRepoFile(t, "config.example.toml")},
	}
	for _, w := range want {
		t.Run("first run/"+w.path, func(t *testing.T) {
			got := stat(t, dest+w.path)
			require.Equal(t, w.mode, got.mode)
			if w.content != "" {
				require.Equal(t, w.content, got.content)
			}
		})
	}
	require.Contains(t, out, "skipped    creating user hogrelay")
	afterPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	require.Equal(t, string(hostPasswd), string(afterPasswd), "DESTDIR install touched the host's users")

	// An operator edits the config; a re-run must leave it and everything
	// else alone.
	edited := "# mine\n[posthog]\napi_key = \"phc_test\"\n"
	require.NoError(t, os.WriteFile(dest+confPath, []byte(edited), 0o640))
	before := map[string]fileState{}
	for _, w := range want {
		before[w.path] = stat(t, dest+w.path)
	}
	time.Sleep(10 * time.Millisecond) // so a rewrite would show in mtime

	out = mustInstall(t, dest, nil, "--binary", bin)
	require.Contains(t, out, "not overwritten")
	require.NotContains(t, out, "installed  ", "second run with the same binary changed something")
	for _, w := range want {
		t.Run("second run/"+w.path, func(t *testing.T) {
			require.Equal(t, before[w.path], stat(t, dest+w.path))
		})
	}

	// A new binary is the one thing a re-run replaces.
	out = mustInstall(t, dest, nil, "--binary", dummyBinary(t, "echo v2"))
	require.Contains(t, out, "installed  "+dest+binPath)
	require.Equal(t, "#!/bin/sh\necho v2\n", stat(t, dest+binPath).content)
	require.Equal(t, os.FileMode(0o755), stat(t, dest+binPath).mode)
	require.Equal(t, edited, stat(t, dest+confPath).content)

	out = mustInstall(t, dest, nil, "--uninstall")
	gone := []string{binPath, unitPath, sysusersPath, tmpfilesPath}
	for _, p := range gone {
		t.Run("uninstall removes/"+p, func(t *testing.T) {
			_, err := os.Lstat(dest + p)
			require.ErrorIs(t, err, os.ErrNotExist)
			require.Contains(t, out, "removed    "+dest+p)
		})
	}
	t.Run("uninstall keeps the config", func(t *testing.T) {
		require.Equal(t, edited, stat(t, dest+confPath).content)
		require.Contains(t, out, "kept       "+dest+confDir)
	})

	// Uninstalling twice is as harmless as installing twice.
	out = mustInstall(t, dest, nil, "--uninstall")
	require.Contains(t, out, "absent     "+dest+binPath)
}

func TestInstallPrefix(t *testing.T) {
	dest := t.TempDir()
	mustInstall(t, dest, []string{"PREFIX=/usr/"}, "--binary", dummyBinary(t, "true"))
	require.Equal(t, os.FileMode(0o755), stat(t, dest+"/usr/bin/hogrelay").mode)
	_, err := os.Stat(dest + binPath)
	require.ErrorIs(t, err, os.ErrNotExist)

	unit := stat(t, dest+unitPath).content
	require.Contains(t, unit, "\nExecStart=/usr/bin/hogrelay serve --config /etc/hogrelay/config.toml\n")
	require.Contains(t, unit, "\nExecStartPre=/usr/bin/hogrelay check-config ")
	require.NotContains(t, unit, "/usr/local/bin")

	mustInstall(t, dest, []string{"PREFIX=/usr"}, "--uninstall")
	_, err = os.Stat(dest + "/usr/bin/hogrelay")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestInstallRefuses(t *testing.T) {
	bin := dummyBinary(t, "true")
	tests := []struct {
		name    string
		env     []string
		args    []string
		wantOut string
	}{
		{"unknown flag", nil, []string{"--frobnicate"}, "unknown argument: --frobnicate"},
		{"binary missing", nil, []string{"--binary", "/nonexistent/hogrelay"}, "is not an executable file"},
		{"binary flag without path", nil, []string{"--binary"}, "--binary needs a path"},
		{"relative prefix", []string{"PREFIX=usr"}, []string{"--binary", bin}, "PREFIX must be an absolute path"},
		{"prefix needing quotes", []string{"PREFIX=/opt/my dir"}, []string{"--binary", bin}, "would need quoted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := t.TempDir()
			out, err := install(t, dest, tt.env, tt.args...)
			require.Error(t, err, out)
			require.Contains(t, out, tt.wantOut)
			entries, err := os.ReadDir(dest)
			require.NoError(t, err)
			require.Empty(t, entries, "a refused install must not leave files behind")
		})
	}
}

// TestShellcheck keeps the script free of the usual sh pitfalls when
// shellcheck is installed (apt-get install shellcheck).
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not installed")
	}
	var out bytes.Buffer
	cmd := exec.Command(sc, "--shell=sh", "install.sh")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), out.String())
	// And the bash scripts make test and CI run.
	out.Reset()
	cmd = exec.Command(sc, "test.sh", "../.ci/run")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), out.String())
}
