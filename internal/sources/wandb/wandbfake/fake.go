// Package wandbfake is an in-process Weights & Biases GraphQL server for tests
// and the demo. It parses every request with gqlparser against its own schema
// (schema.graphql, plus history.graphql while action history is served),
// resolves the query against an in-memory registry (organizations, entities,
// registries and projects, collections, artifacts, memberships with their
// versionIndex, aliases, creators, metadata, tags and action history) and
// answers as W&B does. Time comes from a clock.Clock, so a test decides every
// timestamp. Faults (401, 429, 5xx, GraphQL errors, cut bodies, empty pages)
// are injected with InjectFault.
package wandbfake

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// Action types the fake records in action history. W&B does not document its
// own strings, so these are placeholders (the ones the recorded fixtures use);
// clients MUST store them raw and never branch on them.
const (
	ActionAddAlias    = "EXAMPLE_ADD_ALIAS"
	ActionMoveAlias   = "EXAMPLE_MOVE_ALIAS"
	ActionRemoveAlias = "EXAMPLE_REMOVE_ALIAS"
	ActionLink        = "EXAMPLE_LINK"
	ActionUnlink      = "EXAMPLE_UNLINK"
)

// Collection type names, as W&B gives them in __typename.
const (
	typePortfolio = "ArtifactPortfolio"
	typeSequence  = "ArtifactSequence"
)

// RegistryPrefix is the project-name prefix of a W&B Registry.
const RegistryPrefix = "wandb-registry-"

var versionAlias = regexp.MustCompile(`^v[0-9]+$`)

// Server is the fake W&B GraphQL server. It is an http.Handler serving
// POST /graphql. All methods are safe for concurrent use.
type Server struct {
	mu  sync.Mutex
	clk clock.Clock

	apiKey        string
	actionHistory bool
	maxPage       int
	faults        []*Fault
	requests      int
	operations    map[string]int
	parsed        [2]map[string]*ast.QueryDocument

	nextID      int
	orgs        []*org
	entities    map[string]*entity
	users       map[string]*user
	collections map[string]*collection
	artifacts   map[string]*artifact
	protected   map[string][]string
	admins      map[string][]string
}

// New returns an empty fake on clk. It serves the action-history fields until
// SetActionHistory(false), caps pages at 1000 items, and accepts any API key
// until SetAPIKey.
func New(clk clock.Clock) *Server {
	return &Server{
		clk:           clk,
		actionHistory: true,
		maxPage:       1000,
		operations:    map[string]int{},
		nextID:        1000,
		entities:      map[string]*entity{},
		users:         map[string]*user{},
		collections:   map[string]*collection{},
		artifacts:     map[string]*artifact{},
		protected:     map[string][]string{},
		admins:        map[string][]string{},
	}
}

// SetAPIKey makes the server require HTTP basic auth "api:<key>"; "" accepts
// any request.
func (s *Server) SetAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// SetActionHistory switches the action-history fields
// (ArtifactCollection.aliasActionHistory and artifactCollectionActions) on or
// off. Off, a query selecting them fails validation with W&B's
// `Cannot query field "aliasActionHistory" ...` error. History is recorded
// either way.
func (s *Server) SetActionHistory(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actionHistory = on
}

// SetMaxPageSize caps the number of items of any connection page, whatever
// `first` asks for (as servers do). n <= 0 restores the default of 1000.
func (s *Server) SetMaxPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		n = 1000
	}
	s.maxPage = n
}

// Requests returns the number of GraphQL requests received, faulted ones
// included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Operations returns how many requests each operation name received.
func (s *Server) Operations() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.operations))
	for k, v := range s.operations {
		out[k] = v
	}
	return out
}

// User describes a W&B user or service account.
type User struct {
	Username string
	Name     string // defaults to Username
	Email    string // "" gives null
	Service  bool   // a service account (accountType SERVICE)
}

