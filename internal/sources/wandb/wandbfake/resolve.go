package wandbfake

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// Resolvers of the schema's object types over the in-memory registry. The
// server lock is held while they run.

// serverFeatures are the features ServerInfo reports.
var serverFeatures = []struct {
	name string
	on   bool
}{
	{"ARTIFACT_TAGS", true},
	{"ARTIFACT_REGISTRY_SEARCH", true},
	{"ARTIFACT_COLLECTIONS_FILTERING_SORTING", true},
	{"PROJECT_ARTIFACT_COLLECTION_MEMBERSHIP", true},
	{"ARTIFACT_MEMBERSHIP_IN_LINK_ARTIFACT_RESPONSE", true},
	{"AUTOMATION_EVENT_RUN_METRIC", false},
}

type queryRoot struct{}

func (queryRoot) typeName() string { return "Query" }

func (queryRoot) resolve(x *executor, field string, args map[string]any) (any, error) {
	s := x.s
	switch field {
	case "organization":
		name, _ := argString(args, "name")
		id, _ := argString(args, "id")
		for _, o := range s.orgs {
			if (name != "" && o.name == name) || (id != "" && o.id == id) {
				return o, nil
			}
		}
		return nil, nil
	case "entity":
		name, _ := argString(args, "name")
		if e, ok := s.entities[name]; ok {
			return e, nil
		}
		return nil, nil
	case "project":
		name, _ := argString(args, "name")
		en, _ := argString(args, "entityName")
		if e, ok := s.entities[en]; ok {
			if p := e.project(name); p != nil {
				return p, nil
			}
		}
		return nil, nil
	case "artifactCollection":
		id, _ := argString(args, "id")
		if c, ok := s.collections[id]; ok {
			return c, nil
		}
		return nil, nil
	case "artifact":
		id, _ := argString(args, "id")
		if a, ok := s.artifacts[id]; ok {
			return a, nil
		}
		return nil, nil
	case "user":
		name, _ := argString(args, "userName")
		id, _ := argString(args, "id")
		for _, u := range s.users {
			if (name != "" && u.username == name) || (id != "" && u.id == id) {
				return u, nil
			}
		}
		return nil, nil
	case "serverInfo":
		return serverInfo{}, nil
	}
	return nil, fieldError("Query", field)
}

type serverInfo struct{}

func (serverInfo) typeName() string { return "ServerInfo" }

func (serverInfo) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	if field != "features" {
		return nil, fieldError("ServerInfo", field)
	}
	out := make([]any, 0, len(serverFeatures))
	for _, f := range serverFeatures {
		out = append(out, serverFeature{f.name, f.on})
	}
	return out, nil
}

type serverFeature struct {
	name string
	on   bool
}

func (serverFeature) typeName() string { return "ServerFeature" }

func (f serverFeature) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "name":
		return f.name, nil
	case "isEnabled":
		return f.on, nil
	}
	return nil, fieldError("ServerFeature", field)
}

func (*org) typeName() string { return "Organization" }

func (o *org) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return o.id, nil
	case "name":
		return o.name, nil
	case "orgType":
		return "ORGANIZATION", nil
	case "orgEntity":
		return o.entity, nil
	case "teams":
		out := make([]any, 0, len(o.teams))
		for _, t := range o.teams {
			out = append(out, t)
		}
		return out, nil
	}
	return nil, fieldError("Organization", field)
}

func (*entity) typeName() string { return "Entity" }

func (e *entity) resolve(x *executor, field string, args map[string]any) (any, error) {
	switch field {
	case "id":
		return e.id, nil
	case "name":
		return e.name, nil
	case "isTeam":
		return e.isTeam, nil
	case "entityType":
		return nil, nil
	case "organization":
		if e.org == nil {
			return nil, nil
		}
		return e.org, nil
	case "user":
		return nil, nil // teams and organization entities have no user
	case "project":
		name, _ := argString(args, "name")
		if p := e.project(name); p != nil {
			return p, nil
		}
		return nil, nil
	case "projects":
		items := make([]any, 0, len(e.projects))
		for _, p := range e.projects {
			items = append(items, p)
		}
		return x.newConnection(args, "ProjectConnection", "ProjectEdge", items)
	case "artifactCollections":
		var items []any
		for _, p := range e.projects {
			items = append(items, p.collectionItems(argStrings(args, "collectionTypes"))...)
		}
		return x.newConnection(args, "ArtifactCollectionConnection", "ArtifactCollectionEdge", items)
	case "artifactMemberships":
		var ms []*membership
		for _, p := range e.projects {
			for _, c := range p.collections {
				if c.typename == typePortfolio {
					ms = append(ms, c.memberships...)
				}
			}
		}
		slices.SortFunc(ms, func(a, b *membership) int {
			if c := b.createdAt.Compare(a.createdAt); c != 0 {
				return c
			}
			return b.seq - a.seq
		})
		items := make([]any, 0, len(ms))
		for _, m := range ms {
			items = append(items, m)
		}
		return x.newConnection(args, "ArtifactCollectionMembershipConnection", "ArtifactCollectionMembershipEdge", items)
	case "protectedAliases":
		out := []any{}
		for _, a := range x.s.protected[e.name] {
			out = append(out, a)
		}
		return out, nil
	case "workflowsAdmins":
		out := []any{}
		for _, a := range x.s.admins[e.name] {
			out = append(out, x.s.users[a])
		}
		return out, nil
	}
	return nil, fieldError("Entity", field)
}

