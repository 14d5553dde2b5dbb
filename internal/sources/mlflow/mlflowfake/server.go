package mlflowfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
)

// HTML pages of the MLflow 2.x/3.x servers (Flask) for unknown routes and
// wrong methods.
const (
	notFoundPage         = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n"
	methodNotAllowedPage = "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"
)

// Version and model page limits of the search endpoints.
const (
	MaxModelsPage             = 1000
	MaxVersionsPage           = 200000
	MaxVersionsPageDatabricks = 10000
	defaultModelsPage         = 100
)

type handler func(s *Server, c *call) (any, *Error)

type route struct {
	method     string
	handle     handler
	databricks bool
}

var routes = map[string][]route{
	"/api/2.0/mlflow/registered-models/create":              {{method: http.MethodPost, handle: (*Server).hCreateModel}},
	"/api/2.0/mlflow/registered-models/get":                 {{method: http.MethodGet, handle: (*Server).hGetModel}},
	"/api/2.0/mlflow/registered-models/update":              {{method: http.MethodPatch, handle: (*Server).hUpdateModel}},
	"/api/2.0/mlflow/registered-models/rename":              {{method: http.MethodPost, handle: (*Server).hRenameModel}},
	"/api/2.0/mlflow/registered-models/delete":              {{method: http.MethodDelete, handle: (*Server).hDeleteModel}},
	"/api/2.0/mlflow/registered-models/search":              {{method: http.MethodGet, handle: (*Server).hSearchModels}},
	"/api/2.0/mlflow/registered-models/set-tag":             {{method: http.MethodPost, handle: (*Server).hSetModelTag}},
	"/api/2.0/mlflow/registered-models/delete-tag":          {{method: http.MethodDelete, handle: (*Server).hDeleteModelTag}},
	"/api/2.0/mlflow/registered-models/get-latest-versions": {{method: http.MethodGet, handle: (*Server).hLatest}, {method: http.MethodPost, handle: (*Server).hLatest}},
	"/api/2.0/mlflow/registered-models/alias": {
		{method: http.MethodPost, handle: (*Server).hSetAlias},
		{method: http.MethodDelete, handle: (*Server).hDeleteAlias},
		{method: http.MethodGet, handle: (*Server).hGetByAlias},
	},
	"/api/2.0/mlflow/model-versions/create":           {{method: http.MethodPost, handle: (*Server).hCreateVersion}},
	"/api/2.0/mlflow/model-versions/get":              {{method: http.MethodGet, handle: (*Server).hGetVersion}},
	"/api/2.0/mlflow/model-versions/update":           {{method: http.MethodPatch, handle: (*Server).hUpdateVersion}},
	"/api/2.0/mlflow/model-versions/delete":           {{method: http.MethodDelete, handle: (*Server).hDeleteVersion}},
	"/api/2.0/mlflow/model-versions/search":           {{method: http.MethodGet, handle: (*Server).hSearchVersions}},
	"/api/2.0/mlflow/model-versions/transition-stage": {{method: http.MethodPost, handle: (*Server).hTransition}},
	"/api/2.0/mlflow/model-versions/set-tag":          {{method: http.MethodPost, handle: (*Server).hSetVersionTag}},
	"/api/2.0/mlflow/model-versions/delete-tag":       {{method: http.MethodDelete, handle: (*Server).hDeleteVersionTag}},
	"/api/2.0/mlflow/model-versions/get-download-uri": {{method: http.MethodGet, handle: (*Server).hDownloadURI}},

	"/api/2.0/mlflow/transition-requests/create":                 {{method: http.MethodPost, handle: (*Server).hCreateRequest, databricks: true}},
	"/api/2.0/mlflow/transition-requests/approve":                {{method: http.MethodPost, handle: (*Server).hApproveRequest, databricks: true}},
	"/api/2.0/mlflow/transition-requests/reject":                 {{method: http.MethodPost, handle: (*Server).hRejectRequest, databricks: true}},
	"/api/2.0/mlflow/transition-requests/list":                   {{method: http.MethodGet, handle: (*Server).hListRequests, databricks: true}},
	"/api/2.0/mlflow/databricks/registered-models/get":           {{method: http.MethodGet, handle: (*Server).hGetModelDatabricks, databricks: true}},
	"/api/2.0/mlflow/databricks/model-versions/transition-stage": {{method: http.MethodPost, handle: (*Server).hTransitionDatabricks, databricks: true}},
}

// call is one decoded request: query parameters for GET, the JSON body
// otherwise.
type call struct {
	r     *http.Request
	query map[string][]string
	body  map[string]any
	user  string
}

