package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Secret is a string that never prints itself, so a key cannot leak through a
// log line, an error or a status dump by accident.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText keeps secrets out of JSON and TOML output too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is needed because MarshalText exists; it stores the value as is.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Reveal returns the secret for the one place that must send it upstream.
func (s Secret) Reveal() string { return string(s) }

// Duration is a time.Duration written as a Go duration string ("30s", "5m").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. \"30s\" or \"5m\")", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a size written as an integer of bytes or a string with a unit
// ("512KiB", "2GiB", "1MB").
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

func (s *ByteSize) UnmarshalText(b []byte) error {
	v, err := ParseByteSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalTOML accepts a bare integer as well as a string with a unit.
func (s *ByteSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("%d is negative", x)
		}
		*s = ByteSize(x)
		return nil
	case string:
		return s.UnmarshalText([]byte(x))
	default:
		return fmt.Errorf("%v is not a size (use e.g. \"2GiB\" or a number of bytes)", v)
	}
}

// ParseByteSize parses "123", "64MiB", "1.5GB" and similar.
func ParseByteSize(text string) (ByteSize, error) {
	t := strings.TrimSpace(text)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || t == "" {
		return 0, fmt.Errorf("%q is not a size (use e.g. \"2GiB\", \"512MiB\" or a number of bytes)", text)
	}
	return ByteSize(f * float64(mult)), nil
}

func (s ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(s) >= u.mult && int64(s)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Human is s for people reading a status line ("1.5 GiB", "300 B"): one
// decimal, so unlike String it does not round-trip through ParseByteSize.
// The STATUS= line systemd shows and `hogrelay status` both use it.
func (s ByteSize) Human() string {
	b := int64(s)
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// FileMode is a permission mode written as an octal string ("0660").
type FileMode uint32

func (m *FileMode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("%q is not an octal file mode (use e.g. \"0660\")", b)
	}
	*m = FileMode(v)
	return nil
}

func (m FileMode) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%04o", uint32(m))), nil }
