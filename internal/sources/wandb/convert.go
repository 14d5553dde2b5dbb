package wandb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// Response data of the operations in queries.go.

type pageInfo struct {
	EndCursor   *string `json:"endCursor"`
	HasNextPage bool    `json:"hasNextPage"`
}

type edge[T any] struct {
	Node *T `json:"node"`
}

// nodes returns the non-null nodes of a page.
func nodes[T any](edges []edge[T]) []*T {
	out := make([]*T, 0, len(edges))
	for _, e := range edges {
		if e.Node != nil {
			out = append(out, e.Node)
		}
	}
	return out
}

type membershipConn struct {
	PageInfo pageInfo               `json:"pageInfo"`
	Edges    []edge[membershipNode] `json:"edges"`
}

type aliasActionConn struct {
	PageInfo pageInfo                `json:"pageInfo"`
	Edges    []edge[aliasActionNode] `json:"edges"`
}

type collectionsData struct {
	Project *struct {
		ArtifactCollections *struct {
			PageInfo pageInfo               `json:"pageInfo"`
			Edges    []edge[collectionNode] `json:"edges"`
		} `json:"artifactCollections"`
	} `json:"project"`
}

type membershipsData struct {
	ArtifactCollection *struct {
		ArtifactMemberships *membershipConn `json:"artifactMemberships"`
	} `json:"artifactCollection"`
}

type aliasActionsData struct {
	ArtifactCollection *struct {
		AliasActionHistory *aliasActionConn `json:"aliasActionHistory"`
	} `json:"artifactCollection"`
}

type collectionNode struct {
	Typename            string  `json:"__typename"`
	ID                  string  `json:"id"`
	Name                string  `json:"name"`
	Description         *string `json:"description"`
	CreatedAt           string  `json:"createdAt"`
	UpdatedAt           *string `json:"updatedAt"`
	State               string  `json:"state"`
	DefaultArtifactType *struct {
		Name string `json:"name"`
	} `json:"defaultArtifactType"`
	Tags *struct {
		Edges []edge[nameNode] `json:"edges"`
	} `json:"tags"`
	ArtifactMemberships *membershipConn  `json:"artifactMemberships"`
	AliasActionHistory  *aliasActionConn `json:"aliasActionHistory"`
}

type nameNode struct {
	Name string `json:"name"`
}

type membershipNode struct {
	ID           string  `json:"id"`
	VersionIndex *int64  `json:"versionIndex"`
	CreatedAt    *string `json:"createdAt"`
	Aliases      []struct {
		Alias string `json:"alias"`
	} `json:"aliases"`
	Artifact *artifactNode `json:"artifact"`
}

type artifactNode struct {
	ID               string     `json:"id"`
	Digest           string     `json:"digest"`
	Description      *string    `json:"description"`
	Metadata         *string    `json:"metadata"`
	State            string     `json:"state"`
	CreatedAt        *string    `json:"createdAt"`
	UpdatedAt        *string    `json:"updatedAt"`
	VersionIndex     *int64     `json:"versionIndex"`
	Tags             []nameNode `json:"tags"`
	ArtifactSequence *struct {
		Name    string `json:"name"`
		Project *struct {
			Name   string    `json:"name"`
			Entity *nameNode `json:"entity"`
		} `json:"project"`
	} `json:"artifactSequence"`
	CreatedBy *initiator `json:"createdBy"`
}

// initiator is who created an artifact: a Run (with its user) or a User.
type initiator struct {
	Typename string  `json:"__typename"`
	Name     *string `json:"name"`
	Username *string `json:"username"`
	User     *struct {
		Username *string `json:"username"`
	} `json:"user"`
}

// username is the creator's identity: the user's, or the run's user's.
func (i *initiator) username() string {
	switch {
	case i == nil:
	case i.Username != nil:
		return *i.Username
	case i.User != nil && i.User.Username != nil:
		return *i.User.Username
	}
	return ""
}