// AddUser registers a user; actors named in driving methods are created on
// first use when not added first.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.userLocked(u.Username)
	if u.Name != "" {
		x.name = u.Name
	}
	x.email = u.Email
	x.service = u.Service
}

// AddOrganization creates organization name whose registries belong to the
// entity orgEntity.
func (s *Server) AddOrganization(name, orgEntity string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgLocked(name) != nil {
		return fmt.Errorf("organization %q exists", name)
	}
	if _, ok := s.entities[orgEntity]; ok {
		return fmt.Errorf("entity %q exists", orgEntity)
	}
	o := &org{id: s.newID("Organization"), name: name}
	e := &entity{id: s.newID("Entity"), name: orgEntity, isTeam: true, org: o}
	o.entity = e
	s.orgs = append(s.orgs, o)
	s.entities[orgEntity] = e
	return nil
}

// AddTeam creates team entity name in organization orgName ("" for none).
func (s *Server) AddTeam(name, orgName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entities[name]; ok {
		return fmt.Errorf("entity %q exists", name)
	}
	e := &entity{id: s.newID("Entity"), name: name, isTeam: true}
	if orgName != "" {
		o := s.orgLocked(orgName)
		if o == nil {
			return fmt.Errorf("organization %q: %w", orgName, sources.ErrNotFound)
		}
		e.org = o
		o.teams = append(o.teams, e)
	}
	s.entities[name] = e
	return nil
}

// ProjectSpec describes a project or registry.
type ProjectSpec struct {
	Description string
	// Access is the registry visibility ("PRIVATE" or "RESTRICTED"); "" gives null.
	Access string
	// ArtifactTypes lists the types a registry accepts; empty allows all.
	ArtifactTypes []string
}

// CreateRegistry creates the W&B Registry `wandb-registry-<name>` of the
// organization's entity.
func (s *Server) CreateRegistry(orgName, name string, spec ProjectSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgLocked(orgName)
	if o == nil {
		return fmt.Errorf("organization %q: %w", orgName, sources.ErrNotFound)
	}
	_, err := s.createProjectLocked(o.entity, RegistryPrefix+name, spec)
	return err
}

// CreateProject creates project name of entity (a team's `model-registry`,
// or a training project holding source artifacts).
func (s *Server) CreateProject(entityName, name string, spec ProjectSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entities[entityName]
	if !ok {
		return fmt.Errorf("entity %q: %w", entityName, sources.ErrNotFound)
	}
	_, err := s.createProjectLocked(e, name, spec)
	return err
}

// AddRegistryMember adds a user to a project's members with a role ("admin",
// "member", "viewer", "restricted_viewer").
func (s *Server) AddRegistryMember(entityName, projectName, username, role string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(entityName, projectName)
	if err != nil {
		return err
	}
	p.members = append(p.members, member{user: s.userLocked(username), role: role})
	return nil
}

// SetProtectedAliases sets the legacy Model Registry's protected aliases of a
// team entity and the users who administer them.
func (s *Server) SetProtectedAliases(entityName string, aliases, admins []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.protected[entityName] = slices.Clone(aliases)
	s.admins[entityName] = slices.Clone(admins)
	for _, a := range admins {
		s.userLocked(a)
	}
}

// CollectionSpec describes a new collection.
type CollectionSpec struct {
	Description string
	// Type is the artifact type; default "model".
	Type string
	Tags []string
}

// CreateCollection creates a registry collection (an ArtifactPortfolio) in a
// project and returns its ID.
func (s *Server) CreateCollection(entityName, projectName, name string, spec CollectionSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(entityName, projectName)
	if err != nil {
		return "", err
	}
	if p.collectionByName(name) != nil {
		return "", fmt.Errorf("collection %s/%s/%s exists", entityName, projectName, name)
	}
	c := s.newCollectionLocked(p, typePortfolio, name, spec)
	return c.id, nil
}

