package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestManPageIsTheCLIsOwnHelp(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteManPage(&b, "1.2.3", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
	page := b.String()
	require.True(t, strings.HasPrefix(page, `.TH HOGRELAY 1 "2026-12-01" "hogrelay 1.2.3"`), page[:80])
	for _, l := range leaves(nil, commands()) {
		name := strings.Join(l.path, " ")
		require.Contains(t, page, `.SS "hogrelay `+strings.ReplaceAll(name, "-", `\-`)+`"`, "every command has its section")
	}
	require.Contains(t, page, `usage: hogrelay flags get KEY \-\-distinct\-id ID`)
	require.Contains(t, page, `\-dead\-letters`, "flags are listed, hyphens escaped")
	require.Contains(t, page, EnvSocket)
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, ".") {
			require.Regexp(t, `^\.(TH|SH|SS|B|I|BR|TP|br|nf|fi)( |$)`, line, "only requests we meant")
		}
	}

	// man itself reads it without complaint, where man is installed.
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		require.Empty(t, strings.TrimSpace(string(out)), "groff warnings")
	}
}