// raw writes the fields read, as JSON text in the query's order.
func (i *initiator) raw() string {
	if i == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(`{"__typename":` + quoteJSON(i.Typename))
	if i.Name != nil {
		b.WriteString(`,"name":` + quoteJSON(*i.Name))
	}
	if i.User != nil && i.User.Username != nil {
		b.WriteString(`,"user":{"username":` + quoteJSON(*i.User.Username) + `}`)
	}
	if i.Username != nil {
		b.WriteString(`,"username":` + quoteJSON(*i.Username))
	}
	b.WriteString("}")
	return b.String()
}

type aliasActionNode struct {
	ActionType string `json:"actionType"`
	Alias      string `json:"alias"`
	CreatedAt  string `json:"createdAt"`
	User       *struct {
		Username *string `json:"username"`
		Name     string  `json:"name"`
	} `json:"user"`
	SourceArtifact *struct {
		ID string `json:"id"`
	} `json:"sourceArtifact"`
	TargetArtifact *struct {
		ID string `json:"id"`
	} `json:"targetArtifact"`
}

// automaticAlias reports the aliases W&B maintains itself: latest and v<N>.
func automaticAlias(a string) bool {
	if a == "latest" {
		return true
	}
	if len(a) < 2 || a[0] != 'v' {
		return false
	}
	for _, c := range a[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// model turns one collection as read into a snapshot model, its tags,
// versions and their fields in canonical order (Snapshot.Sort).
func (c *Client) model(col *collection) (sources.Model, error) {
	m, err := c.unsortedModel(col)
	if err != nil {
		return m, err
	}
	one := sources.Snapshot{Models: []sources.Model{m}}
	one.Sort()
	return one.Models[0], nil
}

func (c *Client) unsortedModel(col *collection) (sources.Model, error) {
	n := col.node
	m := sources.Model{
		ID:          n.ID,
		Name:        col.project.String() + "/" + n.Name,
		Description: n.Description,
		CreatedAt:   formatTime(n.CreatedAt),
		URL:         c.collectionURL(col.project, n.Name, ""),
		Versions:    []sources.Version{},
	}
	if n.UpdatedAt != nil {
		m.UpdatedAt = formatTime(*n.UpdatedAt)
	}
	m.Raw = append(m.Raw, kvJSON("__typename", n.Typename), kvJSON("state", n.State))
	if n.DefaultArtifactType != nil {
		m.Raw = append(m.Raw, kvJSON("defaultArtifactType", n.DefaultArtifactType.Name))
	}
	if n.Tags != nil {
		m.Tags = tagKVs(nodes(n.Tags.Edges))
	}
	actors := actorFacts(n.ID, col.actions)
	// A membership read twice (rows shifting between pages) counts once; two
	// memberships claiming one versionIndex are an error.
	seen := map[int64]string{}
	for _, ms := range col.memberships {
		if ms.VersionIndex == nil {
			return m, fmt.Errorf("membership %s of collection %s has no versionIndex", ms.ID, n.ID)
		}
		idx := *ms.VersionIndex
		if id, ok := seen[idx]; ok {
			if id == ms.ID {
				continue
			}
			return m, fmt.Errorf("collection %s lists v%d twice", n.ID, idx)
		}
		seen[idx] = ms.ID
		m.Versions = append(m.Versions, c.version(col, ms, actors))
	}
	return m, nil
}

func (c *Client) version(col *collection, ms *membershipNode, actors map[string][]sources.Actor) sources.Version {
	idx := *ms.VersionIndex
	v := sources.Version{
		ID:        "v" + strconv.FormatInt(idx, 10),
		Order:     idx,
		Aliases:   []string{},
		CreatedAt: formatTimePtr(ms.CreatedAt),
		URL:       c.collectionURL(col.project, col.node.Name, "v"+strconv.FormatInt(idx, 10)),
	}
	seen := map[string]bool{}
	for _, a := range ms.Aliases {
		if a.Alias != "" && !automaticAlias(a.Alias) && !seen[a.Alias] {
			seen[a.Alias] = true
			v.Aliases = append(v.Aliases, a.Alias)
		}
	}
	v.Raw = append(v.Raw, kvJSON("membership.id", ms.ID), kvString("membership.createdAt", ms.CreatedAt))
	a := ms.Artifact
	if a == nil {
		return v
	}
	v.Digest = a.Digest
	v.Description = a.Description
	v.Status = a.State
	v.UpdatedAt = formatTimePtr(a.UpdatedAt)
	v.Creator = a.CreatedBy.username()
	v.Tags = tagKVs(sliceOfPtrs(a.Tags))
	if a.Metadata != nil {
		v.Metadata = flattenMetadata(*a.Metadata)
	}
	if s := a.ArtifactSequence; s != nil && s.Project != nil && s.Project.Entity != nil && a.VersionIndex != nil {
		v.Source = s.Project.Entity.Name + "/" + s.Project.Name + "/" + s.Name + ":v" + strconv.FormatInt(*a.VersionIndex, 10)
	}
	v.Actors = actors[a.ID]
	v.Raw = append(v.Raw,
		kvJSON("artifact.id", a.ID),
		kvString("artifact.createdAt", a.CreatedAt),
		kvString("artifact.updatedAt", a.UpdatedAt),
		sources.KV{Key: "artifact.createdBy", Value: a.CreatedBy.raw()},
	)
	if a.VersionIndex != nil {
		v.Raw = append(v.Raw, sources.KV{Key: "artifact.versionIndex", Value: strconv.FormatInt(*a.VersionIndex, 10)})
	}
	v.Raw = dropEmpty(v.Raw)
	return v
}

// collectionURL is the web page of a collection, or of one of its versions.
func (c *Client) collectionURL(p project, name, version string) string {
	sel := url.QueryEscape(p.String() + "/" + name)
	var u string
	if p.registry != "" {
		u = c.web + "/orgs/" + url.PathEscape(c.cfg.Organization) + "/registry/" + url.PathEscape(p.registry) + "?selectionPath=" + sel
	} else {
		u = c.web + "/" + url.PathEscape(p.entity) + "/registry/model?selectionPath=" + sel
	}
	if version != "" {
		u += "&view=membership&version=" + version
	}
	return u
}

// actorFacts maps the alias actions of a collection to actor facts, keyed by
// the ID of the artifact they concern: an action with a target artifact set
// the alias on it (a move included), one with only a source removed it.
func actorFacts(collectionID string, actions []*aliasActionNode) map[string][]sources.Actor {
	out := map[string][]sources.Actor{}
	seen := map[sources.Actor]bool{}
	for _, a := range actions {
		at := formatTime(a.CreatedAt)
		if at == "" || a.Alias == "" {
			continue
		}
		f := sources.Actor{
			Actor:    "unknown",
			At:       at,
			Key:      a.Alias,
			Raw:      a.ActionType,
			Evidence: "aliasActionHistory:" + collectionID + ":" + a.Alias + ":" + a.CreatedAt,
		}
		if u := a.User; u != nil {
			switch {
			case u.Username != nil && *u.Username != "":
				f.Actor = *u.Username
			case u.Name != "":
				f.Actor = u.Name
			}
		}
		var id string
		switch {
		case a.TargetArtifact != nil:
			f.Change, id = "alias.set", a.TargetArtifact.ID
		case a.SourceArtifact != nil:
			f.Change, id = "alias.removed", a.SourceArtifact.ID
		default:
			continue
		}
		if !seen[f] {
			seen[f] = true
			out[id] = append(out[id], f)
		}
	}
	return out
}

// flattenMetadata turns a JSON metadata document into sorted key/value pairs:
// nested objects become dotted keys, every other value keeps its JSON text as
// the registry wrote it (compacted); nulls are left out. A document that is
// not a JSON object is kept whole under the key "" (as JSON text, or as a JSON
// string when it is not JSON at all).
func flattenMetadata(doc string) []sources.KV {
	raw := json.RawMessage(strings.TrimSpace(doc))
	if !json.Valid(raw) {
		return []sources.KV{kvJSON("", doc)}
	}
	var out []sources.KV
	flatten("", raw, &out)
	sources.SortKV(out)
	return out
}

func flatten(prefix string, raw json.RawMessage, out *[]sources.KV) {
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			if len(obj) == 0 && prefix != "" {
				*out = append(*out, sources.KV{Key: prefix, Value: "{}"})
			}
			for k, v := range obj {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				flatten(key, v, out)
			}
			return
		}
	}
	if v := compact(raw); v != "" && v != "null" {
		*out = append(*out, sources.KV{Key: prefix, Value: v})
	}
}