// RenameCollection renames a collection; its ID stays.
func (s *Server) RenameCollection(collectionID, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return err
	}
	if o := c.project.collectionByName(newName); o != nil && o != c {
		return fmt.Errorf("collection %q exists", newName)
	}
	c.name = newName
	c.updatedAt = s.now()
	return nil
}

// SetCollectionDescription changes a collection's description ("" gives null).
func (s *Server) SetCollectionDescription(collectionID, description string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return err
	}
	c.description = description
	c.updatedAt = s.now()
	return nil
}

// SetCollectionTags replaces a collection's tags.
func (s *Server) SetCollectionTags(collectionID string, tags ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return err
	}
	c.tags = s.newTagsLocked(tags)
	c.updatedAt = s.now()
	return nil
}

// DeleteCollection removes a collection from its project.
func (s *Server) DeleteCollection(collectionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return err
	}
	c.state = "DELETED"
	c.project.collections = slices.DeleteFunc(c.project.collections, func(x *collection) bool { return x == c })
	delete(s.collections, collectionID)
	return nil
}

// Artifact describes a logged artifact version.
type Artifact struct {
	Digest      string
	Description string // "" gives null
	// Metadata is the artifact's metadata as JSON text ("" gives null).
	Metadata string
	Tags     []string
	// Type is the artifact type; default "model".
	Type string
	// Run is the name of the run that logged it; "" means the user in
	// CreatedBy created it directly (and both "" means no creator).
	Run string
	// RunDisplayName is the run's display name.
	RunDisplayName string
	// CreatedBy is the username of the run's user, or of the creating user.
	CreatedBy  string
	CommitHash string
	Size       int64
	FileCount  int64
	// HistoryStep is the run step it was logged at; 0 gives null.
	HistoryStep int64
}

// LogArtifact logs a new version of the source artifact sequence
// <entity>/<project>/<sequence> (created on first use) and returns the
// artifact's ID, as wandb.log_artifact does.
func (s *Server) LogArtifact(entityName, projectName, sequence string, a Artifact) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(entityName, projectName)
	if err != nil {
		return "", err
	}
	typ := a.Type
	if typ == "" {
		typ = "model"
	}
	seq := p.collectionByName(sequence)
	if seq == nil {
		seq = s.newCollectionLocked(p, typeSequence, sequence, CollectionSpec{Type: typ})
	} else if seq.typename != typeSequence {
		return "", fmt.Errorf("%s is not a source collection", sequence)
	}
	now := s.now()
	art := &artifact{
		id:          s.newID("Artifact"),
		digest:      a.Digest,
		description: a.Description,
		metadata:    a.Metadata,
		tags:        s.newTagsLocked(a.Tags),
		typ:         typ,
		commitHash:  a.CommitHash,
		size:        a.Size,
		fileCount:   a.FileCount,
		historyStep: a.HistoryStep,
		createdAt:   now,
		updatedAt:   now,
		sequence:    seq,
	}
	switch {
	case a.Run != "":
		r := &run{id: s.newID("Run"), name: a.Run, displayName: a.RunDisplayName, project: p, createdAt: now}
		if a.CreatedBy != "" {
			r.user = s.userLocked(a.CreatedBy)
		}
		art.createdByRun = r
	case a.CreatedBy != "":
		art.createdByUser = s.userLocked(a.CreatedBy)
	}
	s.artifacts[art.id] = art
	s.linkLocked(seq, art, now)
	return art.id, nil
}

// LinkVersion links an artifact into a collection as its next version and
// returns the membership's versionIndex. actor is recorded in the
// collection's action history.
func (s *Server) LinkVersion(collectionID, artifactID, actor string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return 0, err
	}
	if c.typename != typePortfolio {
		return 0, fmt.Errorf("collection %s is a source collection", collectionID)
	}
	art, ok := s.artifacts[artifactID]
	if !ok {
		return 0, fmt.Errorf("artifact %s: %w", artifactID, sources.ErrNotFound)
	}
	if m := c.membershipOf(art); m != nil {
		return m.index, nil
	}
	now := s.now()
	m := s.linkLocked(c, art, now)
	c.actions = append(c.actions, &collectionAction{
		id: s.newID("ArtifactCollectionAction"), actionType: ActionLink, artifact: art,
		collection: c, createdAt: now, user: s.userLocked(actor),
	})
	return m.index, nil
}

