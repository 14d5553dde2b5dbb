// Package mlflowfake is an in-process fake of the MLflow model registry REST
// API (open source 2.x and 3.x, and the Databricks workspace registry), built
// from recorded answers of real servers. Timestamps are the time of its
// clock.Clock in epoch milliseconds, so tests and the demo control them.
//
// The registry can be driven over HTTP (the endpoints MLflow serves) or
// directly with Go methods; faults (error statuses, delays on the clock,
// connection resets, truncated or garbage bodies, HTML error pages, registry
// changes in the middle of a poll) can be injected per endpoint.
package mlflowfake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// Stages of a model version, as MLflow spells them.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
)

// Options configures a Server.
type Options struct {
	// Clock gives the timestamps and times injected delays; nil is clock.Real.
	Clock clock.Clock
	// Databricks serves the Databricks workspace registry: transition
	// requests, the databricks/ routes, user_id on models and versions,
	// and a page limit of 10000 versions.
	Databricks bool
	// MLflow3 answers like MLflow 3.5 where it differs from 2.17 (aliases in
	// get-latest-versions).
	MLflow3 bool
	// Tokens maps bearer tokens to user ids; BasicAuth maps user names to
	// passwords. When either is set, every request must authenticate.
	Tokens    map[string]string
	BasicAuth map[string]string
	// DefaultUser is the user id of unauthenticated callers and of Go-method
	// calls that name none (Databricks mode records it as user_id).
	DefaultUser string
	// PermissionLevel is the permission_level of Databricks answers
	// (default CAN_MANAGE).
	PermissionLevel string
	// Record keeps a log of the requests received (Requests).
	Record bool
}

// Tag is a key/value tag of a model or version.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ModelSpec describes a model to create.
type ModelSpec struct {
	Description string
	Tags        []Tag
	// User is the creator's user id (Databricks); "" is Options.DefaultUser.
	User string
}

// VersionSpec describes a version to create.
type VersionSpec struct {
	Source      string
	RunID       string
	Description string
	Tags        []Tag
	// User is the creator's user id (Databricks); "" is Options.DefaultUser.
	User string
}

type model struct {
	name        string
	id          string
	created     int64
	updated     int64
	description string
	user        string
	tags        []Tag
	aliases     []aliasRef
	versions    map[int64]*version
	maxVersion  int64
}

type aliasRef struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type version struct {
	number      int64
	created     int64
	updated     int64
	stage       string
	description string
	source      string
	runID       string
	status      string
	user        string
	tags        []Tag
	deleted     bool
}

type transitionRequest struct {
	id       string
	model    string
	version  int64
	from, to string
	user     string
	comment  string
	created  int64
}

// Server is the fake registry. Its methods are safe for concurrent use.
type Server struct {
	opts  Options
	clock clock.Clock

	mu       sync.Mutex
	models   map[string]*model
	requests []*transitionRequest
	seq      int
	faults   []*faultState
	log      []Request
	served   int64
	delaying atomic.Int32
}

// Request is one request the server received (Options.Record).
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
}

// Error is a registry error, as the REST API reports it.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", format, args...)
}

func modelNotFound(name string) *Error {
	return errorf(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=%s not found", name)
}

func versionNotFound(name string, v string) *Error {
	return errorf(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=%s, version=%s) not found", name, v)
}

// New returns an empty fake registry.
func New(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.DefaultUser == "" {
		opts.DefaultUser = "user@example.com"
	}
	if opts.PermissionLevel == "" {
		opts.PermissionLevel = "CAN_MANAGE"
	}
	return &Server{opts: opts, clock: opts.Clock, models: map[string]*model{}}
}

func (s *Server) now() int64 { return s.clock.Now().UnixMilli() }

func (s *Server) user(u string) string {
	if u == "" {
		return s.opts.DefaultUser
	}
	return u
}

// newID returns a deterministic 32-hex-digit id.
func (s *Server) newID(kind string) string {
	s.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", kind, s.seq)))
	return hex.EncodeToString(sum[:16])
}

func (s *Server) getModel(name string) (*model, *Error) {
	m, ok := s.models[name]
	if !ok {
		return nil, modelNotFound(name)
	}
	return m, nil
}

func parseVersion(v string) (int64, *Error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, invalid("Model version must be an integer, got '%s'", v)
	}
	return n, nil
}