// compact returns JSON text without insignificant whitespace.
func compact(raw json.RawMessage) string {
	if bytes.ContainsAny(raw, " \t\r\n") {
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return ""
		}
		return b.String()
	}
	return string(raw)
}

// kvJSON is a key with a string value written as JSON text.
func kvJSON(key, s string) sources.KV { return sources.KV{Key: key, Value: quoteJSON(s)} }

// quoteJSON writes s as a JSON string, without HTML escaping; invalid UTF-8
// becomes U+FFFD.
func quoteJSON(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return string(append(b, '"'))
}

// kvString keeps a registry string as JSON text; null gives "".
func kvString(key string, v *string) sources.KV {
	if v == nil {
		return sources.KV{Key: key}
	}
	return kvJSON(key, *v)
}

func dropEmpty(kvs []sources.KV) []sources.KV {
	out := kvs[:0]
	for _, kv := range kvs {
		if kv.Value != "" {
			out = append(out, kv)
		}
	}
	return out
}

func tagKVs(tags []*nameNode) []sources.KV {
	var out []sources.KV
	seen := map[string]bool{}
	for _, t := range tags {
		if t != nil && !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, sources.KV{Key: t.Name})
		}
	}
	return out
}

func sliceOfPtrs[T any](s []T) []*T {
	out := make([]*T, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}

// formatTime formats a registry time (RFC 3339) as a snapshot time; a time
// that does not parse, or lies outside years 0000-9999, gives "" (the raw
// fields keep the registry's text).
func formatTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return sources.FormatTime(t)
}

