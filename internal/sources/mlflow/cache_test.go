package mlflow

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// sharesVersions reports whether model name has the same Versions backing
// array in a and b.
func sharesVersions(a, b *sources.Snapshot, name string) bool {
	ma, mb := findModel(a, name), findModel(b, name)
	return ma != nil && mb != nil && len(ma.Versions) > 0 && len(mb.Versions) > 0 && &ma.Versions[0] == &mb.Versions[0]
}

// TestCacheFollowsChanges polls an unchanged registry (models reuse their
// versions), then changes it between polls in ways that leave the version
// search's answer as it was (an alias) or not (a tag, a new version), and
// fails a poll: every snapshot is what a client without a cache reads.
func TestCacheFollowsChanges(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	e.c.minCachedPage = 0 // keep the small answers of this registry
	for _, n := range []string{"a", "b"} {
		e.must(e.fake.CreateModel(n, mlflowfake.ModelSpec{}))
		for range 2 {
			e.tick()
			_, err := e.fake.CreateVersion(n, mlflowfake.VersionSpec{Source: "s3://x"})
			e.must(err)
		}
	}
	e.must(e.fake.SetAlias("a", "champion", "1"))
	// fresh reads the registry with a new client (an empty cache).
	fresh := func() *sources.Snapshot {
		t.Helper()
		c, err := New(e.cfg, Options{Clock: e.clk})
		e.must(err)
		old := e.c
		e.c = c
		defer func() { e.c = old }()
		return e.ok(nil)
	}
	check := func(what string, prev *sources.Snapshot) *sources.Snapshot {
		t.Helper()
		got := e.ok(prev)
		if diff := cmp.Diff(fresh(), got); diff != "" {
			t.Fatalf("%s: snapshot differs from a fresh read (-fresh +cached):\n%s", what, diff)
		}
		return got
	}

	s1 := check("first poll", nil)
	s2 := check("unchanged", s1)
	if !sharesVersions(s1, s2, "a") || !sharesVersions(s1, s2, "b") {
		t.Error("an unchanged registry rebuilt the versions")
	}

	e.must(e.fake.SetAlias("a", "champion", "2"))
	s3 := check("alias moved", s2)
	if sharesVersions(s2, s3, "a") || !sharesVersions(s2, s3, "b") {
		t.Error("alias move: a must be rebuilt, b reused")
	}
	if got := findVersion(s3, "a", "2").Aliases; len(got) != 1 || got[0] != "champion" {
		t.Errorf("a@2 aliases %v", got)
	}

	e.must(e.fake.SetVersionTag("b", "1", "approved_by", "carol"))
	s4 := check("tag set", s3)
	if tags := findVersion(s4, "b", "1").Tags; len(tags) != 1 || tags[0].Value != "carol" {
		t.Errorf("b@1 tags %v", tags)
	}

	remove := e.fake.Inject(mlflowfake.Fault{Path: "model-versions/search", Status: 403})
	if _, err := e.snapshot(s4); err == nil {
		t.Fatal("the poll succeeded through a 403")
	}
	remove()
	s5 := check("after a failed poll", s4)
	if !sharesVersions(s4, s5, "a") {
		t.Error("a failed poll emptied the cache")
	}

	e.tick()
	_, err := e.fake.CreateVersion("b", mlflowfake.VersionSpec{Source: "s3://y"})
	e.must(err)
	s6 := check("version created", s5)
	if findVersion(s6, "b", "3") == nil {
		t.Error("new version b@3 missing")
	}
}

// TestCacheDatabricksRequests checks that versions built with open
// transition requests are not reused once the requests close.
func TestCacheDatabricksRequests(t *testing.T) {
	e := newEnv(t, sources.TypeDatabricks, mlflowfake.Options{}, nil)
	e.c.minCachedPage = 0
	e.must(e.fake.CreateModel("m", mlflowfake.ModelSpec{}))
	_, err := e.fake.CreateVersion("m", mlflowfake.VersionSpec{Source: "dbfs:/x"})
	e.must(err)
	e.must(e.fake.TransitionStage("m", "1", "Staging", false))
	_, err = e.fake.CreateTransitionRequest("carol@example.com", "m", "1", "Production", "")
	e.must(err)
	s1 := e.ok(nil)
	if n := len(findVersion(s1, "m", "1").Requests); n != 1 {
		t.Fatalf("%d open requests, want 1", n)
	}
	_, err = e.fake.RejectTransitionRequest("bob@example.com", "m", "1", "Production", "")
	e.must(err)
	s2 := e.ok(s1)
	if n := len(findVersion(s2, "m", "1").Requests); n != 0 {
		t.Errorf("%d open requests after the rejection, want 0", n)
	}
}

// TestCacheKeepsLargeAnswersOnly checks that answers under minCachedPage
// are not kept between polls, and larger ones are.
func TestCacheKeepsLargeAnswersOnly(t *testing.T) {
	e := newEnv(t, sources.TypeMLflow, mlflowfake.Options{}, nil)
	e.must(e.fake.CreateModel("a", mlflowfake.ModelSpec{}))
	_, err := e.fake.CreateVersion("a", mlflowfake.VersionSpec{Source: "s3://x"})
	e.must(err)
	s1 := e.ok(nil)
	s2 := e.ok(s1)
	if sharesVersions(s1, s2, "a") || len(e.c.cache.get().pages) != 0 || len(e.c.cache.get().models) != 0 {
		t.Error("a small registry's answers were kept")
	}
	e.c.minCachedPage = 1
	s3 := e.ok(s2)
	s4 := e.ok(s3)
	if !sharesVersions(s3, s4, "a") || len(e.c.cache.get().pages) != 2 {
		t.Errorf("answers of at least minCachedPage bytes were not kept: %d cached", len(e.c.cache.get().pages))
	}
}

func TestMissingFrom(t *testing.T) {
	have := []*version{{v: sources.Version{ID: "1", Order: 1}}, {v: sources.Version{ID: "3", Order: 3}}}
	for _, tc := range []struct {
		prev []sources.Version
		want []string
	}{
		{[]sources.Version{{ID: "1", Order: 1}, {ID: "2", Order: 2}, {ID: "3", Order: 3}, {ID: "4", Order: 4}}, []string{"2", "4"}},
		{[]sources.Version{{ID: "3", Order: 3}, {ID: "1", Order: 1}, {ID: "0", Order: 0}}, []string{"0"}},
		{nil, nil},
	} {
		if diff := cmp.Diff(tc.want, missingFrom(tc.prev, have)); diff != "" {
			t.Errorf("missingFrom(%v) (-want +got):\n%s", tc.prev, diff)
		}
	}
}
