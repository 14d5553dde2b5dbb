package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file: where it is and which field it
// concerns. Parse and Load return every problem found, joined with
// errors.Join; errors.As finds the first.
type Error struct {
	File  string // the config file as named by the caller ("" when unnamed)
	Line  int    // 1-based line of the key, 0 when the field is not written in the file
	Field string // key path such as sources[1].schedule (list indexes from 0; "" for the whole file)
	Err   error
}

// Error formats the problem as "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// maxWalkSteps bounds the work of one walk, so that aliases of aliases cannot
// make a small file expensive to load.
const maxWalkSteps = 1 << 20

var (
	durationType = reflect.TypeFor[Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

// loader carries one Parse: the file, the environment, and what the walk over
// the YAML nodes learned (lines, keys written, values taken from the
// environment).
type loader struct {
	file   string // as named by the caller, for messages
	dir    string // absolute directory that relative paths resolve against
	getenv func(string) string
	errs   []error

	lines     map[string]int    // key path -> line of its key or list element
	present   map[string]bool   // key paths written in the file with a non-null value
	fromEnv   map[string]string // key path -> "${A}, ${B}" for values taken from the environment
	expanded  map[*yaml.Node]bool
	following map[*yaml.Node]bool // anchors being followed through an alias
	steps     int
}

func newLoader(filename string, getenv func(string) string) *loader {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	dir, err := filepathAbsDir(filename)
	if err != nil {
		dir = "."
	}
	return &loader{
		file:      filename,
		dir:       dir,
		getenv:    getenv,
		lines:     map[string]int{"": 1},
		present:   map[string]bool{},
		fromEnv:   map[string]string{},
		expanded:  map[*yaml.Node]bool{},
		following: map[*yaml.Node]bool{},
	}
}

// err returns every problem found so far in file order, or nil.
func (l *loader) err() error {
	slices.SortStableFunc(l.errs, func(a, b error) int {
		return cmp.Compare(a.(*Error).Line, b.(*Error).Line)
	})
	if len(l.errs) > maxProblems {
		more := len(l.errs) - maxProblems
		l.errs = append(l.errs[:maxProblems], &Error{File: l.file, Err: fmt.Errorf("%d more problems not shown", more)})
	}
	return errors.Join(l.errs...)
}

// maxProblems bounds how many problems one error reports.
const maxProblems = 50

// errorf records a problem with the field at path, at the line where the
// field (or its nearest written parent) is.
func (l *loader) errorf(path, format string, args ...any) {
	l.errAt(l.line(path), path, fmt.Errorf(format, args...))
}

func (l *loader) errAt(line int, path string, err error) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Field: path, Err: err})
}

// at returns the line of the key of path when it is written, else the line of
// node n.
func (l *loader) at(n *yaml.Node, path string) int {
	if line, ok := l.lines[path]; ok {
		return line
	}
	return n.Line
}

// line returns the line of path, or of its nearest parent written in the file.
func (l *loader) line(path string) int {
	for {
		if n, ok := l.lines[path]; ok {
			return n
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// parentPath strips the last element of a key path: "a.b" -> "a",
// "a[2]" -> "a", `a["k"]` -> "a".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

// show quotes a value for a message, unless it came from the environment: an
// environment variable may hold a secret put in the wrong key, so such values
// are named by their variables instead.
func (l *loader) show(path, value string) string {
	if vars, ok := l.fromEnv[path]; ok {
		return "(the value of " + vars + ")"
	}
	return strconv.Quote(value)
}

// invalid records that value at path is not a valid what; detail is left out
// when the value came from the environment, since it may quote the value.
func (l *loader) invalid(path, what, value string, detail error) {
	if _, env := l.fromEnv[path]; env || detail == nil {
		l.errorf(path, "invalid %s %s", what, l.show(path, value))
		return
	}
	l.errorf(path, "invalid %s %s: %v", what, l.show(path, value), detail)
}

var yamlLineErr = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErrors turns errors of the YAML library ("yaml: line 3: …", or a
// TypeError's list) into Errors naming the file and line.
func (l *loader) yamlErrors(err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		if sub := yamlLineErr.FindStringSubmatch(m); sub != nil {
			n, _ := strconv.Atoi(sub[1])
			l.errAt(n, "", errors.New(sub[2]))
			continue
		}
		l.errAt(0, "", errors.New(strings.TrimPrefix(m, "yaml: ")))
	}
}

// document parses data as one YAML document and returns its root node, or nil
// when the document is empty.
func (l *loader) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			l.yamlErrors(err)
		}
		return nil
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		l.errAt(more.Line, "", errors.New("only one YAML document is allowed (remove the second ---)"))
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

// walk checks node n against the Go type t before anything is decoded: every
// key must name a field (strict keys), every value must have the right shape,
// null values are dropped so the key keeps its default, and ${VAR} is expanded
// in scalar values. It records lines and written keys by key path.
func (l *loader) walk(n *yaml.Node, t reflect.Type, path string) {
	l.steps++
	if l.steps > maxWalkSteps {
		if l.steps == maxWalkSteps+1 {
			l.errAt(n.Line, path, errors.New("too many aliases: the document is too large to load"))
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || l.following[n.Alias] {
			l.errAt(n.Line, path, errors.New("alias refers to itself"))
			return
		}
		l.following[n.Alias] = true
		l.walk(n.Alias, t, path)
		delete(l.following, n.Alias)
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		l.scalar(n, t, path)
	case t.Kind() == reflect.Struct:
		l.mapping(n, t, path)
	case t.Kind() == reflect.Slice:
		if !l.wantKind(n, yaml.SequenceNode, path) {
			return
		}
		for i, e := range n.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			l.lines[ep] = e.Line
			l.present[ep] = true
			l.walk(e, t.Elem(), ep)
		}
	case t.Kind() == reflect.Map:
		l.mapping(n, t, path)
	default:
		l.scalar(n, t, path)
	}
}

// wantKind reports whether n has the wanted kind, recording a problem if not.
func (l *loader) wantKind(n *yaml.Node, want yaml.Kind, path string) bool {
	if n.Kind == want {
		return true
	}
	l.errAt(l.at(n, path), path, fmt.Errorf("must be %s, not %s", kindName(want), kindName(n.Kind)))
	return false
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping (key: value)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "a document"
	}
}

// mapping walks a YAML mapping that decodes into a struct (keys are field
// names) or a map (keys are free).
func (l *loader) mapping(n *yaml.Node, t reflect.Type, path string) {
	if !l.wantKind(n, yaml.MappingNode, path) {
		return
	}
	isStruct := t.Kind() == reflect.Struct
	var fields map[string]reflect.Type
	if isStruct {
		fields = map[string]reflect.Type{}
		for _, f := range fieldsOf(t) {
			fields[f.name] = f.typ
		}
	}
	seen := map[string]bool{}
	kept := make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			l.merge(v, t, path)
			kept = append(kept, k, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			l.errAt(k.Line, path, errors.New("keys must be single values"))
			continue
		}
		var kp string
		var vt reflect.Type
		if isStruct {
			kp = joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				l.errAt(k.Line, kp, errors.New("unknown key"+suggest(k.Value, fields)))
				continue
			}
			vt = ft
		} else {
			kp = path + "[" + strconv.Quote(k.Value) + "]"
			vt = t.Elem()
		}
		if seen[k.Value] {
			l.errAt(k.Line, kp, errors.New("key given twice"))
			continue
		}
		seen[k.Value] = true
		l.lines[kp] = k.Line
		if isStruct && (isNull(v) || vt == durationType && v.Kind == yaml.ScalarNode && v.Value == "") {
			continue // an empty value keeps the default
		}
		kept = append(kept, k, v)
		l.present[kp] = true
		l.walk(v, vt, kp)
	}
	n.Content = kept
}

