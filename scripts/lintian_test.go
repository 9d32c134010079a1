//go:build linux

package scripts_test

import (
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The .deb of the real binary passes lintian with no error: a copyright
// file, a changelog for its version, a man page, and a binary without
// symbols (while make build keeps them).
func TestDebPassesLintian(t *testing.T) {
	debTool(t, "dpkg-deb")
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		if os.Getenv("HOGRELAY_REQUIRE_LINTIAN") == "1" {
			t.Fatalf("lintian not found but HOGRELAY_REQUIRE_LINTIAN=1 (apt-get install lintian): %v", err)
		}
		t.Skipf("lintian not found (apt-get install lintian; HOGRELAY_REQUIRE_LINTIAN=1 makes this a failure)")
	}
	arch := debArch(t)
	deb := buildDeb(t, "--version", "1.2.3", "--arch", arch) // builds the real binary

	out, err := exec.Command(lintian, "--fail-on", "error", "--no-tag-display-limit", deb).CombinedOutput()
	require.NoError(t, err, "lintian:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		require.False(t, strings.HasPrefix(line, "E: "), "lintian error: %s", line)
	}

	dir := t.TempDir()
	run(t, "dpkg-deb", "--extract", deb, dir)
	bin, err := elf.Open(filepath.Join(dir, debBinPath))
	require.NoError(t, err)
	defer bin.Close()
	require.Nil(t, bin.Section(".symtab"), "the packaged binary is stripped")
	require.Contains(t, run(t, filepath.Join(dir, debBinPath), "version"), "1.2.3")

	changelog := gunzip(t, filepath.Join(dir, "/usr/share/doc/hogrelay/changelog.gz"))
	require.True(t, strings.HasPrefix(changelog, "hogrelay (1.2.3) "), changelog)
	man := gunzip(t, filepath.Join(dir, "/usr/share/man/man1/hogrelay.1.gz"))
	require.Contains(t, man, `.SS "hogrelay spool dead\-letters list"`, "the man page is the CLI's help")
	copyright, err := os.ReadFile(filepath.Join(dir, "/usr/share/doc/hogrelay/copyright"))
	require.NoError(t, err)
	require.Contains(t, string(copyright), "go.etcd.io/bbolt")

	// make build's binary keeps its symbols for a debugger.
	built := filepath.Join(t.TempDir(), "hogrelay")
	gobuild := exec.Command("go", "build", "-trimpath", "-o", built, "../cmd/hogrelay")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := gobuild.CombinedOutput()
	require.NoError(t, err, string(b))
	unstripped, err := elf.Open(built)
	require.NoError(t, err)
	defer unstripped.Close()
	require.NotNil(t, unstripped.Section(".symtab"), "make build keeps symbols")
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(b)
}
