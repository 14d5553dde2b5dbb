package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxSafeInt is the largest integer magnitude a payload may hold: 2^53-1, the
// range every JSON implementation represents exactly.
const MaxSafeInt = 1<<53 - 1

// Source types (DESIGN.md section 3). Entries about no source use
// SourceTypeRegistrywatch.
const (
	SourceTypeRegistrywatch = "registrywatch"
	// ActorRegistrywatch is the actor of every entry registrywatch originates.
	ActorRegistrywatch = "registrywatch"
	// KindKeyRotated records a change of the signing key.
	KindKeyRotated = "key.rotated"
	// KindSnapshot records the digest of a source's new state.
	KindSnapshot = "snapshot"
)

var sourceTypes = map[string]bool{
	"mlflow": true, "databricks": true, "sagemaker": true, "wandb": true, SourceTypeRegistrywatch: true,
}

// errUnresolved is returned when a leaf is encoded with a batch-position
// reference and no resolver.
var errUnresolved = errors.New("unresolved in-batch reference")

// resolver maps a payload reference to the seq it designates.
type resolver func(Ref) (int64, error)

// resolveSeqOnly resolves by-seq references and refuses in-batch ones.
func resolveSeqOnly(r Ref) (int64, error) {
	if _, ok := r.IsInBatch(); ok {
		return 0, errUnresolved
	}
	return r.SeqValue(), nil
}

// EncodeLeaf returns the leaf bytes of e at sequence number seq: the RFC 8785
// (JCS) object of DESIGN.md section 3. Payload references must be by seq
// (Seq); Append resolves in-batch references itself.
func EncodeLeaf(e *Entry, seq int64) ([]byte, error) {
	var enc leafEncoder
	return enc.appendLeaf(nil, e, seq, resolveSeqOnly)
}

// leafEncoder appends leaves to a byte slice without reflection. Its scratch
// key slices are reused across calls; it is not safe for concurrent use.
type leafEncoder struct {
	keys [][]string // sorted-key scratch, one per nesting depth
}

// appendLeaf appends the leaf of e at seq to dst.
func (enc *leafEncoder) appendLeaf(dst []byte, e *Entry, seq int64, resolve resolver) ([]byte, error) {
	if e.Kind == "" {
		return dst, errors.New("entry has no kind")
	}
	if !sourceTypes[e.SourceType] {
		return dst, fmt.Errorf("entry %s: unknown source_type %q", e.Kind, e.SourceType)
	}
	if e.Actor == "" {
		return dst, fmt.Errorf("entry %s: empty actor", e.Kind)
	}
	if e.ObservedAt.IsZero() {
		return dst, fmt.Errorf("entry %s: zero observed_at", e.Kind)
	}
	if seq < 0 || seq > MaxSafeInt {
		return dst, fmt.Errorf("entry %s: seq %d out of range", e.Kind, seq)
	}
	from, to := e.OccurredFrom, e.OccurredTo
	if from.IsZero() {
		from = e.ObservedAt
	}
	if to.IsZero() {
		to = e.ObservedAt
	}
	var err error
	dst = append(dst, `{"actor":`...)
	dst = appendString(dst, e.Actor)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, e.Kind)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, e.Model)
	dst = append(dst, `,"model_id":`...)
	dst = appendString(dst, e.ModelID)
	dst = append(dst, `,"observed_at":`...)
	if dst, err = appendTime(dst, e.ObservedAt, false); err != nil {
		return dst, fmt.Errorf("entry %s: observed_at: %w", e.Kind, err)
	}
	dst = append(dst, `,"occurred_from":`...)
	if dst, err = appendTime(dst, from, false); err != nil {
		return dst, fmt.Errorf("entry %s: occurred_from: %w", e.Kind, err)
	}
	dst = append(dst, `,"occurred_to":`...)
	if dst, err = appendTime(dst, to, true); err != nil {
		return dst, fmt.Errorf("entry %s: occurred_to: %w", e.Kind, err)
	}
	dst = append(dst, `,"payload":`...)
	if dst, err = enc.appendObject(dst, e.Payload, 0, resolve); err != nil {
		return dst, fmt.Errorf("entry %s: payload%w", e.Kind, err)
	}
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source)
	dst = append(dst, `,"source_type":`...)
	dst = appendString(dst, e.SourceType)
	dst = append(dst, `,"version":`...)
	dst = appendString(dst, e.Version)
	return append(dst, '}'), nil
}