func (c *call) has(name string) bool {
	if c.body != nil {
		_, ok := c.body[name]
		return ok
	}
	_, ok := c.query[name]
	return ok
}

// str returns a string parameter ("" when absent).
func (c *call) str(name string) (string, *Error) {
	if c.body != nil {
		v, ok := c.body[name]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", badType(name, v)
		}
		return s, nil
	}
	if vs := c.query[name]; len(vs) > 0 {
		return vs[0], nil
	}
	return "", nil
}

func (c *call) required(name string) (string, *Error) {
	v, err := c.str(name)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", invalid("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", name)
	}
	return v, nil
}

func (c *call) boolean(name string) (bool, *Error) {
	if c.body == nil {
		v := c.query[name]
		if len(v) == 0 {
			return false, nil
		}
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return false, badType(name, v[0])
		}
		return b, nil
	}
	v, ok := c.body[name]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, badType(name, v)
	}
	return b, nil
}

func (c *call) tags() ([]Tag, *Error) {
	if c.body == nil || c.body["tags"] == nil {
		return nil, nil
	}
	list, ok := c.body["tags"].([]any)
	if !ok {
		return nil, badType("tags", c.body["tags"])
	}
	var out []Tag
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, badType("tags", x)
		}
		k, _ := m["key"].(string)
		v, _ := m["value"].(string)
		out = append(out, Tag{Key: k, Value: v})
	}
	return out, nil
}

func (c *call) strings(name string) ([]string, *Error) {
	if c.body == nil {
		return c.query[name], nil
	}
	if c.body[name] == nil {
		return nil, nil
	}
	list, ok := c.body[name].([]any)
	if !ok {
		return nil, badType(name, c.body[name])
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, badType(name, x)
		}
		out = append(out, s)
	}
	return out, nil
}

func badType(name string, v any) *Error {
	typ := "str"
	switch v.(type) {
	case bool:
		typ = "bool"
	case float64:
		typ = "int"
	case []any:
		typ = "list"
	case map[string]any:
		typ = "dict"
	}
	return invalid("Invalid value %s for parameter '%s' supplied:  Hint: Value was of type '%s'. See the API docs for more information about request parameters.",
		jsonText(v), name, typ)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Handler returns the HTTP handler serving the registry.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Start serves the registry on a new loopback httptest.Server; the caller
// closes it.
func (s *Server) Start() *httptest.Server { return httptest.NewServer(s.Handler()) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/ajax-api/"); ok {
		path = "/api/" + rest
	}
	s.mu.Lock()
	s.served++
	if s.opts.Record {
		s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()})
	}
	f := s.matchFault(r.Method, path)
	s.mu.Unlock()
	if f != nil && s.applyFault(w, r, path, f) {
		return
	}
	s.serve(w, r, path)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, path string) {
	user, ok := s.authenticate(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error_code": "UNAUTHENTICATED",
			"message": "Credential was not sent or was of an unsupported type for this API."})
		return
	}
	rs, known := routes[path]
	if !known || (rs[0].databricks && !s.opts.Databricks) {
		writeHTML(w, http.StatusNotFound, notFoundPage)
		return
	}
	var rt *route
	for i := range rs {
		if rs[i].method == r.Method {
			rt = &rs[i]
		}
	}
	if rt == nil {
		writeHTML(w, http.StatusMethodNotAllowed, methodNotAllowedPage)
		return
	}
	c := &call{r: r, query: r.URL.Query(), user: user}
	if r.Method != http.MethodGet {
		c.body = map[string]any{}
		if b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20)); err == nil && len(bytes.TrimSpace(b)) > 0 {
			var m map[string]any
			if json.Unmarshal(b, &m) == nil && m != nil {
				c.body = m
			}
		}
	}
	out, err := rt.handle(s, c)
	if err != nil {
		writeJSON(w, err.Status, map[string]string{"error_code": err.Code, "message": err.Message})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) authenticate(r *http.Request) (string, bool) {
	if len(s.opts.Tokens) == 0 && len(s.opts.BasicAuth) == 0 {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if u, ok := s.opts.Tokens[tok]; ok {
				return u, true
			}
		}
		return s.opts.DefaultUser, true
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		u, ok := s.opts.Tokens[tok]
		return u, ok
	}
	if u, p, ok := r.BasicAuth(); ok {
		want, known := s.opts.BasicAuth[u]
		return u, known && want == p
	}
	return "", false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeHTML(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, page)
}

// JSON views.

