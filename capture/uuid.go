package capture

import (
	"crypto/rand"
	"time"
)

// UUIDs are handled here rather than with a library because only two small
// operations are needed: parsing what SDKs send (in the forms Rust's uuid
// crate accepts, as capture-rs uses it) and minting v7 ids for events that
// have none.

// parseUUID accepts hyphenated, simple (32 hex digits), braced and
// urn:uuid: forms, any case.
func parseUUID(s []byte) (u [16]byte, ok bool) {
	switch {
	case len(s) == 45 && string(s[:9]) == "urn:uuid:":
		s = s[9:]
	case len(s) == 38 && s[0] == '{' && s[37] == '}':
		s = s[1:37]
	}
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, false
		}
		j := 0
		for i := 0; i < 36; {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				i++
				continue
			}
			b, ok := hexByte(s[i], s[i+1])
			if !ok {
				return u, false
			}
			u[j] = b
			j++
			i += 2
		}
		return u, true
	case 32:
		for j := 0; j < 16; j++ {
			b, ok := hexByte(s[2*j], s[2*j+1])
			if !ok {
				return u, false
			}
			u[j] = b
		}
		return u, true
	}
	return u, false
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// newUUIDv7 fills u as a version 7 UUID: 48 bits of Unix milliseconds, then
// random bits (taken from rnd, 10 bytes) with the version and variant set.
// Time-ordered ids keep PostHog's ClickHouse inserts local.
func newUUIDv7(t time.Time, rnd []byte) (u [16]byte) {
	ms := uint64(t.UnixMilli())
	u[0], u[1], u[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	u[3], u[4], u[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	copy(u[6:], rnd[:10])
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u
}

// randomBytes returns n random bytes in one read, so a batch pays for one
// call to the kernel's generator rather than one per event.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// appendUUID appends u in canonical form (lowercase, hyphenated, quoted),
// the form PostHog stores, so a retried event stays byte-identical.
func appendUUID(dst []byte, u [16]byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return append(dst, '"')
}
