package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

const start = 1795960124449 // epoch ms of the fake clock at the start of each test

// env is a fake registry and a client polling it.
type env struct {
	t    *testing.T
	clk  *clock.Fake
	fake *mlflowfake.Server
	srv  *httptest.Server
	cfg  config.Source
	c    *Client
}

func newEnv(t *testing.T, typ string, opts mlflowfake.Options, edit func(*config.Source)) *env {
	t.Helper()
	clk := clock.NewFake(time.UnixMilli(start))
	opts.Clock = clk
	opts.Databricks = typ == sources.TypeDatabricks
	opts.Record = true
	fake := mlflowfake.New(opts)
	srv := fake.Start()
	t.Cleanup(srv.Close)
	cfg := config.Source{Name: "reg-" + typ, Type: typ, URL: srv.URL, Concurrency: 4, Timeout: config.Duration(time.Hour)}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, clk: clk, fake: fake, srv: srv, cfg: cfg, c: c}
}

// snapshot polls in a goroutine while advancing the fake clock, so retries
// and timeouts (which wait on the clock) run without real waiting.
func (e *env) snapshot(prev *sources.Snapshot) (sources.Result, error) {
	e.t.Helper()
	return drive(e.clk, e.fake, func() (sources.Result, error) {
		return e.c.Snapshot(context.Background(), sources.Previous{Snapshot: prev})
	})
}

// drive runs fn while moving the fake clock to the next deadline whenever
// that deadline is a backoff (at most 5 minutes away; tests use a one-hour
// request timeout), or is the request timeout (at most an hour away) while the
// fake holds a request in a Delay fault (of three hours, so never reached).
func drive(clk *clock.Fake, fake *mlflowfake.Server, fn func() (sources.Result, error)) (sources.Result, error) {
	type out struct {
		r   sources.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := fn()
		done <- out{r, err}
	}()
	for {
		select {
		case o := <-done:
			return o.r, o.err
		default:
			if d, ok := clk.NextDeadline(); ok && (d.Sub(clk.Now()) <= 5*time.Minute || fake.Delaying() > 0 && d.Sub(clk.Now()) <= time.Hour) {
				clk.Set(d)
			}
			runtime.Gosched()
		}
	}
}

func (e *env) ok(prev *sources.Snapshot) *sources.Snapshot {
	e.t.Helper()
	res, err := e.snapshot(prev)
	if err != nil {
		e.t.Fatalf("snapshot: %v", err)
	}
	if res.Snapshot == nil {
		e.t.Fatal("no snapshot and no error")
	}
	return res.Snapshot
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) tick() { e.clk.Advance(time.Second) }

func (e *env) count(path string) int {
	n := 0
	for _, r := range e.fake.Requests() {
		if strings.HasSuffix(r.Path, path) {
			n++
		}
	}
	return n
}

func findModel(s *sources.Snapshot, name string) *sources.Model {
	for i := range s.Models {
		if s.Models[i].Name == name {
			return &s.Models[i]
		}
	}
	return nil
}

func findVersion(s *sources.Snapshot, name, v string) *sources.Version {
	m := findModel(s, name)
	if m == nil {
		return nil
	}
	for i := range m.Versions {
		if m.Versions[i].ID == v {
			return &m.Versions[i]
		}
	}
	return nil
}

func ms(n int64) string { return sources.FormatMillis(n) }

