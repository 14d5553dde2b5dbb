package mlflowfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// EncodePageToken returns MLflow's page token for an offset: base64 of
// {"offset": N}.
func EncodePageToken(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`{"offset": %d}`, offset)))
}

func decodePageToken(tok string) (int, *Error) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return 0, invalid("Invalid page token, could not base64-decode")
	}
	var v struct {
		Offset *int `json:"offset"`
	}
	if json.Unmarshal(raw, &v) != nil || v.Offset == nil || *v.Offset < 0 {
		return 0, invalid("Invalid page token, decoded value=%s", raw)
	}
	return *v.Offset, nil
}

func maxResults(c *call, def, limit int) (int, *Error) {
	s, err := c.str("max_results")
	if err != nil {
		return 0, err
	}
	if s == "" {
		return def, nil
	}
	n, perr := strconv.Atoi(s)
	if perr != nil || n <= 0 || n > limit {
		return 0, invalid("Invalid value %q for parameter 'max_results' supplied:  Hint: Value was of type 'str'. See the API docs for more information about request parameters.", s)
	}
	return n, nil
}

// clause is one comparison of a search filter.
type clause struct {
	key   string // attribute name, or "tags.<key>"
	op    string // = != LIKE ILIKE IN
	value []string
}

var clauseRE = regexp.MustCompile(`(?is)^\s*(tags\.` + "`[^`]+`" + `|tags\."[^"]+"|[a-z_][a-z0-9_.]*)\s*(!=|=|ilike|like|in)\s*(.+?)\s*$`)

// parseFilter parses "key op value [AND key op value ...]" with the keys
// allowed by valid (tags.<key> is always allowed).
func parseFilter(filter string, valid []string) ([]clause, *Error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	var out []clause
	for _, part := range splitAnd(filter) {
		m := clauseRE.FindStringSubmatch(part)
		if m == nil {
			return nil, invalid("Invalid filter '%s'", filter)
		}
		key := m[1]
		if strings.HasPrefix(strings.ToLower(key), "tags.") {
			key = "tags." + strings.Trim(key[len("tags."):], "`\"")
		} else {
			key = strings.ToLower(key)
			ok := false
			for _, v := range valid {
				ok = ok || v == key
			}
			if !ok {
				return nil, invalid("Invalid attribute key '%s' specified. Valid keys are '{%s}'", m[1], quoteList(valid))
			}
		}
		c := clause{key: key, op: strings.ToUpper(m[2])}
		vals, err := parseValues(m[3], c.op == "IN")
		if err != nil {
			return nil, invalid("Invalid filter '%s': %s", filter, err.Message)
		}
		c.value = vals
		out = append(out, c)
	}
	return out, nil
}

func quoteList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return strings.Join(q, ", ")
}

// splitAnd splits on AND outside quotes.
func splitAnd(s string) []string {
	var parts []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
		case i+5 <= len(s) && strings.EqualFold(s[i:i+5], " and "):
			parts = append(parts, s[start:i])
			start = i + 5
			i += 4
		}
	}
	return append(parts, s[start:])
}

func parseValues(s string, list bool) ([]string, *Error) {
	s = strings.TrimSpace(s)
	if list {
		if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
			return nil, invalid("expected a list")
		}
		var out []string
		for _, p := range strings.Split(s[1:len(s)-1], ",") {
			v, err := parseValues(p, false)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		}
		return out, nil
	}
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return []string{s[1 : len(s)-1]}, nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return []string{s}, nil
	}
	return nil, invalid("value %s must be quoted", s)
}

