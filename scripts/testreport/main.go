// Command testreport reads `go test -json` on stdin and prints what plain
// `go test` would (each package's ok/FAIL line, the output of failed tests,
// build errors), then every skipped test with its reason, and a closing
// "N passed, N failed, N skipped" line, so a green run cannot hide a skip.
// It exits 1 when a test, a package or a build failed.
//
//	go test -json ./... | go run ./scripts/testreport
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	r := newReport(os.Stdout)
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if !r.finish() {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail
}

type key struct{ pkg, test string }

type report struct {
	w       io.Writer
	output  map[key][]string // buffered output of tests still running
	skipped []skip
	pass    int
	fail    int
	failed  bool // a test, package or build failed
}

type skip struct {
	pkg, test, reason string
}

func newReport(w io.Writer) *report {
	return &report{w: w, output: map[key][]string{}}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			// Not test2json (e.g. a go command error): pass it through.
			fmt.Fprintln(r.w, string(line))
			continue
		}
		r.event(ev)
	}
	return sc.Err()
}

func (r *report) event(ev event) {
	k := key{ev.Package, ev.Test}
	switch {
	case ev.Action == "build-output":
		fmt.Fprint(r.w, ev.Output)
	case ev.Action == "build-fail":
		r.failed = true
	case ev.Test == "":
		// Package level: its ok/FAIL line, panics, TestMain's own output.
		switch ev.Action {
		case "output":
			if !strings.HasPrefix(ev.Output, "=== ") && ev.Output != "PASS\n" {
				fmt.Fprint(r.w, ev.Output)
			}
		case "fail":
			r.failed = true
			// Tests that never finished (a panic, a timeout): show what
			// they wrote.
			for k, lines := range r.output {
				if k.pkg == ev.Package {
					for _, l := range lines {
						fmt.Fprint(r.w, l)
					}
					delete(r.output, k)
				}
			}
		}
	case ev.Action == "output":
		r.output[k] = append(r.output[k], ev.Output)
	case ev.Action == "pass":
		r.pass++
		delete(r.output, k)
	case ev.Action == "fail":
		r.fail++
		r.failed = true
		for _, l := range r.output[k] {
			fmt.Fprint(r.w, l)
		}
		delete(r.output, k)
	case ev.Action == "skip":
		r.skipped = append(r.skipped, skip{ev.Package, ev.Test, reason(r.output[k])})
		delete(r.output, k)
	}
}

// reason is what the skipped test logged, without go test's own lines.
func reason(lines []string) string {
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return "(no reason given)"
	}
	return strings.Join(out, " ")
}

// finish prints the skips and the closing line; it reports whether the run
// passed.
func (r *report) finish() bool {
	if len(r.skipped) > 0 {
		sort.Slice(r.skipped, func(i, j int) bool {
			a, b := r.skipped[i], r.skipped[j]
			return a.pkg < b.pkg || a.pkg == b.pkg && a.test < b.test
		})
		fmt.Fprintf(r.w, "\nskipped tests (%d):\n", len(r.skipped))
		for _, s := range r.skipped {
			fmt.Fprintf(r.w, "  %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	fmt.Fprintf(r.w, "\n%d passed, %d failed, %d skipped\n", r.pass, r.fail, len(r.skipped))
	return !r.failed
}
