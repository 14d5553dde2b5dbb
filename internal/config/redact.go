package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf16"
)

// Redacted returns the configuration as plain values for a config.applied
// ledger entry: map[string]any, []any, string, int and bool only, every YAML
// key present, keyed by the YAML names (all ASCII). A map whose keys the user
// chooses (headers, header_files, channels, rollback_objectives) becomes a
// list of {key, value} objects sorted by key bytes, as the ledger writes
// registry-controlled maps; empty lists and maps are []. Secrets are left out: a set secret is "<secret>", an unset one "", and
// nothing else about its value is kept. Durations are their shortest form
// ("30m", "720h", "" when unset); schedules are the spec as written;
// cloudtrail.enabled is the effective value.
func (c Config) Redacted() map[string]any {
	c.Sources = slices.Clone(c.Sources)
	for i := range c.Sources {
		on := c.Sources[i].CloudTrail.On()
		c.Sources[i].CloudTrail.Enabled = &on
	}
	return plain(reflect.ValueOf(c)).(map[string]any)
}

// Digest returns the lowercase hex SHA-256 of the canonical JSON of
// Redacted(): RFC 8785 (JCS) for these value types, that is no whitespace,
// object keys sorted by their UTF-16 code units, strings with only the
// mandatory escapes (\" \\ \b \f \n \r \t, other control characters as
// \u00xx) and invalid UTF-8 replaced by U+FFFD, integers in decimal. Equal
// configurations give equal digests whatever their layout in the file, and a
// changed secret value does not change it.
func (c Config) Digest() string {
	sum := sha256.Sum256(canonicalJSON(c.Redacted()))
	return hex.EncodeToString(sum[:])
}

// LogValue logs the configuration without its secrets (as Redacted), with the
// file path and digest.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("path", c.Path), slog.String("digest", c.Digest())}
	attrs = append(attrs, logValue(c.Redacted()).Group()...)
	return slog.GroupValue(attrs...)
}

// plain converts a config value to the plain types Redacted promises.
func plain(v reflect.Value) any {
	switch v.Type() {
	case secretType:
		return v.Interface().(Secret).hidden()
	case durationType:
		return v.Interface().(Duration).String()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return plain(reflect.Zero(v.Type().Elem()))
		}
		return plain(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for _, f := range fieldsOf(v.Type()) {
			m[f.name] = plain(v.Field(f.index))
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plain(v.Index(i))
		}
		return out
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			keys = append(keys, it.Key().String())
		}
		slices.Sort(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = map[string]any{"key": k, "value": plain(v.MapIndex(reflect.ValueOf(k)))}
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int64:
		return int(v.Int())
	case reflect.Bool:
		return v.Bool()
	}
	panic(fmt.Sprintf("config: no plain form for %s", v.Type()))
}

// logValue turns a plain value into a slog value: maps and lists become
// groups (list elements keyed by index).
func logValue(v any) slog.Value {
	switch v := v.(type) {
	case map[string]any:
		attrs := make([]slog.Attr, 0, len(v))
		for _, k := range sortedKeys(v) {
			attrs = append(attrs, slog.Attr{Key: k, Value: logValue(v[k])})
		}
		return slog.GroupValue(attrs...)
	case []any:
		attrs := make([]slog.Attr, len(v))
		for i, e := range v {
			attrs[i] = slog.Attr{Key: strconv.Itoa(i), Value: logValue(e)}
		}
		return slog.GroupValue(attrs...)
	case string:
		return slog.StringValue(v)
	case int:
		return slog.IntValue(v)
	case bool:
		return slog.BoolValue(v)
	}
	return slog.AnyValue(v)
}

// canonicalJSON encodes a plain value (as Redacted returns) per RFC 8785.
func canonicalJSON(v any) []byte { return appendCanonical(nil, v) }

func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		})
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, v[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case bool:
		return strconv.AppendBool(b, v)
	}
	panic(fmt.Sprintf("config: no canonical JSON for %T", v))
}

// appendString writes s as an RFC 8785 JSON string.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s { // invalid UTF-8 comes out as U+FFFD
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			b = append(b, string(r)...)
		}
	}
	return append(b, '"')
}