// TestSnapshotContent checks every field of a snapshot of a small registry
// against what the fake holds.
func TestSnapshotContent(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	e.must(e.fake.CreateModel("fraud-detector", mlflowfake.ModelSpec{Description: "card fraud",
		Tags: []mlflowfake.Tag{{Key: "team", Value: "risk"}, {Key: "owner", Value: "alice"}}}))
	e.tick()
	_, err := e.fake.CreateVersion("fraud-detector", mlflowfake.VersionSpec{Source: "s3://b/1", RunID: "r1", Description: "first",
		Tags: []mlflowfake.Tag{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}}})
	e.must(err)
	e.tick()
	_, err = e.fake.CreateVersion("fraud-detector", mlflowfake.VersionSpec{Source: "s3://b/2"})
	e.must(err)
	e.tick()
	e.must(e.fake.TransitionStage("fraud-detector", "1", "Production", false))
	e.must(e.fake.SetAlias("fraud-detector", "champion", "1"))
	e.must(e.fake.SetAlias("fraud-detector", "best", "1"))
	e.must(e.fake.SetAlias("fraud-detector", "challenger", "2"))
	e.tick()
	e.must(e.fake.CreateModel("churn", mlflowfake.ModelSpec{}))

	snap := e.ok(nil)
	base := e.srv.URL
	t0 := int64(start)
	want := &sources.Snapshot{Models: []sources.Model{
		{
			Name: "churn", ID: "churn@" + ms(t0+4000), CreatedAt: ms(t0 + 4000), UpdatedAt: ms(t0 + 4000),
			URL: base + "/#/models/churn", Versions: []sources.Version{},
			Raw: []sources.KV{{Key: "creation_timestamp", Value: "1795960128449"}, {Key: "last_updated_timestamp", Value: "1795960128449"}},
		},
		{
			Name: "fraud-detector", ID: "fraud-detector@" + ms(t0), CreatedAt: ms(t0), UpdatedAt: ms(t0 + 3000),
			Description: sources.Str("card fraud"), URL: base + "/#/models/fraud-detector",
			Tags: []sources.KV{{Key: "owner", Value: "alice"}, {Key: "team", Value: "risk"}},
			Raw:  []sources.KV{{Key: "creation_timestamp", Value: "1795960124449"}, {Key: "last_updated_timestamp", Value: "1795960127449"}},
			Versions: []sources.Version{
				{
					ID: "1", Order: 1, Stage: "Production", Aliases: []string{"best", "champion"},
					Description: sources.Str("first"), Source: "s3://b/1", RunID: sources.Str("r1"), Status: "READY",
					Tags:      []sources.KV{{Key: "a", Value: "2"}, {Key: "z", Value: "1"}},
					CreatedAt: ms(t0 + 1000), UpdatedAt: ms(t0 + 3000), URL: base + "/#/models/fraud-detector/versions/1",
					Raw: []sources.KV{{Key: "creation_timestamp", Value: "1795960125449"}, {Key: "current_stage", Value: `"Production"`},
						{Key: "last_updated_timestamp", Value: "1795960127449"}, {Key: "version", Value: `"1"`}},
				},
				{
					ID: "2", Order: 2, Stage: "None", Aliases: []string{"challenger"},
					Description: sources.Str(""), Source: "s3://b/2", RunID: sources.Str(""), Status: "READY",
					CreatedAt: ms(t0 + 2000), UpdatedAt: ms(t0 + 2000), URL: base + "/#/models/fraud-detector/versions/2",
					Raw: []sources.KV{{Key: "creation_timestamp", Value: "1795960126449"}, {Key: "current_stage", Value: `"None"`},
						{Key: "last_updated_timestamp", Value: "1795960126449"}, {Key: "version", Value: `"2"`}},
				},
			},
		},
	}}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Fatalf("snapshot (-want +got):\n%s", diff)
	}
	// The model search carries the aliases: 1 model search + 1 version search.
	if got := len(e.fake.Requests()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

// stripAliases is a RoundTripper that removes the aliases of every model in
// registered-models/search answers, as registries whose search omits them do.
type stripAliases struct{ next http.RoundTripper }

func (s stripAliases) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "registered-models/search") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	defer resp.Body.Close()
	var page map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, err
	}
	models, _ := page["registered_models"].([]any)
	for _, m := range models {
		delete(m.(map[string]any), "aliases")
	}
	b, err := json.Marshal(page)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// TestAliasesFromSearch checks both ways of reading the models: from the
