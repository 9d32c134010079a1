package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Error is every problem Load and Validate report: which file, which key and
// what is wrong with it, so an operator can go straight to the line.
type Error struct {
	File    string // the config file; "(defaults)" when validating Default()
	Line    int    // line in File when the TOML decoder knows it, else 0
	Key     string // "[spool] max_bytes", "data_dir", "[listen]"; "" when the problem is the file itself
	Problem string // what is wrong and, where it helps, what to write instead

	err error // the underlying error (file system, decoder), for errors.Is/As
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s: line %d", e.File, e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("config: %s: %s", where, e.Problem)
	}
	return fmt.Sprintf("config: %s: %s: %s", where, e.Key, e.Problem)
}

func (e *Error) Unwrap() error { return e.err }

// displayKey turns a TOML key path ("spool.max_bytes") into the form the
// docs and every message use ("[spool] max_bytes").
func displayKey(path []string) string {
	switch len(path) {
	case 0:
		return ""
	case 1:
		if _, top := topLevelKeys[path[0]]; top {
			return path[0]
		}
		return "[" + path[0] + "]"
	}
	return "[" + path[0] + "] " + strings.Join(path[1:], ".")
}

// topLevelKeys are the keys outside any [section] (data_dir).
var topLevelKeys = func() map[string]struct{} {
	keys := map[string]struct{}{}
	eachKey(func(ch Change, _ func(*Config) reflect.Value) {
		if ch.Section == "" {
			keys[ch.Key] = struct{}{}
		}
	})
	return keys
}()
