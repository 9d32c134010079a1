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

// firstOfEachUUID keeps the first event of each uuid in a v0 batch and
// leaves out later ones. PostHog keeps one event per uuid, so forwarding both
// only costs a duplicate; Capture v1 refuses such a batch
// (duplicate_event_uuid), but v0 has always been accepted, so v0 keeps one,
// which is what PostHog would end up with. Events without a uuid get a fresh
// one each and are all kept.
func firstOfEachUUID(events []rawEvent) ([]rawEvent, int) {
	if len(events) < 2 {
		return events, 0
	}
	seen := make(map[[16]byte]struct{}, len(events))
	kept := events[:0]
	for _, ev := range events {
		if ev.hasUUID {
			if _, dup := seen[ev.uuid]; dup {
				continue
			}
			seen[ev.uuid] = struct{}{}
		}
		kept = append(kept, ev)
	}
	return kept, len(events) - len(kept)
}