// pathErr prefixes a payload error with the key or index where it occurred;
// the messages read "payload.evidence[0].seq: ...".
type pathErr struct {
	elem string
	err  error
}

func (p *pathErr) Error() string {
	if inner, ok := p.err.(*pathErr); ok {
		return p.elem + inner.Error()
	}
	return p.elem + ": " + p.err.Error()
}

func (p *pathErr) Unwrap() error { return p.err }

func (enc *leafEncoder) appendObject(dst []byte, m map[string]any, depth int, resolve resolver) ([]byte, error) {
	if len(m) == 0 {
		return append(dst, "{}"...), nil
	}
	for len(enc.keys) <= depth {
		enc.keys = append(enc.keys, nil)
	}
	keys := enc.keys[depth][:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // byte order equals UTF-16 order for ASCII keys
	enc.keys[depth] = keys
	dst = append(dst, '{')
	for i, k := range keys {
		for j := 0; j < len(k); j++ {
			if k[j] >= utf8.RuneSelf {
				return dst, &pathErr{"." + k, errors.New("non-ASCII key")}
			}
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = enc.appendValue(dst, m[k], depth+1, resolve); err != nil {
			return dst, &pathErr{"." + k, err}
		}
	}
	return append(dst, '}'), nil
}

func (enc *leafEncoder) appendValue(dst []byte, v any, depth int, resolve resolver) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case string:
		return appendString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return appendInt(dst, int64(v))
	case int64:
		return appendInt(dst, v)
	case Ref:
		n, err := resolve(v)
		if err != nil {
			return dst, err
		}
		return appendInt(dst, n)
	case map[string]any:
		return enc.appendObject(dst, v, depth, resolve)
	case []string:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		return append(dst, ']'), nil
	case []int64:
		dst = append(dst, '[')
		for i, n := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendInt(dst, n); err != nil {
				return dst, &pathErr{"[" + strconv.Itoa(i) + "]", err}
			}
		}
		return append(dst, ']'), nil
	case []any:
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = enc.appendValue(dst, x, depth, resolve); err != nil {
				return dst, &pathErr{"[" + strconv.Itoa(i) + "]", err}
			}
		}
		return append(dst, ']'), nil
	case []map[string]any:
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = enc.appendObject(dst, x, depth, resolve); err != nil {
				return dst, &pathErr{"[" + strconv.Itoa(i) + "]", err}
			}
		}
		return append(dst, ']'), nil
	case nil:
		return dst, errors.New("null value (omit absent values)")
	default:
		return dst, fmt.Errorf("unsupported value type %T", v)
	}
}

func appendInt(dst []byte, n int64) ([]byte, error) {
	if n > MaxSafeInt || n < -MaxSafeInt {
		return dst, fmt.Errorf("integer %d beyond 2^53-1", n)
	}
	return strconv.AppendInt(dst, n, 10), nil
}

const hexDigits = "0123456789abcdef"

// plainASCII[c] is set for the ASCII bytes a JSON string holds unescaped.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string the way RFC 8785 requires: only
// '"', '\\' and control characters are escaped (\b \t \n \f \r short forms,
// others \u00xx in lowercase), everything else is literal UTF-8, and invalid
// UTF-8 is replaced by U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendTime appends t as a quoted RFC 3339 UTC time with milliseconds and a
// trailing Z, truncated to the millisecond, or rounded up when ceil is set.
func appendTime(dst []byte, t time.Time, ceil bool) ([]byte, error) {
	t = t.UTC()
	if ceil {
		if rem := t.Nanosecond() % int(time.Millisecond); rem != 0 {
			t = t.Add(time.Millisecond - time.Duration(rem))
		}
	}
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return dst, fmt.Errorf("year %d outside 0000-9999", year)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	dst = append(dst, '"')
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, ms, 3)
	return append(dst, 'Z', '"'), nil
}

func appendDigits(dst []byte, v, width int) []byte {
	var buf [4]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

// TimeLayout is the layout of every time in a leaf: RFC 3339, UTC,
// milliseconds, trailing Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime formats t the way leaves do (UTC, truncated to the millisecond).
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format(TimeLayout)
}

