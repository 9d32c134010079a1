package eval

import (
	"crypto/sha1"
	"encoding/binary"
)

// longScale is 0xFFFFFFFFFFFFFFF: the largest 60-bit value. PostHog maps the
// first 15 hex digits of the SHA-1 (the first 8 bytes shifted right by 4) onto
// [0, 1) by dividing by it; every SDK and the Rust service agree on this.
const longScale = float64(0xFFFFFFFFFFFFFFF)

// flagHash returns PostHog's consistent hash of "<key>.<id><salt>", a float in
// [0, 1). The salt is "" for rollout and "variant" for variant selection. It
// does not allocate for inputs under 256 bytes.
func flagHash(key, id, salt string) float64 {
	var stack [256]byte
	buf := stack[:0]
	if len(key)+1+len(id)+len(salt) > len(stack) {
		buf = make([]byte, 0, len(key)+1+len(id)+len(salt))
	}
	buf = append(buf, key...)
	buf = append(buf, '.')
	buf = append(buf, id...)
	buf = append(buf, salt...)
	sum := sha1.Sum(buf)
	return float64(binary.BigEndian.Uint64(sum[:8])>>4) / longScale
}
