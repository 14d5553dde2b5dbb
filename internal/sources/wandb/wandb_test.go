package wandb

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

const testKey = "wandb-test-key-0123456789"

var t0 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// retryClock is a fake clock that reports every short timer (a retry
// backoff; request timeouts are set far longer) so that a test can advance
// time exactly when the client waits.
type retryClock struct {
	*clock.Fake
	waits chan time.Duration
}

func (c *retryClock) NewTimer(d time.Duration) clock.Timer {
	t := c.Fake.NewTimer(d)
	if d < time.Hour {
		c.waits <- d
	}
	return t
}

type env struct {
	waited []time.Duration // backoffs the client waited, last poll
	clk    *retryClock
	fake   *wandbfake.Server
	hs     *httptest.Server
	client *Client
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testConfig(url string) config.Source {
	return config.Source{
		Name:           "wandb-test",
		Type:           "wandb",
		URL:            url,
		APIKey:         testKey,
		Organization:   "acme",
		Registries:     []string{"model"},
		LegacyEntities: []string{"acme-ml"},
		Timeout:        config.Duration(24 * time.Hour),
	}
}

// newEnv starts a fake with organization acme (entity acme-org), registry
// model, team acme-ml with projects fraud-training and model-registry, and a
// client watching the registry and the team's Model Registry.
func newEnv(t testing.TB, history bool, edit func(*config.Source)) *env {
	t.Helper()
	return newEnvWith(t, history, func(fake *wandbfake.Server) {
		must(t, fake.AddOrganization("acme", "acme-org"))
		must(t, fake.AddTeam("acme-ml", "acme"))
		must(t, fake.CreateRegistry("acme", "model", wandbfake.ProjectSpec{ArtifactTypes: []string{"model"}}))
		must(t, fake.CreateProject("acme-ml", "fraud-training", wandbfake.ProjectSpec{}))
		must(t, fake.CreateProject("acme-ml", "model-registry", wandbfake.ProjectSpec{}))
	}, edit)
}

// newEnvWith starts a fake loaded by setup and a client of it.
func newEnvWith(t testing.TB, history bool, setup func(*wandbfake.Server), edit func(*config.Source)) *env {
	t.Helper()
	clk := &retryClock{Fake: clock.NewFake(t0), waits: make(chan time.Duration, 64)}
	fake := wandbfake.New(clk.Fake)
	fake.SetAPIKey(testKey)
	fake.SetActionHistory(history)
	setup(fake)
	hs := httptest.NewServer(fake)
	t.Cleanup(hs.Close)
	cfg := testConfig(hs.URL)
	if edit != nil {
		edit(&cfg)
	}
	logs := &syncBuffer{}
	c, err := New(cfg, Options{HTTPClient: hs.Client(), Clock: clk, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &env{clk: clk, fake: fake, hs: hs, client: c, logs: logs}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustV[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		must(t, err)
		return v
	}
}

// poll runs one Snapshot, advancing the fake clock whenever the client waits
// to retry.
func (e *env) poll(prev sources.Previous) (sources.Result, error) {
	type out struct {
		r   sources.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := e.client.Snapshot(context.Background(), prev)
		done <- out{r, err}
	}()
	e.waited = nil
	for {
		select {
		case o := <-done:
			return o.r, o.err
		case d := <-e.clk.waits:
			e.waited = append(e.waited, d)
			e.clk.Advance(d)
		}
	}
}

// at sets the fake clock to t0 + d.
func (e *env) at(d time.Duration) { e.clk.Set(t0.Add(d)) }

func ts(d time.Duration) string { return sources.FormatTime(t0.Add(d)) }

// TestScenario runs the same registry story with and without the
// action-history fields and checks every snapshot: link v0-v2, alias
// production on v1, moved to v2, back to v1, v0 unlinked, the collection
// renamed. Only the run with action history knows who moved the alias.
func TestScenario(t *testing.T) {
	for _, history := range []bool{true, false} {
		t.Run(fmt.Sprintf("history=%v", history), func(t *testing.T) { runScenario(t, history) })
	}
}

func runScenario(t *testing.T, history bool) {
	e := newEnv(t, history, func(c *config.Source) { c.LegacyEntities = nil })
	f := e.fake
	col := mustV[string](t)(f.CreateCollection("acme-org", "wandb-registry-model", "fraud-detector",
		wandbfake.CollectionSpec{Description: "Card fraud", Tags: []string{"tier-1"}}))

	web := e.hs.URL + "/orgs/acme/registry/model?selectionPath=acme-org%2Fwandb-registry-model%2F"
	model := func(name string, updated time.Duration, versions ...sources.Version) *sources.Snapshot {
		m := sources.Model{
			ID: col, Name: "acme-org/wandb-registry-model/" + name, Description: sources.Str("Card fraud"),
			CreatedAt: ts(0), URL: web + name, Tags: []sources.KV{{Key: "tier-1"}}, Versions: versions,
			Raw: []sources.KV{{Key: "__typename", Value: `"ArtifactPortfolio"`},
				{Key: "defaultArtifactType", Value: `"model"`}, {Key: "state", Value: `"READY"`}},
		}
		if updated > 0 {
			m.UpdatedAt = ts(updated)
		}
		if m.Versions == nil {
			m.Versions = []sources.Version{}
		}
		return &sources.Snapshot{Models: []sources.Model{m}}
	}
	actor := func(change, who string, at time.Duration, raw string) sources.Actor {
		return sources.Actor{Change: change, Key: "production", Actor: who, At: ts(at), Raw: raw,
			Evidence: "aliasActionHistory:" + col + ":production:" + t0.Add(at).Format(time.RFC3339)}
	}
	var arts, members []string
	type vspec struct {
		idx     int
		updated time.Duration
		aliases []string
		actors  []sources.Actor
	}
	version := func(name string, v vspec) sources.Version {
		linked := time.Duration(v.idx+1) * time.Minute
		out := sources.Version{
			ID: fmt.Sprintf("v%d", v.idx), Order: int64(v.idx), Aliases: v.aliases,
			CreatedAt: ts(linked), UpdatedAt: ts(linked), Creator: "alice",
			Description: sources.Str(fmt.Sprintf("model %d", v.idx)),
			Digest:      fmt.Sprintf("digest-%d", v.idx),
			Metadata:    []sources.KV{{Key: "auc", Value: fmt.Sprintf("0.9%d", v.idx)}, {Key: "params.depth", Value: "6"}},
			Source:      fmt.Sprintf("acme-ml/fraud-training/fraud-xgb:v%d", v.idx),
			Status:      "COMMITTED",
			URL:         web + name + fmt.Sprintf("&view=membership&version=v%d", v.idx),
		}
		if v.updated > 0 {
			out.UpdatedAt = ts(v.updated)
		}
		q := func(d time.Duration) string { return `"` + t0.Add(d).Format(time.RFC3339) + `"` }
		updated := linked
		if v.updated > 0 {
			updated = v.updated
		}
		out.Raw = []sources.KV{
			{Key: "artifact.createdAt", Value: q(linked)},
			{Key: "artifact.createdBy", Value: fmt.Sprintf(`{"__typename":"Run","name":"run-%d","user":{"username":"alice"}}`, v.idx)},
			{Key: "artifact.id", Value: `"` + arts[v.idx] + `"`},
			{Key: "artifact.updatedAt", Value: q(updated)},
			{Key: "artifact.versionIndex", Value: fmt.Sprint(v.idx)},
			{Key: "membership.createdAt", Value: q(linked)},
			{Key: "membership.id", Value: `"` + members[v.idx] + `"`},
		}
		if out.Aliases == nil {
			out.Aliases = []string{}
		}
		if v.idx == 2 {
			out.Tags = []sources.KV{{Key: "candidate"}}
		}
		if history {
			out.Actors = v.actors
		}
		return out
	}
	vs := func(name string, specs ...vspec) []sources.Version {
		var out []sources.Version
		for _, s := range specs {
			out = append(out, version(name, s))
		}
		return out
	}

	var prev sources.Previous
	check := func(step string, want *sources.Snapshot) {
		t.Helper()
		r, err := e.poll(prev)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if diff := cmp.Diff(want, r.Snapshot); diff != "" {
			t.Fatalf("%s: snapshot (-want +got):\n%s", step, diff)
		}
		if _, err := r.Snapshot.Canonical(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		prev = sources.Previous{Snapshot: r.Snapshot, Aux: r.Aux}
	}

	check("empty collection", model("fraud-detector", 0))

	for i := range 3 {
		e.at(time.Duration(i+1) * time.Minute)
		meta := fmt.Sprintf(`{"auc": 0.9%d, "params": {"depth": 6}, "note": null}`, i)
		a := wandbfake.Artifact{Digest: fmt.Sprintf("digest-%d", i), Description: fmt.Sprintf("model %d", i),
			Metadata: meta, Run: fmt.Sprintf("run-%d", i), CreatedBy: "alice"}
		if i == 2 {
			a.Tags = []string{"candidate"}
		}
		id := mustV[string](t)(f.LogArtifact("acme-ml", "fraud-training", "fraud-xgb", a))
		arts = append(arts, id)
		if got := mustV[int](t)(f.LinkVersion(col, id, "alice")); got != i {
			t.Fatalf("LinkVersion = %d, want %d", got, i)
		}
		members = append(members, mustV[string](t)(f.MembershipID(col, i)))
	}
	e.at(5 * time.Minute)
	check("linked v0-v2", model("fraud-detector", 3*time.Minute,
		vs("fraud-detector", vspec{idx: 0}, vspec{idx: 1}, vspec{idx: 2})...))

	set1 := actor("alias.set", "alice", 10*time.Minute, wandbfake.ActionAddAlias)
	e.at(10 * time.Minute)
	must(t, f.SetAlias(col, 1, "production", "alice"))
	e.at(15 * time.Minute)
	check("production -> v1", model("fraud-detector", 10*time.Minute, vs("fraud-detector",
		vspec{idx: 0}, vspec{idx: 1, updated: 10 * time.Minute, aliases: []string{"production"}, actors: []sources.Actor{set1}},
		vspec{idx: 2})...))

	set2 := actor("alias.set", "acme-ml-ci-bot", 20*time.Minute, wandbfake.ActionMoveAlias)
	e.at(20 * time.Minute)
	f.AddUser(wandbfake.User{Username: "acme-ml-ci-bot", Service: true})
	must(t, f.SetAlias(col, 2, "production", "acme-ml-ci-bot"))
	e.at(25 * time.Minute)
	check("production v1 -> v2", model("fraud-detector", 20*time.Minute, vs("fraud-detector",
		vspec{idx: 0}, vspec{idx: 1, updated: 20 * time.Minute, actors: []sources.Actor{set1}},
		vspec{idx: 2, updated: 20 * time.Minute, aliases: []string{"production"}, actors: []sources.Actor{set2}})...))

	set3 := actor("alias.set", "bob", 30*time.Minute, wandbfake.ActionMoveAlias)
	e.at(30 * time.Minute)
	must(t, f.SetAlias(col, 1, "production", "bob"))
	e.at(35 * time.Minute)
	afterRollback := func(name string, updated time.Duration, withV0 bool) *sources.Snapshot {
		specs := []vspec{
			{idx: 1, updated: 30 * time.Minute, aliases: []string{"production"}, actors: []sources.Actor{set1, set3}},
			{idx: 2, updated: 30 * time.Minute, actors: []sources.Actor{set2}},
		}
		if withV0 {
			specs = append([]vspec{{idx: 0}}, specs...)
		}
		return model(name, updated, vs(name, specs...)...)
	}
	check("production back to v1", afterRollback("fraud-detector", 30*time.Minute, true))

	e.at(40 * time.Minute)
	must(t, f.Unlink(col, 0, "alice"))
	e.at(45 * time.Minute)
	check("v0 unlinked", afterRollback("fraud-detector", 40*time.Minute, false))

	e.at(50 * time.Minute)
	must(t, f.RenameCollection(col, "fraud-scorer"))
	e.at(55 * time.Minute)
	check("renamed", afterRollback("fraud-scorer", 50*time.Minute, false))

	if _, err := f.ArtifactID(col, 0); err == nil {
		t.Error("v0 still linked in the fake")
	}
	if got := mustV[string](t)(f.ArtifactID(col, 1)); got != arts[1] {
		t.Errorf("v1 holds %s, want %s", got, arts[1])
	}
}

// TestExample reads the recorded scenario (a registry and a legacy Model
// Registry) and checks names, IDs, URLs, raw fields, actors and the request
// count.
func TestExample(t *testing.T) {
	var ex wandbfake.Example
	e := newEnvWith(t, true, func(f *wandbfake.Server) { ex = mustV[wandbfake.Example](t)(f.LoadExample()) }, nil)

	r, err := e.poll(sources.Previous{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]sources.Model{}
	for _, m := range r.Snapshot.Models {
		names = append(names, m.Name)
		byName[m.Name] = m
	}
	wantNames := []string{
		"acme-ml/model-registry/aml-ranker", "acme-ml/model-registry/fraud-detector",
		"acme-org/wandb-registry-model/churn-model", "acme-org/wandb-registry-model/fraud-detector",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("models (-want +got):\n%s", diff)
	}
	reg := byName["acme-org/wandb-registry-model/fraud-detector"]
	if reg.ID != ex.Collection {
		t.Errorf("registry model id %s, want collection id %s", reg.ID, ex.Collection)
	}
	var ids, aliases []string
	for _, v := range reg.Versions {
		ids = append(ids, v.ID)
		aliases = append(aliases, strings.Join(v.Aliases, ","))
	}
	if diff := cmp.Diff([]string{"v0", "v1", "v2"}, ids); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "staging", "production"}, aliases); diff != "" {
		t.Errorf("aliases (-want +got):\n%s", diff)
	}
	v2 := reg.Versions[2]
	if v2.Creator != "bob" || reg.Versions[1].Creator != "alice" {
		t.Errorf("creators %q, %q; want bob (user), alice (run's user)", v2.Creator, reg.Versions[1].Creator)
	}
	if v2.Source != "acme-ml/fraud-training/fraud-xgb:v9" {
		t.Errorf("source %q", v2.Source)
	}
	wantMeta := []sources.KV{{Key: "auc", Value: "0.947"}, {Key: "framework", Value: `"xgboost"`}, {Key: "git_sha", Value: `"c3d4e5f"`}}
	if diff := cmp.Diff(wantMeta, v2.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	wantRaw := map[string]string{
		"artifact.id":           `"` + ex.Artifacts[2] + `"`,
		"artifact.versionIndex": "9",
		"artifact.createdBy":    "",
	}
	for _, kv := range v2.Raw {
		if want, ok := wantRaw[kv.Key]; ok {
			if want != "" && kv.Value != want {
				t.Errorf("raw %s = %s, want %s", kv.Key, kv.Value, want)
			}
			delete(wantRaw, kv.Key)
		}
	}
	if len(wantRaw) > 0 {
		t.Errorf("raw fields missing: %v", wantRaw)
	}
	if len(v2.Actors) != 1 || v2.Actors[0].Actor != "acme-ml-ci-bot" || v2.Actors[0].Raw != wandbfake.ActionMoveAlias {
		t.Errorf("v2 actors %+v", v2.Actors)
	}
	if len(reg.Versions[1].Actors) != 2 {
		t.Errorf("v1 actors %+v, want staging by bob and production by alice", reg.Versions[1].Actors)
	}
	wantURL := e.hs.URL + "/orgs/acme/registry/model?selectionPath=acme-org%2Fwandb-registry-model%2Ffraud-detector&view=membership&version=v2"
	if v2.URL != wantURL {
		t.Errorf("url %s, want %s", v2.URL, wantURL)
	}
	legacy := byName["acme-ml/model-registry/fraud-detector"]
	if legacy.ID != ex.Legacy || len(legacy.Versions) != 2 || legacy.Versions[1].Aliases[0] != "production" {
		t.Errorf("legacy model %+v", legacy)
	}
	if want := e.hs.URL + "/acme-ml/registry/model?selectionPath=acme-ml%2Fmodel-registry%2Ffraud-detector"; legacy.URL != want {
		t.Errorf("legacy url %s, want %s", legacy.URL, want)
	}
	// First poll: organization, probe, one listing per project.
	if r.Requests != 4 || e.fake.Requests() != 4 {
		t.Errorf("first poll took %d requests (fake saw %d), want 4", r.Requests, e.fake.Requests())
	}
	r2, err := e.poll(sources.Previous{Snapshot: r.Snapshot, Aux: r.Aux})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Requests != 2 {
		t.Errorf("second poll took %d requests, want 2", r2.Requests)
	}
	if diff := cmp.Diff(r.Snapshot, r2.Snapshot); diff != "" {
		t.Errorf("unchanged registry, different snapshot:\n%s", diff)
	}
	// Snapshots share no memory: changing one changes no later one.
	for i := range r2.Snapshot.Models {
		m := &r2.Snapshot.Models[i]
		if m.Description != nil {
			*m.Description = "changed"
		}
		for j := range m.Versions {
			m.Versions[j].Aliases = append(m.Versions[j].Aliases[:0], "changed")
			if len(m.Versions[j].Metadata) > 0 {
				m.Versions[j].Metadata[0].Value = "changed"
			}
		}
	}
	r3, err := e.poll(sources.Previous{Snapshot: r.Snapshot, Aux: r.Aux})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Snapshot, r3.Snapshot); diff != "" {
		t.Errorf("a changed earlier snapshot leaked into the next one:\n%s", diff)
	}
	if strings.Contains(e.logs.String(), testKey) {
		t.Error("API key in logs")
	}
}