// Unlink removes version v<versionIndex> from a collection, with its aliases.
// Version indexes are never reused.
func (s *Server) Unlink(collectionID string, versionIndex int, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, m, err := s.membershipLocked(collectionID, versionIndex)
	if err != nil {
		return err
	}
	now := s.now()
	c.memberships = slices.DeleteFunc(c.memberships, func(x *membership) bool { return x == m })
	m.artifact.memberships = slices.DeleteFunc(m.artifact.memberships, func(x *membership) bool { return x == m })
	c.actions = append(c.actions, &collectionAction{
		id: s.newID("ArtifactCollectionAction"), actionType: ActionUnlink, artifact: m.artifact,
		collection: c, createdAt: now, user: s.userLocked(actor),
	})
	c.updatedAt = now
	return nil
}

// SetAlias points alias at version v<versionIndex> of a collection, moving it
// from the version that held it, and records the change with actor.
// The automatic aliases `latest` and `v<N>` cannot be set.
func (s *Server) SetAlias(collectionID string, versionIndex int, alias, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if alias == "" || alias == "latest" || versionAlias.MatchString(alias) {
		return fmt.Errorf("alias %q is reserved", alias)
	}
	c, m, err := s.membershipLocked(collectionID, versionIndex)
	if err != nil {
		return err
	}
	prev := c.aliasHolder(alias)
	if prev == m {
		return nil
	}
	now := s.now()
	act := &aliasAction{actionType: ActionAddAlias, alias: alias, collection: c, createdAt: now,
		target: m.artifact, user: s.userLocked(actor)}
	if prev != nil {
		prev.removeAlias(alias)
		prev.artifact.updatedAt = now
		act.actionType = ActionMoveAlias
		act.source = prev.artifact
	}
	m.aliases = append(m.aliases, &aliasRef{id: s.newID("ArtifactAlias"), name: alias})
	m.artifact.updatedAt = now
	c.updatedAt = now
	c.history = append(c.history, act)
	return nil
}

// RemoveAlias removes alias from whichever version of a collection holds it,
// and records the change with actor.
func (s *Server) RemoveAlias(collectionID, alias, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return err
	}
	m := c.aliasHolder(alias)
	if m == nil {
		return fmt.Errorf("alias %q: %w", alias, sources.ErrNotFound)
	}
	now := s.now()
	m.removeAlias(alias)
	m.artifact.updatedAt = now
	c.updatedAt = now
	c.history = append(c.history, &aliasAction{actionType: ActionRemoveAlias, alias: alias, collection: c,
		createdAt: now, source: m.artifact, user: s.userLocked(actor)})
	return nil
}

// SetArtifactTags replaces an artifact's tags.
func (s *Server) SetArtifactTags(artifactID string, tags ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[artifactID]
	if !ok {
		return fmt.Errorf("artifact %s: %w", artifactID, sources.ErrNotFound)
	}
	a.tags = s.newTagsLocked(tags)
	a.updatedAt = s.now()
	return nil
}

// SetArtifactDescription changes an artifact's description ("" gives null).
func (s *Server) SetArtifactDescription(artifactID, description string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.artifacts[artifactID]
	if !ok {
		return fmt.Errorf("artifact %s: %w", artifactID, sources.ErrNotFound)
	}
	a.description = description
	a.updatedAt = s.now()
	return nil
}