type jsonVersion struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Created     int64    `json:"creation_timestamp"`
	Updated     int64    `json:"last_updated_timestamp"`
	UserID      string   `json:"user_id,omitempty"`
	Stage       string   `json:"current_stage"`
	Description *string  `json:"description,omitempty"`
	Source      string   `json:"source"`
	RunID       *string  `json:"run_id,omitempty"`
	Status      string   `json:"status"`
	Tags        []Tag    `json:"tags,omitempty"`
	RunLink     *string  `json:"run_link,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`

	PermissionLevel         string          `json:"permission_level,omitempty"`
	EmailSubscriptionStatus string          `json:"email_subscription_status,omitempty"`
	OpenRequests            *[]jsonActivity `json:"open_requests,omitempty"`
}

type jsonModel struct {
	Name            string        `json:"name"`
	ID              string        `json:"id,omitempty"`
	Created         int64         `json:"creation_timestamp"`
	Updated         int64         `json:"last_updated_timestamp"`
	UserID          string        `json:"user_id,omitempty"`
	Description     string        `json:"description,omitempty"`
	PermissionLevel string        `json:"permission_level,omitempty"`
	LatestVersions  []jsonVersion `json:"latest_versions,omitempty"`
	Tags            []Tag         `json:"tags,omitempty"`
	Aliases         []aliasRef    `json:"aliases,omitempty"`
}

type jsonActivity struct {
	ID           string `json:"id"`
	ActivityType string `json:"activity_type"`
	FromStage    string `json:"from_stage"`
	ToStage      string `json:"to_stage"`
	UserID       string `json:"user_id"`
	Created      int64  `json:"creation_timestamp"`
	Updated      int64  `json:"last_updated_timestamp"`
	Comment      string `json:"comment,omitempty"`
}

// optional returns &v in open-source mode (MLflow always writes these
// fields) and, in Databricks mode, only when v is not empty.
func (s *Server) optional(v string) *string {
	if s.opts.Databricks && v == "" {
		return nil
	}
	return &v
}

func (s *Server) versionJSON(m *model, v *version, withAliases bool) jsonVersion {
	j := jsonVersion{
		Name: m.name, Version: strconv.FormatInt(v.number, 10), Created: v.created, Updated: v.updated,
		Stage: v.stage, Description: s.optional(v.description), Source: v.source, RunID: s.optional(v.runID),
		Status: v.status, RunLink: s.optional(""),
	}
	if len(v.tags) > 0 {
		j.Tags = append([]Tag(nil), v.tags...)
	}
	if s.opts.Databricks {
		j.UserID = v.user
	}
	if withAliases {
		j.Aliases = m.aliasesOf(v.number)
	}
	return j
}

func (s *Server) modelJSON(m *model) jsonModel {
	j := jsonModel{Name: m.name, Created: m.created, Updated: m.updated, Description: m.description}
	for _, v := range m.latest(nil) {
		j.LatestVersions = append(j.LatestVersions, s.versionJSON(m, v, false))
	}
	if len(m.tags) > 0 {
		j.Tags = append([]Tag(nil), m.tags...)
	}
	if len(m.aliases) > 0 {
		j.Aliases = append([]aliasRef(nil), m.aliases...)
	}
	if s.opts.Databricks {
		j.UserID = m.user
	}
	return j
}

func (s *Server) activityJSON(r *transitionRequest) jsonActivity {
	return jsonActivity{ID: r.id, ActivityType: "REQUESTED_TRANSITION", FromStage: r.from, ToStage: r.to,
		UserID: r.user, Created: r.created, Updated: r.created, Comment: r.comment}
}

func (s *Server) openRequests(name string, v int64) []jsonActivity {
	out := []jsonActivity{}
	for _, r := range s.requests {
		if r.model == name && r.version == v {
			out = append(out, s.activityJSON(r))
		}
	}
	return out
}

// Handlers. Each runs with s.mu held.

func (s *Server) locked(f func() (any, *Error)) (any, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

func (s *Server) hCreateModel(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	desc, err := c.str("description")
	if err != nil {
		return nil, err
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, err := s.createModel(name, ModelSpec{Description: desc, Tags: tags, User: c.user})
		if err != nil {
			return nil, err
		}
		return map[string]any{"registered_model": s.modelJSON(m)}, nil
	})
}

func (s *Server) hGetModel(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, err := s.getModel(name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"registered_model": s.modelJSON(m)}, nil
	})
}

func (s *Server) hGetModelDatabricks(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, err := s.getModel(name)
		if err != nil {
			return nil, err
		}
		j := s.modelJSON(m)
		j.ID, j.PermissionLevel = m.id, s.opts.PermissionLevel
		return map[string]any{"registered_model_databricks": j}, nil
	})
}