// FindingID returns the finding_id of a finding: the lowercase hex SHA-256 of
// the JCS array [source, model_id, kind, version, key], where key is the
// finding's triggering_seq (an int64) or, for coverage.late, the gap's start
// (a string).
func FindingID(source, modelID, kind, version string, key any) (string, error) {
	b := make([]byte, 0, 128)
	b = append(b, '[')
	for _, s := range [...]string{source, modelID, kind, version} {
		b = appendString(b, s)
		b = append(b, ',')
	}
	var err error
	switch k := key.(type) {
	case int64:
		if b, err = appendInt(b, k); err != nil {
			return "", err
		}
	case string:
		b = appendString(b, k)
	default:
		return "", fmt.Errorf("finding key of type %T", key)
	}
	b = append(b, ']')
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// leafEnvelope is the decoding shape of a leaf.
type leafEnvelope struct {
	Actor        string         `json:"actor"`
	Kind         string         `json:"kind"`
	Model        string         `json:"model"`
	ModelID      string         `json:"model_id"`
	ObservedAt   string         `json:"observed_at"`
	OccurredFrom string         `json:"occurred_from"`
	OccurredTo   string         `json:"occurred_to"`
	Payload      map[string]any `json:"payload"`
	Seq          json.Number    `json:"seq"`
	Source       string         `json:"source"`
	SourceType   string         `json:"source_type"`
	Version      string         `json:"version"`
}

// Decode parses leaf bytes back into an Entry and its seq. Payload numbers
// come back as int64, arrays as []any and objects as map[string]any.
// Re-encoding the result with EncodeLeaf gives the same bytes.
func Decode(leaf []byte) (Entry, int64, error) {
	var env leafEnvelope
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Entry{}, 0, fmt.Errorf("decode leaf: %w", err)
	}
	seq, err := env.Seq.Int64()
	if err != nil {
		return Entry{}, 0, fmt.Errorf("decode leaf: seq: %w", err)
	}
	e := Entry{
		Kind: env.Kind, Source: env.Source, SourceType: env.SourceType,
		Model: env.Model, ModelID: env.ModelID, Version: env.Version, Actor: env.Actor,
	}
	for _, f := range []struct {
		dst  *time.Time
		text string
	}{{&e.ObservedAt, env.ObservedAt}, {&e.OccurredFrom, env.OccurredFrom}, {&e.OccurredTo, env.OccurredTo}} {
		if *f.dst, err = time.Parse(TimeLayout, f.text); err != nil {
			return Entry{}, 0, fmt.Errorf("decode leaf %d: %w", seq, err)
		}
	}
	if env.Payload != nil {
		p, err := numbersToInt(env.Payload)
		if err != nil {
			return Entry{}, 0, fmt.Errorf("decode leaf %d: payload: %w", seq, err)
		}
		e.Payload = p.(map[string]any)
	}
	return e, seq, nil
}

// numbersToInt replaces every json.Number in v by its int64 value.
func numbersToInt(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return v.Int64()
	case map[string]any:
		for k, x := range v {
			y, err := numbersToInt(x)
			if err != nil {
				return nil, err
			}
			v[k] = y
		}
	case []any:
		for i, x := range v {
			y, err := numbersToInt(x)
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
	}
	return v, nil
}

// leafSeq parses the top-level seq of a leaf: the number after its last
// `,"seq":` (only source, source_type and version follow it, and none of
// them can hold a raw quote). ok is false when the leaf has none.
func leafSeq(leaf []byte) (seq int64, ok bool) {
	i := len(leaf) - len(seqMarker)
	for ; i >= 0; i-- { // the marker is some 60 bytes from the end
		if leaf[i] == ',' && leaf[i+1] == '"' && bytes.Equal(leaf[i:i+len(seqMarker)], seqMarker) {
			break
		}
	}
	if i < 0 {
		return 0, false
	}
	i += len(seqMarker)
	start := i
	for ; i < len(leaf) && leaf[i] >= '0' && leaf[i] <= '9'; i++ {
		if i-start > 16 {
			return 0, false
		}
		seq = seq*10 + int64(leaf[i]-'0')
	}
	return seq, i > start && i < len(leaf) && leaf[i] == ','
}

var seqMarker = []byte(`,"seq":`)

// leafKind returns the top-level kind of a leaf without parsing it: the
// string value after the actor, the first two keys of every leaf.
func leafKind(leaf []byte) []byte {
	const prefix, kindKey = `{"actor":"`, `,"kind":"`
	if !bytes.HasPrefix(leaf, []byte(prefix)) {
		return nil
	}
	i := stringEnd(leaf, len(prefix))
	if i < 0 || !bytes.HasPrefix(leaf[i+1:], []byte(kindKey)) {
		return nil
	}
	start := i + 1 + len(kindKey)
	end := stringEnd(leaf, start)
	if end < 0 {
		return nil
	}
	return leaf[start:end]
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i
		default:
			i++
		}
	}
	return -1
}
