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
// level ("trace" … "error"). "auto" picks console when w is a terminal. The
// console format colours only a terminal (and not when $NO_COLOR is set), so
// `hogrelay dev 2>file` writes plain text.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	if err := SetLevel(level); err != nil {
		return zerolog.Nop(), err
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if format == "" {
		format = "auto"
	}
	if err := CheckFormat(format); err != nil {
		return zerolog.Nop(), fmt.Errorf("logging: %w", err)
	}
	out := w
	tty := isTerminal(w)
	if format == "console" || (format == "auto" && tty) {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !tty || os.Getenv("NO_COLOR") != ""}
	}
	return zerolog.New(out).With().Timestamp().Logger(), nil
}

// SetLevel changes the level of every logger in the process; SIGHUP uses it.
func SetLevel(level string) error {
	if err := CheckLevel(level); err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	l, _ := zerolog.ParseLevel(level)
	zerolog.SetGlobalLevel(l)
	return nil
}

// CheckLevel is the one rule for a log level ([log] level in the config).
// zerolog knows more levels; these are the ones that make sense for a
// service (fatal and panic would hide every warning).
func CheckLevel(level string) error {
	switch level {
	case "trace", "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("%q is not a log level (trace, debug, info, warn, error)", level)
}

// CheckFormat is the one rule for a log format ([log] format in the config).
func CheckFormat(format string) error {
	switch format {
	case "auto", "json", "console":
		return nil
	}
	return fmt.Errorf("%q is not a log format (auto, json, console)", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