// model search when some model listed carries aliases (no gets), else with
// one registered-models/get per model; and that a registry whose search omits
// aliases (the same fake behind stripAliases) gives the same snapshot,
// aliases included.
func TestAliasesFromSearch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		aliases  map[string]string // model -> version of its champion alias
		pageSize int
		wantGets int
	}{
		{name: "search carries aliases", aliases: map[string]string{"a": "2", "c": "1"}, wantGets: 0},
		{name: "only the last page has an alias", aliases: map[string]string{"c": "1"}, pageSize: 1, wantGets: 0},
		{name: "no alias anywhere", wantGets: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
			for _, n := range []string{"a", "b", "c"} {
				e.must(e.fake.CreateModel(n, mlflowfake.ModelSpec{Tags: []mlflowfake.Tag{{Key: "team", Value: n}}}))
				for range 2 {
					e.tick()
					_, err := e.fake.CreateVersion(n, mlflowfake.VersionSpec{Source: "s3://x"})
					e.must(err)
				}
			}
			for m, v := range tc.aliases {
				e.must(e.fake.SetAlias(m, "champion", v))
			}
			poll := func(what string, wantGets int) *sources.Snapshot {
				t.Helper()
				if tc.pageSize > 0 {
					e.c.modelsPage = tc.pageSize
				}
				before := e.count("registered-models/get")
				snap := e.ok(nil)
				if n := e.count("registered-models/get") - before; n != wantGets {
					t.Errorf("%s: %d model gets, want %d", what, n, wantGets)
				}
				for m, v := range tc.aliases {
					if a := findVersion(snap, m, v).Aliases; !slices.Equal(a, []string{"champion"}) {
						t.Errorf("%s: %s@%s aliases %v, want [champion]", what, m, v, a)
					}
				}
				if m := findModel(snap, "b"); m == nil || len(m.Tags) != 1 || m.Tags[0].Value != "b" {
					t.Errorf("%s: model b: %+v", what, m)
				}
				return snap
			}
			got := poll("the fake's answers", tc.wantGets)
			c, err := New(config.Source{Name: "reg-mlflow", Type: sources.TypeMLflow, URL: e.srv.URL, Concurrency: 4,
				Timeout: config.Duration(time.Hour)},
				Options{Clock: e.clk, HTTPClient: &http.Client{Transport: stripAliases{http.DefaultTransport}}})
			e.must(err)
			e.c = c
			want := poll("search without aliases", 3)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("snapshot (-read with gets +read from the search):\n%s", diff)
			}
		})
	}
}

// TestDatabricks checks the creator, the open transition requests (read for
// versions that are not Archived only) and the registry URLs of a Databricks
// workspace.
func TestDatabricks(t *testing.T) {
	e := newEnv(t, sources.TypeDatabricks, mlflowfake.Options{Tokens: map[string]string{"dapi-token": "svc@example.com"}},
		func(c *config.Source) { c.Token = "dapi-token" })
	e.must(e.fake.CreateModel("m", mlflowfake.ModelSpec{User: "alice@example.com"}))
	for range 3 {
		e.tick()
		_, err := e.fake.CreateVersion("m", mlflowfake.VersionSpec{Source: "dbfs:/x", User: "alice@example.com"})
		e.must(err)
	}
	e.must(e.fake.TransitionStage("m", "1", "Archived", false))
	e.must(e.fake.TransitionStage("m", "2", "Staging", false))
	e.tick()
	id, err := e.fake.CreateTransitionRequest("carol@example.com", "m", "2", "Production", "please")
	e.must(err)
	created := e.clk.Now().UnixMilli()
	_, err = e.fake.CreateTransitionRequest("carol@example.com", "m", "1", "Production", "archived: not read")
	e.must(err)

	snap := e.ok(nil)
	v2 := findVersion(snap, "m", "2")
	if v2 == nil {
		t.Fatal("version 2 missing")
	}
	wantReq := []sources.Request{{ID: id, Requester: "carol@example.com", ToStage: "Production", CreatedAt: ms(created)}}
	if diff := cmp.Diff(wantReq, v2.Requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if v2.Creator != "alice@example.com" || v2.Description != nil || v2.RunID != nil {
		t.Errorf("creator %q description %v run id %v", v2.Creator, v2.Description, v2.RunID)
	}
	if v1 := findVersion(snap, "m", "1"); len(v1.Requests) != 0 {
		t.Errorf("archived version's requests were read: %v", v1.Requests)
	}
	if want := e.srv.URL + "/#mlflow/models/m/versions/2"; v2.URL != want {
		t.Errorf("url %q, want %q", v2.URL, want)
	}
	if got := e.count("transition-requests/list"); got != 2 {
		t.Errorf("%d transition-request lists, want 2 (versions 2 and 3)", got)
	}
	if e.c.Type() != sources.TypeDatabricks {
		t.Errorf("type %q", e.c.Type())
	}
}

// TestModelsFilter checks the glob filter and the choice between one search
// of the whole registry and one filtered search per model.
func TestModelsFilter(t *testing.T) {
	for _, tc := range []struct {
		globs          []string
		wantModels     []string
		wantSearches   int
		filteredSearch bool
	}{
		{nil, []string{"fraud-a", "fraud-b", "other-1", "other-2", "other-3", "other-4", "other-5", "other-6"}, 1, false},
		{[]string{"fraud-*"}, []string{"fraud-a", "fraud-b"}, 2, true},
		{[]string{"fraud-*", "other-*"}, []string{"fraud-a", "fraud-b", "other-1", "other-2", "other-3", "other-4", "other-5", "other-6"}, 1, false},
	} {
		t.Run(strings.Join(tc.globs, ","), func(t *testing.T) {
			e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, func(c *config.Source) { c.Models = tc.globs })
			for _, n := range []string{"fraud-a", "fraud-b", "other-1", "other-2", "other-3", "other-4", "other-5", "other-6"} {
				e.must(e.fake.CreateModel(n, mlflowfake.ModelSpec{}))
				_, err := e.fake.CreateVersion(n, mlflowfake.VersionSpec{Source: "s3://x"})
				e.must(err)
			}
			snap := e.ok(nil)
			var names []string
			for _, m := range snap.Models {
				names = append(names, m.Name)
				if len(m.Versions) != 1 {
					t.Errorf("%s has %d versions", m.Name, len(m.Versions))
				}
			}
			if diff := cmp.Diff(tc.wantModels, names); diff != "" {
				t.Errorf("models (-want +got):\n%s", diff)
			}
			if got := e.count("model-versions/search"); got != tc.wantSearches {
				t.Errorf("%d version searches, want %d", got, tc.wantSearches)
			}
			for _, r := range e.fake.Requests() {
				if strings.HasSuffix(r.Path, "model-versions/search") && strings.Contains(r.Query, "filter") != tc.filteredSearch {
					t.Errorf("search %q, filtered search expected: %v", r.Query, tc.filteredSearch)
				}
			}
		})
	}
}

