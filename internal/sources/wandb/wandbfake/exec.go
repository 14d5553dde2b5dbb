package wandbfake

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// object is a GraphQL object value: its concrete type name and a resolver for
// its fields. Resolvers return nil, string, bool, int, int64, an object or a
// []any of those.
type object interface {
	typeName() string
	resolve(x *executor, field string, args map[string]any) (any, error)
}

// executor runs one validated operation and writes the JSON response.
type executor struct {
	s      *Server
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any

	buf       []byte
	path      []any
	errs      []byte
	emptyPage *Fault // applies to the first connection resolved
}

func (x *executor) run(op *ast.OperationDefinition) []byte {
	x.buf = append(x.buf, `{"data":`...)
	x.writeObject(queryRoot{}, op.SelectionSet)
	if len(x.errs) > 0 {
		x.buf = append(x.buf, `,"errors":[`...)
		x.buf = append(x.buf, x.errs...)
		x.buf = append(x.buf, ']')
	}
	return append(x.buf, '}')
}

type collectedField struct {
	key    string
	fields []*ast.Field
}

// collect gathers the fields selected on an object of type typ, honouring
// @include/@skip, fragment spreads and inline fragments, and merging fields
// with the same response key (GraphQL's CollectFields).
func (x *executor) collect(typ string, set ast.SelectionSet, out []collectedField) []collectedField {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !x.included(s.Directives) {
				continue
			}
			merged := false
			for i := range out {
				if out[i].key == s.Alias {
					out[i].fields = append(out[i].fields, s)
					merged = true
					break
				}
			}
			if !merged {
				out = append(out, collectedField{key: s.Alias, fields: []*ast.Field{s}})
			}
		case *ast.InlineFragment:
			if x.included(s.Directives) && x.applies(typ, s.TypeCondition) {
				out = x.collect(typ, s.SelectionSet, out)
			}
		case *ast.FragmentSpread:
			frag := x.doc.Fragments.ForName(s.Name)
			if frag != nil && x.included(s.Directives) && x.applies(typ, frag.TypeCondition) {
				out = x.collect(typ, frag.SelectionSet, out)
			}
		}
	}
	return out
}

func (x *executor) included(ds ast.DirectiveList) bool {
	for _, d := range ds {
		switch d.Name {
		case "include":
			if v, _ := d.ArgumentMap(x.vars)["if"].(bool); !v {
				return false
			}
		case "skip":
			if v, _ := d.ArgumentMap(x.vars)["if"].(bool); v {
				return false
			}
		}
	}
	return true
}

func (x *executor) applies(typ, cond string) bool {
	if cond == "" || cond == typ {
		return true
	}
	for _, d := range x.schema.PossibleTypes[cond] {
		if d.Name == typ {
			return true
		}
	}
	return false
}

func (x *executor) writeObject(o object, set ast.SelectionSet) {
	x.buf = append(x.buf, '{')
	for i, cf := range x.collect(o.typeName(), set, nil) {
		if i > 0 {
			x.buf = append(x.buf, ',')
		}
		x.buf = appendString(x.buf, cf.key)
		x.buf = append(x.buf, ':')
		f := cf.fields[0]
		if f.Name == "__typename" {
			x.buf = appendString(x.buf, o.typeName())
			continue
		}
		x.path = append(x.path, cf.key)
		v, err := o.resolve(x, f.Name, f.ArgumentMap(x.vars))
		if err != nil {
			x.addError(err)
			v = nil
		}
		sub := f.SelectionSet
		if len(cf.fields) > 1 {
			sub = nil
			for _, g := range cf.fields {
				sub = append(sub, g.SelectionSet...)
			}
		}
		x.writeValue(v, sub)
		x.path = x.path[:len(x.path)-1]
	}
	x.buf = append(x.buf, '}')
}

func (x *executor) writeValue(v any, set ast.SelectionSet) {
	switch v := v.(type) {
	case nil:
		x.buf = append(x.buf, "null"...)
	case string:
		x.buf = appendString(x.buf, v)
	case bool:
		x.buf = strconv.AppendBool(x.buf, v)
	case int:
		x.buf = strconv.AppendInt(x.buf, int64(v), 10)
	case int64:
		x.buf = strconv.AppendInt(x.buf, v, 10)
	case object:
		x.writeObject(v, set)
	case []any:
		x.buf = append(x.buf, '[')
		for i, e := range v {
			if i > 0 {
				x.buf = append(x.buf, ',')
			}
			x.path = append(x.path, i)
			x.writeValue(e, set)
			x.path = x.path[:len(x.path)-1]
		}
		x.buf = append(x.buf, ']')
	default:
		x.addError(fmt.Errorf("unsupported value %T", v))
		x.buf = append(x.buf, "null"...)
	}
}

