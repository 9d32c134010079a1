package capture

import "github.com/google/uuid"

// parseUUID accepts what capture-rs accepts: hyphenated, simple (32 hex
// digits), braced and urn:uuid: forms, any case.
func parseUUID(s []byte) ([16]byte, bool) {
	u, err := uuid.ParseBytes(s)
	return u, err == nil
}

// newUUIDv7 mints an id for an event that has none. Version 7 ids are
// time-ordered, which keeps PostHog's ClickHouse inserts local.
func newUUIDv7() ([16]byte, error) {
	return uuid.NewV7()
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