func (*user) typeName() string { return "User" }

func (u *user) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return u.id, nil
	case "name":
		return u.name, nil
	case "username":
		return u.username, nil
	case "email":
		return nullable(u.email), nil
	case "accountType":
		if u.service {
			return "SERVICE", nil
		}
		return "USER", nil
	case "organizations":
		return []any{}, nil
	}
	return nil, fieldError("User", field)
}

func (*project) typeName() string { return "Project" }

func (p *project) collectionItems(types []string) []any {
	out := make([]any, 0, len(p.collections))
	for _, c := range p.collections {
		if len(types) > 0 && !slices.Contains(types, collectionKind(c.typename)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func collectionKind(typename string) string {
	if typename == typeSequence {
		return "SEQUENCE"
	}
	return "PORTFOLIO"
}

func (p *project) artifactTypes() []string {
	if len(p.types) > 0 {
		return p.types
	}
	var out []string
	for _, c := range p.collections {
		if !slices.Contains(out, c.typ) {
			out = append(out, c.typ)
		}
	}
	return out
}

func (p *project) resolve(x *executor, field string, args map[string]any) (any, error) {
	switch field {
	case "id":
		return p.id, nil
	case "internalId":
		return p.internalID, nil
	case "name":
		return p.name, nil
	case "entityName":
		return p.entity.name, nil
	case "entity":
		return p.entity, nil
	case "description":
		return nullable(p.description), nil
	case "createdAt":
		return fmtTime(p.createdAt), nil
	case "updatedAt":
		return fmtTime(p.updatedAt), nil
	case "access":
		return nullable(p.access), nil
	case "allowAllArtifactTypesInRegistry":
		return len(p.types) == 0, nil
	case "artifactType":
		name, _ := argString(args, "name")
		if slices.Contains(p.artifactTypes(), name) {
			return artifactType{p: p, name: name}, nil
		}
		return nil, nil
	case "artifactTypes":
		var items []any
		for _, t := range p.artifactTypes() {
			items = append(items, artifactType{p: p, name: t})
		}
		return x.newConnection(args, "ArtifactTypeConnection", "ArtifactTypeEdge", items)
	case "artifactCollection":
		name, _ := argString(args, "name")
		if c := p.collectionByName(name); c != nil {
			return c, nil
		}
		return nil, nil
	case "artifactCollections":
		return x.newConnection(args, "ArtifactCollectionConnection", "ArtifactCollectionEdge",
			p.collectionItems(argStrings(args, "collectionTypes")))
	case "artifactCollectionMembership":
		name, _ := argString(args, "name")
		coll, alias, ok := strings.Cut(name, ":")
		if !ok {
			return nil, nil
		}
		if c := p.collectionByName(coll); c != nil {
			if m := c.membershipByAlias(alias); m != nil {
				return m, nil
			}
		}
		return nil, nil
	case "members":
		out := make([]any, 0, len(p.members))
		for _, m := range p.members {
			out = append(out, m)
		}
		return out, nil
	}
	return nil, fieldError("Project", field)
}

func (member) typeName() string { return "ProjectMember" }

func (m member) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return m.user.id, nil
	case "name":
		return m.user.name, nil
	case "username":
		return m.user.username, nil
	case "email":
		return nullable(m.user.email), nil
	case "role":
		return role(m.role), nil
	}
	return nil, fieldError("ProjectMember", field)
}

type role string

func (role) typeName() string { return "Role" }

func (r role) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	if field == "name" {
		return string(r), nil
	}
	return nil, fieldError("Role", field)
}

type artifactType struct {
	p    *project
	name string
}

func (artifactType) typeName() string { return "ArtifactType" }

func (t artifactType) resolve(_ *executor, field string, args map[string]any) (any, error) {
	switch field {
	case "id":
		return base64.StdEncoding.EncodeToString([]byte("ArtifactType:" + t.p.id + ":" + t.name)), nil
	case "name":
		return t.name, nil
	case "project":
		return t.p, nil
	case "artifactCollection":
		name, _ := argString(args, "name")
		if c := t.p.collectionByName(name); c != nil && c.typ == t.name {
			return c, nil
		}
		return nil, nil
	}
	return nil, fieldError("ArtifactType", field)
}