func (s *Server) getVersion(name, v string) (*model, *version, *Error) {
	n, err := parseVersion(v)
	if err != nil {
		return nil, nil, err
	}
	m, ok := s.models[name]
	if !ok {
		return nil, nil, versionNotFound(name, v)
	}
	mv, ok := m.versions[n]
	if !ok || mv.deleted {
		return nil, nil, versionNotFound(name, v)
	}
	return m, mv, nil
}

func canonicalStage(stage string) (string, *Error) {
	for _, st := range []string{StageNone, StageStaging, StageProduction, StageArchived} {
		if strings.EqualFold(stage, st) {
			return st, nil
		}
	}
	return "", invalid("Invalid Model Version stage: %s. Value must be one of None, Staging, Production, Archived.", stage)
}

func setTag(tags []Tag, key, value string) []Tag {
	for i := range tags {
		if tags[i].Key == key {
			tags[i].Value = value
			return tags
		}
	}
	return append(tags, Tag{Key: key, Value: value})
}

func deleteTag(tags []Tag, key string) []Tag {
	for i := range tags {
		if tags[i].Key == key {
			return append(tags[:i:i], tags[i+1:]...)
		}
	}
	return tags
}

// liveVersions returns the model's versions that are not deleted, by number.
func (m *model) liveVersions() []*version {
	out := make([]*version, 0, len(m.versions))
	for _, v := range m.versions {
		if !v.deleted {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out
}

// latest returns the highest version of each stage, in the order in which the
// stages first appear among the versions (as MLflow's SQL store builds
// latest_versions).
func (m *model) latest(stages []string) []*version {
	var order []string
	best := map[string]*version{}
	for _, v := range m.liveVersions() {
		if len(stages) > 0 && !containsFold(stages, v.stage) {
			continue
		}
		if _, ok := best[v.stage]; !ok {
			order = append(order, v.stage)
		}
		best[v.stage] = v
	}
	out := make([]*version, 0, len(order))
	for _, st := range order {
		out = append(out, best[st])
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (m *model) aliasesOf(v int64) []string {
	var out []string
	for _, a := range m.aliases {
		if a.Version == strconv.FormatInt(v, 10) {
			out = append(out, a.Alias)
		}
	}
	return out
}

// CreateModel registers a model.
func (s *Server) CreateModel(name string, spec ModelSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.createModel(name, spec)
	return errOrNil(err)
}

// errOrNil avoids a typed nil in an error interface.
func errOrNil(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}

func (s *Server) createModel(name string, spec ModelSpec) (*model, *Error) {
	if name == "" {
		return nil, invalid("Missing value for required parameter 'name'. See the API docs for more information about request parameters.")
	}
	if _, ok := s.models[name]; ok {
		return nil, errorf(http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=%s) already exists.", name)
	}
	now := s.now()
	m := &model{name: name, id: s.newID("model"), created: now, updated: now, description: spec.Description,
		user: s.user(spec.User), versions: map[int64]*version{}}
	for _, t := range spec.Tags {
		m.tags = setTag(m.tags, t.Key, t.Value)
	}
	s.models[name] = m
	return m, nil
}

// CreateVersion adds a version (max+1, deleted versions included) to a model
// and returns its number.
func (s *Server) CreateVersion(name string, spec VersionSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.createVersion(name, spec)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v.number, 10), nil
}

func (s *Server) createVersion(name string, spec VersionSpec) (*model, *version, *Error) {
	m, err := s.getModel(name)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	m.maxVersion++
	v := &version{number: m.maxVersion, created: now, updated: now, stage: StageNone, description: spec.Description,
		source: spec.Source, runID: spec.RunID, status: "READY", user: s.user(spec.User)}
	for _, t := range spec.Tags {
		v.tags = setTag(v.tags, t.Key, t.Value)
	}
	m.versions[v.number] = v
	m.updated = now
	return m, v, nil
}

// TransitionStage moves a version to stage; with archiveExisting, the other
// versions in that stage move to Archived in the same instant (only allowed
// for Staging and Production, as MLflow enforces with an HTTP 500).
func (s *Server) TransitionStage(name, v, stage string, archiveExisting bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, err := s.transition(name, v, stage, archiveExisting)
	return errOrNil(err)
}

func (s *Server) transition(name, ver, stage string, archive bool) (*model, *version, *Error) {
	st, err := canonicalStage(stage)
	if err != nil {
		return nil, nil, err
	}
	if archive && st != StageStaging && st != StageProduction {
		return nil, nil, errorf(http.StatusInternalServerError, "INTERNAL_ERROR",
			"Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are ['Staging', 'Production']", st)
	}
	m, v, err := s.getVersion(name, ver)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if archive {
		for _, o := range m.liveVersions() {
			if o != v && o.stage == st {
				o.stage = StageArchived
				o.updated = now
			}
		}
	}
	v.stage = st
	v.updated = now
	m.updated = now
	return m, v, nil
}

// SetModelTag sets a model tag (no timestamp changes).
func (s *Server) SetModelTag(name, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.getModel(name)
	if err != nil {
		return err
	}
	m.tags = setTag(m.tags, key, value)
	return nil
}

// DeleteModelTag removes a model tag (no timestamp changes).
func (s *Server) DeleteModelTag(name, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.getModel(name)
	if err != nil {
		return err
	}
	m.tags = deleteTag(m.tags, key)
	return nil
}

// SetVersionTag sets a version tag (no timestamp changes).
func (s *Server) SetVersionTag(name, v, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mv, err := s.getVersion(name, v)
	if err != nil {
		return err
	}
	mv.tags = setTag(mv.tags, key, value)
	return nil
}

// DeleteVersionTag removes a version tag (no timestamp changes).
func (s *Server) DeleteVersionTag(name, v, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mv, err := s.getVersion(name, v)
	if err != nil {
		return err
	}
	mv.tags = deleteTag(mv.tags, key)
	return nil
}

// SetAlias points alias at a version, moving it if it exists (no timestamp
// changes).
func (s *Server) SetAlias(name, alias, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errOrNil(s.setAlias(name, alias, v))
}

func (s *Server) setAlias(name, alias, v string) *Error {
	if strings.EqualFold(alias, "latest") {
		return invalid("'latest' alias name (case insensitive) is reserved.")
	}
	if len(alias) > 1 && (alias[0] == 'v' || alias[0] == 'V') {
		if _, err := strconv.Atoi(alias[1:]); err == nil {
			return invalid("Version alias name '%s' is reserved.", alias)
		}
	}
	if alias == "" {
		return invalid("Missing value for required parameter 'alias'. See the API docs for more information about request parameters.")
	}
	m, mv, err := s.getVersion(name, v)
	if err != nil {
		return err
	}
	ref := strconv.FormatInt(mv.number, 10)
	for i := range m.aliases {
		if m.aliases[i].Alias == alias {
			m.aliases[i].Version = ref
			return nil
		}
	}
	m.aliases = append(m.aliases, aliasRef{Alias: alias, Version: ref})
	return nil
}

// DeleteAlias removes an alias (no timestamp changes).
func (s *Server) DeleteAlias(name, alias string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.getModel(name)
	if err != nil {
		return err
	}
	for i := range m.aliases {
		if m.aliases[i].Alias == alias {
			m.aliases = append(m.aliases[:i:i], m.aliases[i+1:]...)
			break
		}
	}
	return nil
}

// UpdateModelDescription sets a model's description and bumps its
// last_updated_timestamp.
func (s *Server) UpdateModelDescription(name, description string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.updateModel(name, description)
	return errOrNil(err)
}

func (s *Server) updateModel(name, description string) (*model, *Error) {
	m, err := s.getModel(name)
	if err != nil {
		return nil, err
	}
	m.description = description
	m.updated = s.now()
	return m, nil
}

// UpdateVersionDescription sets a version's description and bumps the
// version's last_updated_timestamp (not the model's).
func (s *Server) UpdateVersionDescription(name, v, description string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, err := s.updateVersion(name, v, description)
	return errOrNil(err)
}

func (s *Server) updateVersion(name, v, description string) (*model, *version, *Error) {
	m, mv, err := s.getVersion(name, v)
	if err != nil {
		return nil, nil, err
	}
	mv.description = description
	mv.updated = s.now()
	return m, mv, nil
}

// DeleteVersion soft-deletes a version: it disappears from every answer, its
// aliases are removed and the model's last_updated_timestamp is bumped.
func (s *Server) DeleteVersion(name, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errOrNil(s.deleteVersion(name, v))
}

func (s *Server) deleteVersion(name, v string) *Error {
	m, mv, err := s.getVersion(name, v)
	if err != nil {
		return err
	}
	now := s.now()
	mv.deleted = true
	mv.updated = now
	m.updated = now
	ref := strconv.FormatInt(mv.number, 10)
	kept := m.aliases[:0]
	for _, a := range m.aliases {
		if a.Version != ref {
			kept = append(kept, a)
		}
	}
	m.aliases = kept
	s.dropRequests(name, mv.number)
	return nil
}

// DeleteModel removes a model and all its versions.
func (s *Server) DeleteModel(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.getModel(name); err != nil {
		return err
	}
	delete(s.models, name)
	s.dropRequests(name, 0)
	return nil
}

// RenameModel renames a model; the old name answers 404 afterwards. The model
// and all its versions (deleted ones included) get a new last_updated_timestamp.
func (s *Server) RenameModel(name, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.rename(name, newName)
	return errOrNil(err)
}

func (s *Server) rename(name, newName string) (*model, *Error) {
	if newName == "" {
		return nil, invalid("Missing value for required parameter 'new_name'. See the API docs for more information about request parameters.")
	}
	m, err := s.getModel(name)
	if err != nil {
		return nil, err
	}
	if _, ok := s.models[newName]; ok && newName != name {
		return nil, errorf(http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=%s) already exists.", newName)
	}
	now := s.now()
	delete(s.models, name)
	m.name = newName
	m.updated = now
	for _, v := range m.versions {
		v.updated = now
	}
	s.models[newName] = m
	for _, r := range s.requests {
		if r.model == name {
			r.model = newName
		}
	}
	return m, nil
}

func (s *Server) dropRequests(name string, v int64) {
	kept := s.requests[:0]
	for _, r := range s.requests {
		if r.model == name && (v == 0 || r.version == v) {
			continue
		}
		kept = append(kept, r)
	}
	s.requests = kept
}

// CreateTransitionRequest opens a Databricks transition request of user for
// a version to stage and returns its id. It bumps no timestamp.
func (s *Server) CreateTransitionRequest(user, name, v, stage, comment string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.createRequest(user, name, v, stage, comment)
	if err != nil {
		return "", err
	}
	return r.id, nil
}

func (s *Server) createRequest(user, name, v, stage, comment string) (*transitionRequest, *Error) {
	st, err := canonicalStage(stage)
	if err != nil {
		return nil, err
	}
	_, mv, err := s.getVersion(name, v)
	if err != nil {
		return nil, err
	}
	r := &transitionRequest{id: s.newID("request"), model: name, version: mv.number, from: mv.stage, to: st,
		user: s.user(user), comment: comment, created: s.now()}
	s.requests = append(s.requests, r)
	return r, nil
}

// Activity is the record of an approved or rejected transition request.
type Activity struct {
	ID           string
	ActivityType string
	FromStage    string
	ToStage      string
	UserID       string
	Created      int64
	Comment      string
}

// ApproveTransitionRequest approves the open request of a version to stage
// (user is the approver): the request disappears and the version transitions.
func (s *Server) ApproveTransitionRequest(user, name, v, stage string, archiveExisting bool, comment string) (Activity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.closeRequest(user, name, v, stage, archiveExisting, comment, true)
	return a, errOrNil(err)
}

// RejectTransitionRequest rejects the open request of a version to stage:
// the request disappears and nothing else changes.
func (s *Server) RejectTransitionRequest(user, name, v, stage, comment string) (Activity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.closeRequest(user, name, v, stage, false, comment, false)
	return a, errOrNil(err)
}

func (s *Server) closeRequest(user, name, v, stage string, archive bool, comment string, approve bool) (Activity, *Error) {
	st, err := canonicalStage(stage)
	if err != nil {
		return Activity{}, err
	}
	_, mv, err := s.getVersion(name, v)
	if err != nil {
		return Activity{}, err
	}
	idx := -1
	for i, r := range s.requests {
		if r.model == name && r.version == mv.number && r.to == st {
			idx = i
			break
		}
	}
	if idx < 0 {
		return Activity{}, errorf(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST",
			"Transition request to %s for model %s version %s not found", st, name, v)
	}
	from := mv.stage
	if approve {
		if _, _, err := s.transition(name, v, st, archive); err != nil {
			return Activity{}, err
		}
	}
	s.requests = append(s.requests[:idx:idx], s.requests[idx+1:]...)
	kind := "REJECTED_REQUEST"
	if approve {
		kind = "APPROVED_REQUEST"
	}
	return Activity{ID: s.newID("activity"), ActivityType: kind, FromStage: from, ToStage: st,
		UserID: s.user(user), Created: s.now(), Comment: comment}, nil
}

// Served returns the number of HTTP requests served so far.
func (s *Server) Served() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Requests returns the requests received so far (Options.Record).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}