// TestPagingAndMovedRows reads with tiny pages while a version changes
// between two pages of the version search: the rows shift, the search misses
// a version, and the direct get keeps it in the snapshot with its new state.
func TestPagingAndMovedRows(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	e.c.modelsPage, e.c.versionsPage = 2, 2
	for _, n := range []string{"a", "b", "c"} {
		e.must(e.fake.CreateModel(n, mlflowfake.ModelSpec{}))
		for range 2 {
			e.tick()
			_, err := e.fake.CreateVersion(n, mlflowfake.VersionSpec{Source: "s3://x"})
			e.must(err)
		}
	}
	prev := e.ok(nil)
	if _, v := prev.Counts(); v != 6 {
		t.Fatalf("first poll saw %d versions, want 6", v)
	}
	// Newest first: c/2 c/1 | b/2 b/1 | a/2 a/1. Before the second page, a/1
	// is updated and jumps to the front: the second page is then c/1 b/2,
	// the third b/1 a/2, and a/1 is never listed.
	e.fake.Inject(mlflowfake.Fault{Path: "model-versions/search", Skip: 1, Times: 1, Mutate: func(s *mlflowfake.Server) {
		e.tick()
		if err := s.TransitionStage("a", "1", "Staging", false); err != nil {
			t.Error(err)
		}
	}})
	before := e.count("model-versions/get")
	snap := e.ok(prev)
	if _, v := snap.Counts(); v != 6 {
		t.Fatalf("second poll saw %d versions, want 6: %+v", v, snap)
	}
	if got := e.count("model-versions/get") - before; got != 1 {
		t.Errorf("%d direct version gets, want 1", got)
	}
	if v := findVersion(snap, "a", "1"); v == nil || v.Stage != "Staging" {
		t.Errorf("moved version: %+v", v)
	}
}

// TestDeletions checks that a version or model missing from the searches is
// dropped only when its direct get answers 404, and that a renamed model
// reappears under its new name.
func TestDeletions(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	for _, n := range []string{"a", "b", "c"} {
		e.must(e.fake.CreateModel(n, mlflowfake.ModelSpec{}))
		for range 2 {
			e.tick()
			_, err := e.fake.CreateVersion(n, mlflowfake.VersionSpec{Source: "s3://x"})
			e.must(err)
		}
	}
	prev := e.ok(nil)
	e.must(e.fake.DeleteVersion("a", "2"))
	e.must(e.fake.DeleteModel("b"))
	e.must(e.fake.RenameModel("c", "c2"))
	snap := e.ok(prev)
	var names []string
	for _, m := range snap.Models {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"a", "c2"}, names); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
	if findVersion(snap, "a", "2") != nil || findVersion(snap, "a", "1") == nil {
		t.Errorf("versions of a: %+v", findModel(snap, "a").Versions)
	}
	if got := e.count("model-versions/get"); got != 1 {
		t.Errorf("%d version gets, want 1 (a/2)", got)
	}
	if m := findModel(snap, "c2"); m == nil || m.ID != "c2@"+m.CreatedAt || m.CreatedAt != findModel(prev, "c").CreatedAt || len(m.Versions) != 2 {
		t.Errorf("renamed model: %+v", m)
	}
}

