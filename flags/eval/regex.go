package eval

import "strings"

// The service matches regex filters with fancy_regex, whose classes are
// Unicode-aware: \d is any decimal digit (Nd), \s any White_Space, \w any
// alphabetic, mark, digit, connector punctuation or join control, and \b a
// boundary between such word characters. Go's RE2 classes are ASCII-only, so
// unicodeRegex rewrites them into the Unicode classes RE2 can express.
const (
	uDigit = `\p{Nd}`
	// White_Space: the ASCII controls, U+0085, the line and paragraph
	// separators, and every space separator (Zs, which includes U+0020).
	uSpace = `\t\n\x{0B}\f\r\x{85}\x{2028}\x{2029}\p{Zs}`
	// Alphabetic is L, Nl and Other_Alphabetic; RE2 has no Other_Alphabetic,
	// whose code points are marks (M, here already) and, among symbols, the
	// circled letters Ⓐ-ⓩ.
	uWord = `\x{24B6}-\x{24E9}\x{200C}\x{200D}\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}`
)

// Each class ends with a \p{...} item, so a '-' after it in brackets stays a
// literal as it was.

// unicodeRegex rewrites \d \D \s \S \w \W into Unicode classes. What RE2
// cannot express is reported as asciiOnly, meaning the pattern matches as the
// service's would only on ASCII text (where both readings agree): \b and \B
// (RE2's word boundary is ASCII), a negated class inside brackets ([^\W] is
// fine, [a\W] is not), and patterns that turn Unicode off with the u flag.
func unicodeRegex(p string) (out string, asciiOnly bool) {
	if !strings.Contains(p, `\`) {
		return p, false
	}
	var b strings.Builder
	b.Grow(len(p) + 32)
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			e := p[i+1]
			i++
			switch e {
			case 'd', 'w', 's':
				cls := map[byte]string{'d': uDigit, 'w': uWord, 's': uSpace}[e]
				if inClass {
					b.WriteString(cls)
				} else {
					b.WriteString("[" + cls + "]")
				}
			case 'D', 'W', 'S':
				cls := map[byte]string{'D': uDigit, 'W': uWord, 'S': uSpace}[e]
				if inClass {
					asciiOnly = true
					b.WriteByte('\\')
					b.WriteByte(e)
				} else {
					b.WriteString("[^" + cls + "]")
				}
			case 'b', 'B':
				asciiOnly = asciiOnly || !inClass
				b.WriteByte('\\')
				b.WriteByte(e)
			case 'p', 'P':
				// \pL or \p{...}: copy through so the braces are not read as a class.
				b.WriteByte('\\')
				b.WriteByte(e)
				if i+1 < len(p) && p[i+1] == '{' {
					if j := strings.IndexByte(p[i+1:], '}'); j >= 0 {
						b.WriteString(p[i+1 : i+2+j])
						i += j + 1
					}
				}
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case c == '[' && inClass && strings.HasPrefix(p[i:], "[:"):
			// A POSIX class such as [:alpha:] inside brackets.
			if j := strings.Index(p[i:], ":]"); j >= 0 {
				b.WriteString(p[i : i+j+2])
				i += j + 1
				continue
			}
			b.WriteByte(c)
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	if strings.Contains(p, "(?-u") || strings.Contains(p, "-u)") || strings.Contains(p, "-u:") {
		return p, true
	}
	return b.String(), asciiOnly
}