// merge walks the value of a YAML merge key (<<: *anchor, or a list of them)
// as part of the mapping at path.
func (l *loader) merge(v *yaml.Node, t reflect.Type, path string) {
	if v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			l.walk(e, t, path)
		}
		return
	}
	l.walk(v, t, path)
}

// scalar expands ${VAR} in a single value and checks that it decodes into t.
func (l *loader) scalar(n *yaml.Node, t reflect.Type, path string) {
	if !l.wantKind(n, yaml.ScalarNode, path) {
		return
	}
	if !l.expanded[n] {
		l.expanded[n] = true
		v, vars, err := expand(n.Value, l.getenv)
		if err != nil {
			l.errAt(l.at(n, path), path, err)
			return
		}
		if v != n.Value {
			n.Value = v
			if t.Kind() == reflect.String {
				n.Tag = "!!str" // the value is text, whatever it looks like
			} else {
				n.Tag, n.Style = "", 0 // resolve the new text as a plain value
			}
		}
		if len(vars) > 0 {
			l.fromEnv[path] = "${" + strings.Join(vars, "}, ${") + "}"
		}
	}
	switch {
	case t == durationType:
		if _, err := parseDuration(n); err != nil {
			if _, env := l.fromEnv[path]; env {
				err = fmt.Errorf("invalid duration %s: write a number with a unit, such as 30s, 15m or 720h", l.show(path, ""))
			}
			l.errAt(l.at(n, path), path, err)
		}
	case t.Kind() == reflect.Int:
		var i int
		if n.Decode(&i) != nil {
			l.errAt(l.at(n, path), path, fmt.Errorf("must be a whole number, not %s", l.show(path, n.Value)))
		}
	case t.Kind() == reflect.Bool:
		var b bool
		if n.Decode(&b) != nil {
			l.errAt(l.at(n, path), path, fmt.Errorf("must be true or false, not %s", l.show(path, n.Value)))
		}
	}
}

// parseDuration reads a Duration from a scalar node; "" and null are zero.
func parseDuration(n *yaml.Node) (Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("a duration must be a single value such as 30s, 15m or 720h")
	}
	if n.Value == "" || isNull(n) {
		return 0, nil
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (write a number with a unit: 30s, 15m, 720h)", n.Value)
	}
	return Duration(d), nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// expand replaces ${NAME} with the value of environment variable NAME and $$
// with $; any other $ stays as written. An unset or empty variable is an error.
// It returns the names of the variables used.
func expand(s string, getenv func(string) string) (string, []string, error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var b strings.Builder
	var vars []string
	for i := 0; i < len(s); {
		switch {
		case s[i] != '$':
			b.WriteByte(s[i])
			i++
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", nil, errors.New("unterminated ${ (write $$ for a literal dollar sign)")
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", nil, fmt.Errorf("invalid variable name %q in ${…}: use letters, digits and _ (write $$ for a literal dollar sign)", name)
			}
			v := getenv(name)
			if v == "" {
				return "", nil, fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			vars = append(vars, name)
			i += 2 + end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), vars, nil
}

func validEnvName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !(i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// field is one YAML-visible field of a struct.
type field struct {
	name  string
	index int
	typ   reflect.Type
}

// fieldsOf lists the fields of struct type t that have a YAML key, in order.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		out = append(out, field{name: name, index: i, typ: f.Type})
	}
	return out
}

// suggest returns " (did you mean X?)" for the known key closest to key, when
// one is within two edits.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for name := range fields {
		if d := editDistance(strings.ToLower(key), name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