// TestModelMissingFromSearch checks a model that the search did not list
// but that still exists: it is read completely from the direct get and its
// own version search.
func TestModelMissingFromSearch(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	for _, n := range []string{"a", "b"} {
		e.must(e.fake.CreateModel(n, mlflowfake.ModelSpec{}))
		_, err := e.fake.CreateVersion(n, mlflowfake.VersionSpec{Source: "s3://x"})
		e.must(err)
	}
	e.must(e.fake.SetAlias("b", "champion", "1"))
	prev := e.ok(nil)
	// The model search answers only "a" (as if b moved between pages).
	remove := e.fake.Inject(mlflowfake.Fault{Path: "registered-models/search", Times: 1,
		Body: `{"registered_models":[{"name":"a","creation_timestamp":1795960124449,"last_updated_timestamp":1795960124449}]}`})
	defer remove()
	snap := e.ok(prev)
	if diff := cmp.Diff(prev, snap); diff != "" {
		t.Errorf("snapshot changed (-prev +now):\n%s", diff)
	}
}

func TestConfirmationFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault mlflowfake.Fault
	}{
		{"500", mlflowfake.Fault{Path: "model-versions/get", Status: 500}},
		{"html 404", mlflowfake.Fault{Path: "model-versions/get", HTML: true, Status: 404}},
		{"403", mlflowfake.Fault{Path: "model-versions/get", Status: 403}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
			e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
			_, err := e.fake.CreateVersion("a", mlflowfake.VersionSpec{Source: "s3://x"})
			e.must(err)
			prev := e.ok(nil)
			e.must(e.fake.DeleteVersion("a", "1"))
			e.fake.Inject(tc.fault)
			res, err := e.snapshot(prev)
			if err == nil || res.Snapshot != nil {
				t.Fatalf("got snapshot %+v, err %v", res.Snapshot, err)
			}
			if !strings.Contains(err.Error(), "GET /api/2.0/mlflow/model-versions/get") {
				t.Errorf("error does not name the endpoint: %v", err)
			}
			if got := e.count("model-versions/get"); got < 2 {
				t.Errorf("%d attempts, want a retry", got)
			}
		})
	}
}