func formatTimePtr(s *string) string {
	if s == nil {
		return ""
	}
	return formatTime(*s)
}

// cloneModel returns a deep copy of m, so that snapshots never share memory.
// The copies of its small slices are carved from a few shared backing arrays
// (capacity-capped, so an append by a caller reallocates instead of
// overwriting a neighbour), which keeps an unchanged poll cheap.
func cloneModel(m *sources.Model) sources.Model {
	nkv, nstr, nact, nreq := len(m.Raw)+len(m.Tags), 0, 0, 0
	for i := range m.Versions {
		v := &m.Versions[i]
		nkv += len(v.Metadata) + len(v.Raw) + len(v.Tags)
		nstr += len(v.Aliases)
		nact += len(v.Actors)
		nreq += len(v.Requests)
	}
	kvs := make([]sources.KV, 0, nkv)
	strs := make([]string, 0, nstr)
	acts := make([]sources.Actor, 0, nact)
	reqs := make([]sources.Request, 0, nreq)
	out := *m
	out.Description = cloneStr(m.Description)
	out.Raw, kvs = carve(kvs, m.Raw)
	out.Tags, kvs = carve(kvs, m.Tags)
	out.Versions = make([]sources.Version, len(m.Versions))
	for i, v := range m.Versions {
		v.Description = cloneStr(v.Description)
		v.RunID = cloneStr(v.RunID)
		v.Aliases, strs = carve(strs, v.Aliases)
		v.Actors, acts = carve(acts, v.Actors)
		v.Requests, reqs = carve(reqs, v.Requests)
		v.Metadata, kvs = carve(kvs, v.Metadata)
		v.Raw, kvs = carve(kvs, v.Raw)
		v.Tags, kvs = carve(kvs, v.Tags)
		out.Versions[i] = v
	}
	return out
}

// carve copies src into the free capacity of arena and returns the copy
// (nil for nil, empty for empty) and the rest of the arena.
func carve[T any](arena, src []T) (dst, rest []T) {
	if src == nil {
		return nil, arena
	}
	n := len(arena)
	arena = append(arena, src...)
	return arena[n:len(arena):len(arena)], arena
}

func cloneStr(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}