func (c *collection) typeName() string { return c.typename }

// membershipByAlias resolves "v<N>", "latest" or a custom alias.
func (c *collection) membershipByAlias(alias string) *membership {
	if alias == "latest" {
		return c.latest()
	}
	if versionAlias.MatchString(alias) {
		n, _ := strconv.Atoi(alias[1:])
		for _, m := range c.memberships {
			if m.index == n {
				return m
			}
		}
		return nil
	}
	return c.aliasHolder(alias)
}

func (c *collection) resolve(x *executor, field string, args map[string]any) (any, error) {
	switch field {
	case "id":
		return c.id, nil
	case "name":
		return c.name, nil
	case "description":
		return nullable(c.description), nil
	case "createdAt":
		return fmtTime(c.createdAt), nil
	case "updatedAt":
		return fmtTime(c.updatedAt), nil
	case "state":
		return c.state, nil
	case "project":
		return c.project, nil
	case "defaultArtifactType":
		return artifactType{p: c.project, name: c.typ}, nil
	case "latestArtifact":
		if m := c.latest(); m != nil {
			return m.artifact, nil
		}
		return nil, nil
	case "tags":
		items := make([]any, 0, len(c.tags))
		for _, t := range c.tags {
			items = append(items, t)
		}
		return x.newConnection(args, "TagConnection", "TagEdge", items)
	case "aliases":
		var items []any
		for _, m := range c.memberships {
			for _, a := range m.allAliases() {
				items = append(items, a)
			}
		}
		return x.newConnection(args, "ArtifactAliasConnection", "ArtifactAliasEdge", items)
	case "artifactMembership":
		name, _ := argString(args, "aliasName")
		if m := c.membershipByAlias(name); m != nil {
			return m, nil
		}
		return nil, nil
	case "artifactMemberships":
		return x.newConnection(args, "ArtifactCollectionMembershipConnection", "ArtifactCollectionMembershipEdge",
			c.newestFirst(func(m *membership) any { return m }))
	case "artifacts":
		conn, err := x.newConnection(args, "VersionedArtifactConnection", "VersionedArtifactEdge",
			c.newestFirst(func(m *membership) any { return m.artifact }))
		if err != nil {
			return nil, err
		}
		conn.version = func(node any) string {
			if m := c.membershipOf(node.(*artifact)); m != nil {
				return "v" + strconv.Itoa(m.index)
			}
			return ""
		}
		return conn, nil
	case "aliasActionHistory":
		alias, filter := argString(args, "alias")
		var items []any
		for i := len(c.history) - 1; i >= 0; i-- {
			if !filter || c.history[i].alias == alias {
				items = append(items, c.history[i])
			}
		}
		return x.newConnection(args, "ArtifactAliasActionConnection", "ArtifactAliasActionEdge", items)
	case "artifactCollectionActions":
		var items []any
		for i := len(c.actions) - 1; i >= 0; i-- {
			items = append(items, c.actions[i])
		}
		return x.newConnection(args, "ArtifactCollectionActionConnection", "ArtifactCollectionActionEdge", items)
	}
	return nil, fieldError(c.typename, field)
}

// newestFirst maps the collection's memberships, highest versionIndex first
// (the order W&B lists them in).
func (c *collection) newestFirst(f func(*membership) any) []any {
	out := make([]any, 0, len(c.memberships))
	for i := len(c.memberships) - 1; i >= 0; i-- {
		out = append(out, f(c.memberships[i]))
	}
	return out
}

func (*membership) typeName() string { return "ArtifactCollectionMembership" }

func (m *membership) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return m.id, nil
	case "versionIndex":
		return m.index, nil
	case "commitHash":
		return nullable(m.artifact.commitHash), nil
	case "createdAt":
		return fmtTime(m.createdAt), nil
	case "aliases":
		return aliasList(m.allAliases()), nil
	case "artifactCollection":
		return m.collection, nil
	case "artifact":
		return m.artifact, nil
	}
	return nil, fieldError("ArtifactCollectionMembership", field)
}

type aliasObj struct {
	id, name string
	m        *membership
}

func aliasList(as []aliasObj) []any {
	out := make([]any, 0, len(as))
	for _, a := range as {
		out = append(out, a)
	}
	return out
}

func (aliasObj) typeName() string { return "ArtifactAlias" }

