package mlflow

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a strict pull parser over one JSON document, written for the
// registry's large answers: encoding/json's reflection spends several times
// the server's own cost on a page of 10,000 versions. It accepts exactly
// RFC 8259 JSON, matches object keys exactly, treats null as absent, and stops
// at the first error, which it keeps.
type scanner struct {
	b     []byte
	i     int
	depth int
	err   error
	// seen interns short strings (names, stages, tag keys), which repeat
	// across the rows of a page.
	seen map[string]string
	// ints and strs are slabs from which optional values are allocated.
	ints []int64
	strs []string
}

// slabSize returns the size of the next slab: small for small answers,
// growing to 1024 for large pages.
func slabSize(prev int) int { return min(max(2*prev, 8), 1024) }

func (s *scanner) newInt(v int64) *int64 {
	if len(s.ints) == cap(s.ints) {
		s.ints = make([]int64, 0, slabSize(cap(s.ints)))
	}
	s.ints = append(s.ints, v)
	return &s.ints[len(s.ints)-1]
}

func (s *scanner) newString(v string) *string {
	if len(s.strs) == cap(s.strs) {
		s.strs = make([]string, 0, slabSize(cap(s.strs)))
	}
	s.strs = append(s.strs, v)
	return &s.strs[len(s.strs)-1]
}

// strSpecial marks the bytes that end the fast scan of a string: the quote,
// the backslash, control characters and non-ASCII bytes.
var strSpecial = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80
	}
	return t
}()

const (
	maxInterned    = 4096
	maxInternedLen = 64
)

const maxDepth = 10000

func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = malformed("offset %d: %s", s.i, fmt.Sprintf(format, args...))
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// document parses the whole input as one object.
func (s *scanner) document(field func(key []byte)) error {
	if s.peek() != '{' {
		s.fail("expected an object")
		return s.err
	}
	s.object(field)
	if s.ws(); s.err == nil && s.i < len(s.b) {
		s.fail("data after the top-level value")
	}
	return s.err
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		s.literal("null")
		return true
	}
	return false
}

func (s *scanner) literal(word string) {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		s.fail("invalid literal")
		return
	}
	s.i += len(word)
}

// object calls field for each key, positioned at its value; field must
// consume the value (or leave it to skip by not moving).
func (s *scanner) object(field func(key []byte)) {
	if s.peek() != '{' {
		s.fail("expected an object")
		return
	}
	if s.depth++; s.depth > maxDepth {
		s.fail("nesting too deep")
		return
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		s.depth--
		return
	}
	for s.err == nil {
		if s.peek() != '"' {
			s.fail("expected a key")
			return
		}
		key, _ := s.rawStr()
		if s.peek() != ':' {
			s.fail("expected ':'")
			return
		}
		s.i++
		s.ws()
		at := s.i
		field(key)
		if s.err != nil {
			return
		}
		if s.i == at {
			s.skip()
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return
		default:
			s.fail("expected ',' or '}'")
		}
	}
}

// array calls elem for each element; elem must consume it.
func (s *scanner) array(elem func()) {
	if s.peek() != '[' {
		s.fail("expected an array")
		return
	}
	if s.depth++; s.depth > maxDepth {
		s.fail("nesting too deep")
		return
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		s.depth--
		return
	}
	for s.err == nil {
		s.ws()
		at := s.i
		elem()
		if s.err != nil {
			return
		}
		if s.i == at {
			s.skip()
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return
		default:
			s.fail("expected ',' or ']'")
		}
	}
}

// str parses a string. Invalid UTF-8 bytes become U+FFFD, one per byte, as
// encoding/json does.
func (s *scanner) str() string {
	b, ascii := s.rawStr()
	if !ascii && !utf8.Valid(b) {
		return fixUTF8(b)
	}
	return string(b)
}

func fixUTF8(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out.WriteString("\uFFFD")
		} else {
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return out.String()
}

// rawStr parses a string and returns its bytes (a slice of the input when
// it has no escapes) and whether they are all ASCII.
func (s *scanner) rawStr() ([]byte, bool) {
	if s.peek() != '"' {
		s.fail("expected a string")
		return nil, true
	}
	s.i++
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		for s.i < len(s.b) && !strSpecial[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], ascii
		case c == '\\':
			return s.slowStr(start), false
		case c < 0x20:
			s.fail("control character in a string")
			return nil, true
		}
		ascii = false
		s.i++
	}
	s.fail("unterminated string")
	return nil, true
}

// slowStr decodes a string with escapes; s.i is at the first backslash.
func (s *scanner) slowStr(start int) []byte {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out
		case c < 0x20:
			s.fail("control character in a string")
			return nil
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := s.hex4()
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					r2 = s.hex4()
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						s.i = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			s.fail("invalid escape")
			return nil
		}
		if s.err != nil {
			return nil
		}
	}
	s.fail("unterminated string")
	return nil
}

func (s *scanner) hex4() rune {
	if s.i+4 > len(s.b) {
		s.fail("short \\u escape")
		return 0
	}
	n, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		s.fail("invalid \\u escape")
		return 0
	}
	s.i += 4
	return rune(n)
}

// number consumes a JSON number and returns its text.
func (s *scanner) number() []byte {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		s.fail("expected a number")
		return nil
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			s.fail("invalid number")
			return nil
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			s.fail("invalid number")
			return nil
		}
	}
	return s.b[start:s.i]
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// int64 parses an integer number (null gives nil).
func (s *scanner) int64() *int64 {
	if s.null() {
		return nil
	}
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		s.fail("expected an integer")
		return nil
	}
	text := s.number()
	if s.err != nil {
		return nil
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		s.fail("%s is not an int64", text)
		return nil
	}
	return s.newInt(n)
}

// optString parses a string that may be null (nil).
func (s *scanner) optString() *string {
	if s.null() {
		return nil
	}
	return s.newString(s.str())
}

// setString parses a string into p; null leaves p unchanged (as
// encoding/json does).
func (s *scanner) setString(p *string) {
	if !s.null() {
		*p = s.str()
	}
}

// setShort is setString for strings likely to repeat (see short).
func (s *scanner) setShort(p *string) {
	if !s.null() {
		*p = s.short()
	}
}

// short parses a string that is likely to repeat (null gives ""), sharing
// one copy of each value.
func (s *scanner) short() string {
	if s.null() {
		return ""
	}
	b, ascii := s.rawStr()
	if !ascii || len(b) > maxInternedLen {
		if !ascii && !utf8.Valid(b) {
			return fixUTF8(b)
		}
		return string(b)
	}
	if v, ok := s.seen[string(b)]; ok {
		return v
	}
	v := string(b)
	if s.seen == nil {
		s.seen = map[string]string{}
	}
	if len(s.seen) < maxInterned {
		s.seen[v] = v
	}
	return v
}

// optShort is short for a string that may be null (nil).
func (s *scanner) optShort() *string {
	if s.null() {
		return nil
	}
	return s.newString(s.short())
}

// skip consumes any value, checking its syntax.
func (s *scanner) skip() {
	switch c := s.peek(); {
	case c == '{':
		s.object(func([]byte) {})
	case c == '[':
		s.array(func() {})
	case c == '"':
		s.str()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		s.number()
	default:
		s.fail("unexpected character")
	}
}