// CollectionID returns the ID of collection <entity>/<project>/<name>.
func (s *Server) CollectionID(entityName, projectName, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(entityName, projectName)
	if err != nil {
		return "", err
	}
	c := p.collectionByName(name)
	if c == nil {
		return "", fmt.Errorf("collection %s/%s/%s: %w", entityName, projectName, name, sources.ErrNotFound)
	}
	return c.id, nil
}

// ArtifactID returns the ID of the artifact linked as v<versionIndex> of a
// collection.
func (s *Server) ArtifactID(collectionID string, versionIndex int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m, err := s.membershipLocked(collectionID, versionIndex)
	if err != nil {
		return "", err
	}
	return m.artifact.id, nil
}

// MembershipID returns the ID of the membership v<versionIndex> of a
// collection.
func (s *Server) MembershipID(collectionID string, versionIndex int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m, err := s.membershipLocked(collectionID, versionIndex)
	if err != nil {
		return "", err
	}
	return m.id, nil
}

// ---- internal model ----

type org struct {
	id, name string
	entity   *entity
	teams    []*entity
}

type entity struct {
	id, name string
	isTeam   bool
	org      *org
	projects []*project
}

type user struct {
	id, username, name, email string
	service                   bool
}

type member struct {
	user *user
	role string
}

type project struct {
	id, internalID, name string
	entity               *entity
	description, access  string
	types                []string
	createdAt, updatedAt time.Time
	collections          []*collection // creation order, sequences included
	members              []member
}

type tag struct{ id, name string }

type collection struct {
	id, name, typename   string
	description, typ     string
	state                string
	createdAt, updatedAt time.Time
	project              *project
	tags                 []tag
	latestAliasID        string
	memberships          []*membership // link order (ascending index)
	nextIndex            int
	history              []*aliasAction      // oldest first
	actions              []*collectionAction // oldest first
}

type membership struct {
	id         string
	seq        int // creation order
	index      int
	vAliasID   string
	createdAt  time.Time
	collection *collection
	artifact   *artifact
	aliases    []*aliasRef // custom aliases, in the order set
}

type aliasRef struct{ id, name string }

type artifact struct {
	id, digest, description, metadata string
	typ, commitHash                   string
	tags                              []tag
	size, fileCount, historyStep      int64
	createdAt, updatedAt              time.Time
	sequence                          *collection
	memberships                       []*membership // sequence first, then links
	createdByRun                      *run
	createdByUser                     *user
}

type run struct {
	id, name, displayName string
	createdAt             time.Time
	user                  *user
	project               *project
}

type aliasAction struct {
	actionType, alias string
	collection        *collection
	createdAt         time.Time
	source, target    *artifact
	user              *user
}

type collectionAction struct {
	id, actionType string
	artifact       *artifact
	collection     *collection
	createdAt      time.Time
	user           *user
}

func (s *Server) now() time.Time { return s.clk.Now().UTC().Truncate(time.Second) }

func (s *Server) newID(typ string) string {
	s.nextID++
	return base64.StdEncoding.EncodeToString([]byte(typ + ":" + strconv.Itoa(s.nextID)))
}

func (s *Server) orgLocked(name string) *org {
	for _, o := range s.orgs {
		if o.name == name {
			return o
		}
	}
	return nil
}

func (s *Server) userLocked(username string) *user {
	if username == "" {
		return nil
	}
	u, ok := s.users[username]
	if !ok {
		u = &user{id: s.newID("User"), username: username, name: username}
		s.users[username] = u
	}
	return u
}

func (s *Server) newTagsLocked(names []string) []tag {
	out := make([]tag, 0, len(names))
	for _, n := range names {
		out = append(out, tag{id: s.newID("Tag"), name: n})
	}
	return out
}