func likeRE(pattern string, fold bool) *regexp.Regexp {
	var b strings.Builder
	if fold {
		b.WriteString("(?is)")
	} else {
		b.WriteString("(?s)")
	}
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (c clause) match(get func(key string) (string, bool)) bool {
	got, ok := get(c.key)
	if !ok {
		return c.op == "!=" && !strings.HasPrefix(c.key, "tags.")
	}
	switch c.op {
	case "=":
		return got == c.value[0]
	case "!=":
		return got != c.value[0]
	case "LIKE":
		return likeRE(c.value[0], false).MatchString(got)
	case "ILIKE":
		return likeRE(c.value[0], true).MatchString(got)
	case "IN":
		for _, v := range c.value {
			if got == v {
				return true
			}
		}
	}
	return false
}

func tagValue(tags []Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// orderKey is one ORDER BY term.
type orderKey struct {
	key  string
	desc bool
}

func parseOrderBy(items []string, valid []string, defaults []orderKey) ([]orderKey, *Error) {
	var out []orderKey
	seen := map[string]bool{}
	for _, item := range items {
		f := strings.Fields(item)
		if len(f) == 0 || len(f) > 2 {
			return nil, invalid("Invalid order_by clause '%s'.", item)
		}
		k := orderKey{key: strings.ToLower(f[0])}
		if k.key == "timestamp" {
			k.key = "last_updated_timestamp"
		}
		ok := false
		for _, v := range valid {
			ok = ok || v == k.key
		}
		if !ok {
			return nil, invalid("Invalid attribute key '%s' specified. Valid keys are '{%s}'", f[0], quoteList(valid))
		}
		if len(f) == 2 {
			switch strings.ToUpper(f[1]) {
			case "ASC":
			case "DESC":
				k.desc = true
			default:
				return nil, invalid("Invalid ordering key in order_by clause '%s'.", item)
			}
		}
		if !seen[k.key] {
			out = append(out, k)
			seen[k.key] = true
		}
	}
	for _, d := range defaults {
		if !seen[d.key] {
			out = append(out, d)
			seen[d.key] = true
		}
	}
	return out, nil
}

// compareBy orders two rows by the keys; value returns the sort value of a
// key for a row (strings compare as strings, numbers as numbers).
func compareBy(keys []orderKey, a, b func(key string) any) int {
	for _, k := range keys {
		var c int
		switch x := a(k.key).(type) {
		case string:
			c = strings.Compare(x, b(k.key).(string))
		case int64:
			y := b(k.key).(int64)
			switch {
			case x < y:
				c = -1
			case x > y:
				c = 1
			}
		}
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func page[T any](rows []T, offset, size int) ([]T, string) {
	if offset > len(rows) {
		offset = len(rows)
	}
	end := offset + size
	if end >= len(rows) {
		return rows[offset:], ""
	}
	return rows[offset:end], EncodePageToken(end)
}

func (s *Server) hSearchModels(c *call) (any, *Error) {
	size, err := maxResults(c, defaultModelsPage, MaxModelsPage)
	if err != nil {
		return nil, err
	}
	filter, _ := c.str("filter")
	clauses, err := parseFilter(filter, []string{"name"})
	if err != nil {
		return nil, err
	}
	orderBy, err := c.strings("order_by")
	if err != nil {
		return nil, err
	}
	keys, err := parseOrderBy(orderBy, []string{"name", "creation_timestamp", "last_updated_timestamp"},
		[]orderKey{{key: "name"}})
	if err != nil {
		return nil, err
	}
	tok, _ := c.str("page_token")
	offset, err := decodePageToken(tok)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []*model
	for _, m := range s.models {
		get := func(key string) (string, bool) {
			if t, ok := strings.CutPrefix(key, "tags."); ok {
				return tagValue(m.tags, t)
			}
			return m.name, true
		}
		if matchAll(clauses, get) {
			rows = append(rows, m)
		}
	}
	value := func(m *model) func(string) any {
		return func(key string) any {
			switch key {
			case "creation_timestamp":
				return m.created
			case "last_updated_timestamp":
				return m.updated
			}
			return m.name
		}
	}
	sort.Slice(rows, func(i, j int) bool { return compareBy(keys, value(rows[i]), value(rows[j])) < 0 })
	rows, next := page(rows, offset, size)
	out := map[string]any{}
	if len(rows) > 0 {
		list := make([]jsonModel, len(rows))
		for i, m := range rows {
			list[i] = s.modelJSON(m)
		}
		out["registered_models"] = list
	}
	if next != "" {
		out["next_page_token"] = next
	}
	return out, nil
}

func matchAll(clauses []clause, get func(string) (string, bool)) bool {
	for _, c := range clauses {
		if !c.match(get) {
			return false
		}
	}
	return true
}

type versionRow struct {
	m *model
	v *version
}

func (s *Server) hSearchVersions(c *call) (any, *Error) {
	limit := MaxVersionsPage
	if s.opts.Databricks {
		limit = MaxVersionsPageDatabricks
	}
	size, err := maxResults(c, limit, limit)
	if err != nil {
		return nil, err
	}
	filter, _ := c.str("filter")
	clauses, err := parseFilter(filter, []string{"name", "version_number", "run_id", "source_path"})
	if err != nil {
		return nil, err
	}
	orderBy, err := c.strings("order_by")
	if err != nil {
		return nil, err
	}
	keys, err := parseOrderBy(orderBy, []string{"name", "version_number", "creation_timestamp", "last_updated_timestamp"},
		[]orderKey{{key: "last_updated_timestamp", desc: true}, {key: "name"}, {key: "version_number", desc: true}})
	if err != nil {
		return nil, err
	}
	tok, _ := c.str("page_token")
	offset, err := decodePageToken(tok)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []versionRow
	for _, m := range s.models {
		if len(clauses) > 0 && clauses[0].key == "name" && clauses[0].op == "=" && m.name != clauses[0].value[0] {
			continue
		}
		for _, v := range m.versions {
			if v.deleted {
				continue
			}
			get := func(key string) (string, bool) {
				switch key {
				case "name":
					return m.name, true
				case "version_number":
					return strconv.FormatInt(v.number, 10), true
				case "run_id":
					return v.runID, true
				case "source_path":
					return v.source, true
				}
				return tagValue(v.tags, strings.TrimPrefix(key, "tags."))
			}
			if matchAll(clauses, get) {
				rows = append(rows, versionRow{m, v})
			}
		}
	}
	value := func(r versionRow) func(string) any {
		return func(key string) any {
			switch key {
			case "version_number":
				return r.v.number
			case "creation_timestamp":
				return r.v.created
			case "last_updated_timestamp":
				return r.v.updated
			}
			return r.m.name
		}
	}
	sort.Slice(rows, func(i, j int) bool { return compareBy(keys, value(rows[i]), value(rows[j])) < 0 })
	rows, next := page(rows, offset, size)
	out := map[string]any{}
	if len(rows) > 0 {
		list := make([]jsonVersion, len(rows))
		for i, r := range rows {
			list[i] = s.versionJSON(r.m, r.v, false)
		}
		out["model_versions"] = list
	}
	if next != "" {
		out["next_page_token"] = next
	}
	return out, nil
}