func (s *Server) hUpdateModel(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	desc, err := c.str("description")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, err := s.updateModel(name, desc)
		if err != nil {
			return nil, err
		}
		return map[string]any{"registered_model": s.modelJSON(m)}, nil
	})
}

func (s *Server) hRenameModel(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	newName, err := c.required("new_name")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, err := s.rename(name, newName)
		if err != nil {
			return nil, err
		}
		return map[string]any{"registered_model": s.modelJSON(m)}, nil
	})
}

func (s *Server) hDeleteModel(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	if e := s.DeleteModel(name); e != nil {
		return nil, e.(*Error)
	}
	return struct{}{}, nil
}

func (s *Server) hSetModelTag(c *call) (any, *Error) {
	name, key, value, err := nameKeyValue(c, true)
	if err != nil {
		return nil, err
	}
	if e := s.SetModelTag(name, key, value); e != nil {
		return nil, e.(*Error)
	}
	return struct{}{}, nil
}

func (s *Server) hDeleteModelTag(c *call) (any, *Error) {
	name, key, _, err := nameKeyValue(c, false)
	if err != nil {
		return nil, err
	}
	if e := s.DeleteModelTag(name, key); e != nil {
		return nil, e.(*Error)
	}
	return struct{}{}, nil
}

func nameKeyValue(c *call, withValue bool) (name, key, value string, err *Error) {
	if name, err = c.required("name"); err != nil {
		return
	}
	if key, err = c.required("key"); err != nil {
		return
	}
	if withValue {
		if !c.has("value") {
			err = invalid("Missing value for required parameter 'value'. See the API docs for more information about request parameters.")
			return
		}
		value, err = c.str("value")
	}
	return
}

func (s *Server) hLatest(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	stages, err := c.strings("stages")
	if err != nil {
		return nil, err
	}
	for i, st := range stages {
		if stages[i], err = canonicalStage(st); err != nil {
			return nil, err
		}
	}
	return s.locked(func() (any, *Error) {
		m, err := s.getModel(name)
		if err != nil {
			return nil, err
		}
		out := []jsonVersion{}
		for _, v := range m.latest(stages) {
			out = append(out, s.versionJSON(m, v, s.opts.MLflow3))
		}
		return map[string]any{"model_versions": out}, nil
	})
}

func (s *Server) hSetAlias(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	alias, err := c.str("alias")
	if err != nil {
		return nil, err
	}
	v, err := c.required("version")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		if err := s.setAlias(name, alias, v); err != nil {
			return nil, err
		}
		return struct{}{}, nil
	})
}

func (s *Server) hDeleteAlias(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	alias, err := c.required("alias")
	if err != nil {
		return nil, err
	}
	if e := s.DeleteAlias(name, alias); e != nil {
		return nil, e.(*Error)
	}
	return struct{}{}, nil
}

func (s *Server) hGetByAlias(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	alias, err := c.required("alias")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, err := s.getModel(name)
		if err != nil {
			return nil, err
		}
		for _, a := range m.aliases {
			if a.Alias == alias {
				_, v, err := s.getVersion(name, a.Version)
				if err != nil {
					return nil, err
				}
				return map[string]any{"model_version": s.versionJSON(m, v, true)}, nil
			}
		}
		return nil, invalid("Registered model alias %s not found.", alias)
	})
}

func (s *Server) hCreateVersion(c *call) (any, *Error) {
	name, err := c.required("name")
	if err != nil {
		return nil, err
	}
	source, err := c.required("source")
	if err != nil {
		return nil, err
	}
	runID, err := c.str("run_id")
	if err != nil {
		return nil, err
	}
	desc, err := c.str("description")
	if err != nil {
		return nil, err
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, v, err := s.createVersion(name, VersionSpec{Source: source, RunID: runID, Description: desc, Tags: tags, User: c.user})
		if err != nil {
			return nil, err
		}
		return map[string]any{"model_version": s.versionJSON(m, v, true)}, nil
	})
}

func nameVersion(c *call) (string, string, *Error) {
	name, err := c.required("name")
	if err != nil {
		return "", "", err
	}
	v, err := c.required("version")
	if err != nil {
		return "", "", err
	}
	return name, v, nil
}

func (s *Server) hGetVersion(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, mv, err := s.getVersion(name, v)
		if err != nil {
			return nil, err
		}
		return map[string]any{"model_version": s.versionJSON(m, mv, true)}, nil
	})
}

func (s *Server) hDownloadURI(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		_, mv, err := s.getVersion(name, v)
		if err != nil {
			return nil, err
		}
		return map[string]any{"artifact_uri": mv.source}, nil
	})
}