// TestFaultMatrix injects every kind of fault into every endpoint a poll
// uses: each poll fails with an error naming the source and the endpoint.
func TestFaultMatrix(t *testing.T) {
	garbage := `{"registered_models": [{"name": 42}], "model_versions": [{"name": "a", "version": "x"}], "requests": [{"id": 7}], "registered_model": {"name": ["a"]}}`
	faults := map[string]mlflowfake.Fault{
		"500":         {Status: 500},
		"502":         {Status: 502},
		"503":         {Status: 503, RetryAfter: "7"},
		"429":         {Status: 429, RetryAfter: "Wed, 21 Oct 2099 07:28:00 GMT"},
		"401":         {Status: 401},
		"403":         {Status: 403},
		"delay":       {Delay: 3 * time.Hour},
		"reset":       {Reset: true},
		"truncated":   {Truncate: true},
		"garbage":     {Body: garbage},
		"binary":      {Body: "\x00\xff\xfenot json"},
		"html":        {HTML: true, Status: 200},
		"html 502":    {HTML: true},
		"wrong types": {Body: `{"model_versions":[{"name":"a","version":"1","creation_timestamp":"yesterday"}],"registered_model":{"name":"a","creation_timestamp":"x"},"registered_models":"a","requests":{}}`},
	}
	endpoints := []string{"registered-models/search", "registered-models/get", "model-versions/search", "transition-requests/list"}
	for _, ep := range endpoints {
		for name, f := range faults {
			t.Run(ep+"/"+name, func(t *testing.T) {
				// One request at a time: drive may then end a Delay fault
				// by moving the clock to the request timeout.
				e := newEnv(t, sources.TypeDatabricks, mlflowfake.Options{}, func(c *config.Source) { c.Concurrency = 1 })
				e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
				_, err := e.fake.CreateVersion("a", mlflowfake.VersionSpec{Source: "s3://x"})
				e.must(err)
				f.Path = ep
				e.fake.Inject(f)
				res, err := e.snapshot(nil)
				if err == nil || res.Snapshot != nil {
					for _, r := range e.fake.Requests() {
						t.Logf("%s %s", r.Path, r.Query)
					}
					t.Fatalf("got snapshot %+v, err %v", res.Snapshot, err)
				}
				want := `source "reg-databricks": GET /api/2.0/mlflow/` + ep
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
				if strings.Contains(err.Error(), "max_results") || strings.Contains(err.Error(), "name=") || strings.Contains(err.Error(), e.srv.URL) {
					t.Errorf("error shows the URL or query: %v", err)
				}
			})
		}
	}
	t.Run("model deleted between list and get", func(t *testing.T) {
		e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
		e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
		e.fake.Inject(mlflowfake.Fault{Path: "registered-models/get", Times: 1, Mutate: func(s *mlflowfake.Server) {
			if err := s.DeleteModel("a"); err != nil {
				t.Error(err)
			}
		}})
		res, err := e.snapshot(nil)
		if err == nil || res.Snapshot != nil || !strings.Contains(err.Error(), "registered-models/get") {
			t.Fatalf("got snapshot %+v, err %v", res.Snapshot, err)
		}
	})
	t.Run("non-numeric version", func(t *testing.T) {
		e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
		e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
		e.fake.Inject(mlflowfake.Fault{Path: "model-versions/search",
			Body: `{"model_versions":[{"name":"a","version":"1a","creation_timestamp":1}]}`})
		_, err := e.snapshot(nil)
		if err == nil || !strings.Contains(err.Error(), `version "1a" is not a version number`) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestRetriesAbsorbTransientFaults checks that a single 503 or reset is
// retried and the poll succeeds.
func TestRetriesAbsorbTransientFaults(t *testing.T) {
	for _, f := range []mlflowfake.Fault{{Status: 503, Times: 1}, {Reset: true, Times: 2}, {Status: 429, RetryAfter: "3", Times: 3}} {
		e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
		e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
		f.Path = "model-versions/search"
		e.fake.Inject(f)
		e.ok(nil)
	}
}

// TestAuthAndHeaders checks bearer tokens, basic auth and extra headers,
// and that no secret reaches an error.
func TestAuthAndHeaders(t *testing.T) {
	t.Run("bearer", func(t *testing.T) {
		e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{Tokens: map[string]string{"tok-123456": "u"}}, func(c *config.Source) {
			c.Token = "tok-123456"
			c.Headers = map[string]config.Secret{"X-Tenant": "acme-secret-header"}
		})
		e.ok(nil)
		r := e.fake.Requests()[0]
		if r.Header.Get("Authorization") != "Bearer tok-123456" || r.Header.Get("X-Tenant") != "acme-secret-header" {
			t.Errorf("headers %v", r.Header)
		}
	})
	t.Run("basic", func(t *testing.T) {
		e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{BasicAuth: map[string]string{"admin": "pa55word"}}, func(c *config.Source) {
			c.Username, c.Password = "admin", "pa55word"
		})
		e.ok(nil)
	})
	t.Run("wrong token", func(t *testing.T) {
		e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{Tokens: map[string]string{"right": "u"}}, func(c *config.Source) {
			c.Token = "wrong-token-value"
		})
		e.fake.Inject(mlflowfake.Fault{Status: 401, Message: "bad token wrong-token-value"})
		_, err := e.snapshot(nil)
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("err %v", err)
		}
		if strings.Contains(err.Error(), "wrong-token-value") {
			t.Errorf("token in error: %v", err)
		}
	})
}

// TestCancel checks that a cancelled poll returns at once with the context's error.
func TestCancel(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
	e.fake.Inject(mlflowfake.Fault{Path: "registered-models/get", Delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.c.Snapshot(ctx, sources.Previous{})
		done <- err
	}()
	for e.fake.Delaying() == 0 {
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `source "reg-mlflow": GET /api/2.0/mlflow/`) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot did not return after cancellation")
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []config.Source{
		{Name: "x", Type: "wandb", URL: "http://h"},
		{Name: "x", Type: "mlflow", URL: "ftp://h"},
		{Name: "x", Type: "mlflow", URL: "h:5000"},
		{Name: "x", Type: "mlflow", URL: "http://h", Models: []string{"["}},
	} {
		if _, err := New(cfg, Options{}); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	c, err := New(config.Source{Name: "x", Type: "mlflow", URL: "http://u:p@h:5000/prefix/"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.VersionURL("a b", "3"); got != "http://h:5000/prefix/#/models/a%20b/versions/3" {
		t.Errorf("url %q", got)
	}
	if c.Name() != "x" || c.Type() != "mlflow" {
		t.Errorf("name %q type %q", c.Name(), c.Type())
	}
}
