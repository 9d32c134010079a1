// Package logging sets up hogrelay's zerolog logger: JSON lines for journald
// and files, a human console format on a terminal.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing to w in format ("auto", "json", "console") at
// level ("trace" … "error"). "auto" picks console when w is a terminal.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	if err := SetLevel(level); err != nil {
		return zerolog.Nop(), err
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	out := w
	switch format {
	case "json":
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	case "auto", "":
		if isTerminal(w) {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
		}
	default:
		return zerolog.Nop(), fmt.Errorf("logging: %q is not a log format (auto, json, console)", format)
	}
	return zerolog.New(out).With().Timestamp().Logger(), nil
}

// SetLevel changes the level of every logger in the process; SIGHUP uses it.
func SetLevel(level string) error {
	l, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return fmt.Errorf("logging: %q is not a log level (trace, debug, info, warn, error)", level)
	}
	zerolog.SetGlobalLevel(l)
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