func (s *Server) createProjectLocked(e *entity, name string, spec ProjectSpec) (*project, error) {
	if e.project(name) != nil {
		return nil, fmt.Errorf("project %s/%s exists", e.name, name)
	}
	now := s.now()
	p := &project{
		id: s.newID("Project"), name: name, entity: e, description: spec.Description,
		access: spec.Access, types: slices.Clone(spec.ArtifactTypes), createdAt: now, updatedAt: now,
	}
	p.internalID = base64.StdEncoding.EncodeToString([]byte("ProjectInternalId:" + strconv.Itoa(s.nextID)))
	e.projects = append(e.projects, p)
	return p, nil
}

func (s *Server) projectLocked(entityName, projectName string) (*project, error) {
	e, ok := s.entities[entityName]
	if !ok {
		return nil, fmt.Errorf("entity %q: %w", entityName, sources.ErrNotFound)
	}
	p := e.project(projectName)
	if p == nil {
		return nil, fmt.Errorf("project %s/%s: %w", entityName, projectName, sources.ErrNotFound)
	}
	return p, nil
}

func (s *Server) collectionLocked(id string) (*collection, error) {
	c, ok := s.collections[id]
	if !ok {
		return nil, fmt.Errorf("collection %s: %w", id, sources.ErrNotFound)
	}
	return c, nil
}

func (s *Server) membershipLocked(collectionID string, index int) (*collection, *membership, error) {
	c, err := s.collectionLocked(collectionID)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range c.memberships {
		if m.index == index {
			return c, m, nil
		}
	}
	return nil, nil, fmt.Errorf("collection %s version v%d: %w", collectionID, index, sources.ErrNotFound)
}

func (s *Server) newCollectionLocked(p *project, typename, name string, spec CollectionSpec) *collection {
	typ := spec.Type
	if typ == "" {
		typ = "model"
	}
	now := s.now()
	c := &collection{
		id: s.newID("ArtifactCollection"), name: name, typename: typename, description: spec.Description,
		typ: typ, state: "READY", createdAt: now, project: p, tags: s.newTagsLocked(spec.Tags),
		latestAliasID: s.newID("ArtifactAlias"),
	}
	p.collections = append(p.collections, c)
	s.collections[c.id] = c
	return c
}

func (s *Server) linkLocked(c *collection, a *artifact, now time.Time) *membership {
	m := &membership{
		id: s.newID("ArtifactCollectionMembership"), seq: s.nextID, index: c.nextIndex,
		vAliasID: s.newID("ArtifactAlias"), createdAt: now, collection: c, artifact: a,
	}
	c.nextIndex++
	c.memberships = append(c.memberships, m)
	c.updatedAt = now
	a.memberships = append(a.memberships, m)
	return m
}

func (e *entity) project(name string) *project {
	for _, p := range e.projects {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (p *project) collectionByName(name string) *collection {
	for _, c := range p.collections {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (c *collection) membershipOf(a *artifact) *membership {
	for _, m := range c.memberships {
		if m.artifact == a {
			return m
		}
	}
	return nil
}

func (c *collection) aliasHolder(alias string) *membership {
	for _, m := range c.memberships {
		for _, a := range m.aliases {
			if a.name == alias {
				return m
			}
		}
	}
	return nil
}

// latest returns the membership holding the automatic `latest` alias.
func (c *collection) latest() *membership {
	var best *membership
	for _, m := range c.memberships {
		if best == nil || m.index > best.index {
			best = m
		}
	}
	return best
}

func (m *membership) removeAlias(alias string) {
	m.aliases = slices.DeleteFunc(m.aliases, func(a *aliasRef) bool { return a.name == alias })
}

// allAliases returns the membership's aliases as W&B lists them: v<N>, then
// latest when it holds it, then the custom aliases.
func (m *membership) allAliases() []aliasObj {
	out := []aliasObj{{id: m.vAliasID, name: "v" + strconv.Itoa(m.index), m: m}}
	if m.collection.latest() == m {
		out = append(out, aliasObj{id: m.collection.latestAliasID, name: "latest", m: m})
	}
	for _, a := range m.aliases {
		out = append(out, aliasObj{id: a.id, name: a.name, m: m})
	}
	return out
}
