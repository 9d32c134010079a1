package logging

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJSONLinesAndLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", "auto") // a buffer is not a terminal: JSON
	require.NoError(t, err)
	log.Debug().Msg("hidden")
	log.Info().Str("k", "v").Msg("shown")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "shown", line["message"])
	require.Equal(t, "info", line["level"])

	buf.Reset()
	require.NoError(t, SetLevel("debug"))
	log.Debug().Msg("now shown")
	require.Contains(t, buf.String(), "now shown")
	require.NoError(t, SetLevel("info"))
}

func TestRefusesUnknownLevelAndFormat(t *testing.T) {
	_, err := New(&bytes.Buffer{}, "loud", "json")
	require.ErrorContains(t, err, `"loud" is not a log level`)
	_, err = New(&bytes.Buffer{}, "info", "xml")
	require.ErrorContains(t, err, `"xml" is not a log format`)
}

func TestConsoleFormatHasNoColourCodesOffATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", "console") // what hogrelay dev asks for
	require.NoError(t, err)
	log.Warn().Str("k", "v").Msg("plain")
	require.Contains(t, buf.String(), "plain")
	require.Contains(t, buf.String(), "k=v")
	require.NotContains(t, buf.String(), "\x1b[", "no ANSI escape codes in a file or pipe")
}