func (a aliasObj) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return a.id, nil
	case "alias":
		return a.name, nil
	case "artifactCollectionName":
		return a.m.collection.name, nil
	case "artifactCollection":
		return a.m.collection, nil
	case "artifact":
		return a.m.artifact, nil
	}
	return nil, fieldError("ArtifactAlias", field)
}

func (*artifact) typeName() string { return "Artifact" }

// membershipIn returns the artifact's membership in a collection named name.
func (a *artifact) membershipIn(name string) *membership {
	for _, m := range a.memberships {
		if m.collection.name == name {
			return m
		}
	}
	return nil
}

func (a *artifact) resolve(x *executor, field string, args map[string]any) (any, error) {
	switch field {
	case "id":
		return a.id, nil
	case "digest":
		return a.digest, nil
	case "description":
		return nullable(a.description), nil
	case "commitHash":
		return nullable(a.commitHash), nil
	case "versionIndex":
		name, ok := argString(args, "artifactCollectionName")
		if !ok {
			name = a.sequence.name
		}
		if m := a.membershipIn(name); m != nil {
			return m.index, nil
		}
		return nil, nil
	case "aliases":
		name, filter := argString(args, "artifactCollectionName")
		var out []aliasObj
		for _, m := range a.memberships {
			if !filter || m.collection.name == name {
				out = append(out, m.allAliases()...)
			}
		}
		return aliasList(out), nil
	case "metadata":
		return nullable(a.metadata), nil
	case "state":
		return "COMMITTED", nil
	case "size":
		return a.size, nil
	case "fileCount":
		return a.fileCount, nil
	case "ttlDurationSeconds":
		return int64(-2), nil
	case "ttlIsInherited":
		return false, nil
	case "tags":
		out := make([]any, 0, len(a.tags))
		for _, t := range a.tags {
			out = append(out, t)
		}
		return out, nil
	case "historyStep":
		if a.historyStep == 0 {
			return nil, nil
		}
		return a.historyStep, nil
	case "artifactType":
		return artifactType{p: a.sequence.project, name: a.typ}, nil
	case "artifactSequence":
		return a.sequence, nil
	case "artifactMemberships":
		items := make([]any, 0, len(a.memberships))
		for _, m := range a.memberships {
			items = append(items, m)
		}
		return x.newConnection(args, "ArtifactCollectionMembershipConnection", "ArtifactCollectionMembershipEdge", items)
	case "createdAt":
		return fmtTime(a.createdAt), nil
	case "updatedAt":
		return fmtTime(a.updatedAt), nil
	case "createdBy":
		switch {
		case a.createdByRun != nil:
			return a.createdByRun, nil
		case a.createdByUser != nil:
			return a.createdByUser, nil
		}
		return nil, nil
	}
	return nil, fieldError("Artifact", field)
}

func (*run) typeName() string { return "Run" }

func (r *run) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return r.id, nil
	case "name":
		return r.name, nil
	case "displayName":
		return nullable(r.displayName), nil
	case "createdAt":
		return fmtTime(r.createdAt), nil
	case "user":
		if r.user == nil {
			return nil, nil
		}
		return r.user, nil
	case "project":
		return r.project, nil
	}
	return nil, fieldError("Run", field)
}

func (tag) typeName() string { return "Tag" }

func (t tag) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return t.id, nil
	case "name":
		return t.name, nil
	case "tagCategoryName":
		return "", nil
	case "attributes":
		return "{}", nil
	}
	return nil, fieldError("Tag", field)
}

func (*aliasAction) typeName() string { return "ArtifactAliasAction" }

func (a *aliasAction) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "actionType":
		return a.actionType, nil
	case "alias":
		return a.alias, nil
	case "artifactCollection":
		return a.collection, nil
	case "createdAt":
		return fmtTime(a.createdAt), nil
	case "sourceArtifact":
		return artifactOrNil(a.source), nil
	case "targetArtifact":
		return artifactOrNil(a.target), nil
	case "user":
		return userOrNil(a.user), nil
	}
	return nil, fieldError("ArtifactAliasAction", field)
}

func (*collectionAction) typeName() string { return "ArtifactCollectionAction" }

func (a *collectionAction) resolve(_ *executor, field string, _ map[string]any) (any, error) {
	switch field {
	case "id":
		return a.id, nil
	case "actionType":
		return a.actionType, nil
	case "artifact":
		return artifactOrNil(a.artifact), nil
	case "artifactCollection":
		return a.collection, nil
	case "createdAt":
		return fmtTime(a.createdAt), nil
	case "user":
		return userOrNil(a.user), nil
	}
	return nil, fieldError("ArtifactCollectionAction", field)
}

func artifactOrNil(a *artifact) any {
	if a == nil {
		return nil
	}
	return a
}

func userOrNil(u *user) any {
	if u == nil {
		return nil
	}
	return u
}