func (x *executor) addError(err error) {
	if len(x.errs) > 0 {
		x.errs = append(x.errs, ',')
	}
	x.errs = append(x.errs, `{"message":`...)
	x.errs = appendString(x.errs, err.Error())
	x.errs = append(x.errs, `,"path":[`...)
	for i, p := range x.path {
		if i > 0 {
			x.errs = append(x.errs, ',')
		}
		switch p := p.(type) {
		case string:
			x.errs = appendString(x.errs, p)
		case int:
			x.errs = strconv.AppendInt(x.errs, int64(p), 10)
		}
	}
	x.errs = append(x.errs, "]}"...)
}

// ---- arguments ----

func argString(args map[string]any, name string) (string, bool) {
	s, ok := args[name].(string)
	return s, ok
}

func argInt(args map[string]any, name string) (int, bool) {
	switch v := args[name].(type) {
	case int:
		return v, true
	case int64:
		return int(v), true
	case float64:
		return int(v), true
	}
	return 0, false
}

func argStrings(args map[string]any, name string) []string {
	var out []string
	switch v := args[name].(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = v
	}
	return out
}

// ---- connections (Relay pagination) ----

func encodeCursor(offset int, tag string) string {
	s := "cursor:" + strconv.Itoa(offset)
	if tag != "" {
		s += ":" + tag
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

func decodeCursor(c string) (int, error) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, fmt.Errorf("invalid cursor %q", c)
	}
	parts := strings.Split(string(b), ":")
	if len(parts) < 2 || parts[0] != "cursor" {
		return 0, fmt.Errorf("invalid cursor %q", c)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid cursor %q", c)
	}
	return n, nil
}

// connection is one page of a Relay connection over items.
type connection struct {
	typ, edgeType string
	items         []any
	start, end    int
	hasNext       bool
	endCursor     any
	version       func(node any) string // VersionedArtifactEdge.version
}

func (x *executor) newConnection(args map[string]any, typ, edgeType string, items []any) (*connection, error) {
	c := &connection{typ: typ, edgeType: edgeType, items: items}
	after, hasAfter := argString(args, "after")
	if hasAfter {
		n, err := decodeCursor(after)
		if err != nil {
			return nil, err
		}
		c.start = min(n, len(items))
	}
	n := x.s.maxPage
	if first, ok := argInt(args, "first"); ok {
		if first < 0 {
			return nil, fmt.Errorf("first must not be negative")
		}
		n = min(first, n)
	}
	if f := x.emptyPage; f != nil {
		x.emptyPage = nil
		c.end, c.hasNext = c.start, true
		switch {
		case !f.StuckCursor:
			c.endCursor = encodeCursor(c.start, "empty")
		case hasAfter:
			c.endCursor = after
		}
		return c, nil
	}
	c.end = min(c.start+n, len(items))
	c.hasNext = c.end < len(items)
	if c.end > c.start {
		c.endCursor = encodeCursor(c.end, "")
	}
	return c, nil
}

func (c *connection) typeName() string { return c.typ }

func (c *connection) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "totalCount":
		return len(c.items), nil
	case "pageInfo":
		return pageInfo{c: c}, nil
	case "edges":
		out := make([]any, 0, c.end-c.start)
		for i := c.start; i < c.end; i++ {
			out = append(out, edge{c: c, i: i})
		}
		return out, nil
	}
	return nil, fieldError(c.typ, field)
}

type pageInfo struct{ c *connection }

func (pageInfo) typeName() string { return "PageInfo" }

func (p pageInfo) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "hasNextPage":
		return p.c.hasNext, nil
	case "hasPreviousPage":
		return p.c.start > 0, nil
	case "startCursor":
		if p.c.end > p.c.start {
			return encodeCursor(p.c.start+1, ""), nil
		}
		return nil, nil
	case "endCursor":
		return p.c.endCursor, nil
	}
	return nil, fieldError("PageInfo", field)
}

type edge struct {
	c *connection
	i int
}

func (e edge) typeName() string { return e.c.edgeType }

func (e edge) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "node":
		return e.c.items[e.i], nil
	case "cursor":
		return encodeCursor(e.i+1, ""), nil
	case "version":
		if e.c.version != nil {
			return e.c.version(e.c.items[e.i]), nil
		}
	}
	return nil, fieldError(e.c.edgeType, field)
}

func fieldError(typ, field string) error {
	return fmt.Errorf("wandbfake does not resolve %s.%s", typ, field)
}

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