func (s *Server) hUpdateVersion(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	desc, err := c.str("description")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, mv, err := s.updateVersion(name, v, desc)
		if err != nil {
			return nil, err
		}
		return map[string]any{"model_version": s.versionJSON(m, mv, true)}, nil
	})
}

func (s *Server) hDeleteVersion(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		if err := s.deleteVersion(name, v); err != nil {
			return nil, err
		}
		return struct{}{}, nil
	})
}

func transitionArgs(c *call) (name, v, stage string, archive bool, err *Error) {
	if name, v, err = nameVersion(c); err != nil {
		return
	}
	if stage, err = c.required("stage"); err != nil {
		return
	}
	archive, err = c.boolean("archive_existing_versions")
	return
}

func (s *Server) hTransition(c *call) (any, *Error) {
	name, v, stage, archive, err := transitionArgs(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, mv, err := s.transition(name, v, stage, archive)
		if err != nil {
			return nil, err
		}
		return map[string]any{"model_version": s.versionJSON(m, mv, true)}, nil
	})
}

func (s *Server) hTransitionDatabricks(c *call) (any, *Error) {
	name, v, stage, archive, err := transitionArgs(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		m, mv, err := s.transition(name, v, stage, archive)
		if err != nil {
			return nil, err
		}
		j := s.versionJSON(m, mv, false)
		open := s.openRequests(m.name, mv.number)
		j.PermissionLevel, j.EmailSubscriptionStatus, j.OpenRequests = s.opts.PermissionLevel, "SUBSCRIBED", &open
		return map[string]any{"model_version_databricks": j}, nil
	})
}

func (s *Server) hSetVersionTag(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	_, key, value, err := nameKeyValue(c, true)
	if err != nil {
		return nil, err
	}
	if e := s.SetVersionTag(name, v, key, value); e != nil {
		return nil, e.(*Error)
	}
	return struct{}{}, nil
}

func (s *Server) hDeleteVersionTag(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	_, key, _, err := nameKeyValue(c, false)
	if err != nil {
		return nil, err
	}
	if e := s.DeleteVersionTag(name, v, key); e != nil {
		return nil, e.(*Error)
	}
	return struct{}{}, nil
}

func requestArgs(c *call) (name, v, stage, comment string, err *Error) {
	if name, v, err = nameVersion(c); err != nil {
		return
	}
	if stage, err = c.required("stage"); err != nil {
		return
	}
	comment, err = c.str("comment")
	return
}

func (s *Server) hCreateRequest(c *call) (any, *Error) {
	name, v, stage, comment, err := requestArgs(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		r, err := s.createRequest(c.user, name, v, stage, comment)
		if err != nil {
			return nil, err
		}
		return map[string]any{"request": map[string]any{
			"available_actions":  []string{"APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST", "CANCEL_TRANSITION_REQUEST"},
			"comment":            r.comment,
			"creation_timestamp": r.created,
			"to_stage":           r.to,
			"user_id":            r.user,
		}}, nil
	})
}

func (s *Server) activityAnswer(a Activity) any {
	return map[string]any{"activity": jsonActivity{ID: a.ID, ActivityType: a.ActivityType, FromStage: a.FromStage,
		ToStage: a.ToStage, UserID: a.UserID, Created: a.Created, Updated: a.Created, Comment: a.Comment}}
}

func (s *Server) hApproveRequest(c *call) (any, *Error) {
	name, v, stage, comment, err := requestArgs(c)
	if err != nil {
		return nil, err
	}
	archive, err := c.boolean("archive_existing_versions")
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		a, err := s.closeRequest(c.user, name, v, stage, archive, comment, true)
		if err != nil {
			return nil, err
		}
		return s.activityAnswer(a), nil
	})
}

func (s *Server) hRejectRequest(c *call) (any, *Error) {
	name, v, stage, comment, err := requestArgs(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		a, err := s.closeRequest(c.user, name, v, stage, false, comment, false)
		if err != nil {
			return nil, err
		}
		return s.activityAnswer(a), nil
	})
}

func (s *Server) hListRequests(c *call) (any, *Error) {
	name, v, err := nameVersion(c)
	if err != nil {
		return nil, err
	}
	return s.locked(func() (any, *Error) {
		_, mv, err := s.getVersion(name, v)
		if err != nil {
			return nil, err
		}
		open := s.openRequests(name, mv.number)
		if len(open) == 0 {
			return struct{}{}, nil
		}
		return map[string]any{"requests": open}, nil
	})
}
