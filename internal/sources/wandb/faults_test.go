package wandb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// populate fills the registry with collections of versions, aliases and
// history, and one legacy collection.
func populate(t testing.TB, f *wandbfake.Server, collections, versions int) {
	t.Helper()
	for c := range collections {
		col := mustV[string](t)(f.CreateCollection("acme-org", "wandb-registry-model", fmt.Sprintf("model-%03d", c),
			wandbfake.CollectionSpec{Tags: []string{"team-a"}}))
		for v := range versions {
			id := mustV[string](t)(f.LogArtifact("acme-ml", "fraud-training", fmt.Sprintf("seq-%03d", c), wandbfake.Artifact{
				Digest: fmt.Sprintf("%03d-%03d", c, v), Metadata: fmt.Sprintf(`{"step": %d, "lr": 1e-3}`, v),
				Run: fmt.Sprintf("run-%d-%d", c, v), CreatedBy: "alice",
			}))
			mustV[int](t)(f.LinkVersion(col, id, "alice"))
		}
		if versions >= 2 {
			must(t, f.SetAlias(col, versions-2, "production", "alice"))
			must(t, f.SetAlias(col, versions-1, "production", "bob"))
			must(t, f.SetAlias(col, versions-1, "staging", "bob"))
		}
	}
	legacy := mustV[string](t)(f.CreateCollection("acme-ml", "model-registry", "legacy-model", wandbfake.CollectionSpec{}))
	id := mustV[string](t)(f.LogArtifact("acme-ml", "fraud-training", "legacy-seq", wandbfake.Artifact{Digest: "l0"}))
	mustV[int](t)(f.LinkVersion(legacy, id, "alice"))
}

// TestFaults checks that every failure gives an error naming the source and
// the operation and no snapshot, and that the next poll gives back exactly
// the snapshot from before.
func TestFaults(t *testing.T) {
	const op = "Collections"
	scope := fmt.Sprintf(`wandb %s (acme-org/wandb-registry-model)`, op)
	cases := []struct {
		name     string
		fault    wandbfake.Fault
		wantErr  []string // substrings; none means the poll succeeds
		requests int      // requests of the faulted poll
		waits    []time.Duration
	}{
		{name: "unauthorized", fault: wandbfake.Fault{Kind: wandbfake.FaultUnauthorized, Operation: op},
			wantErr: []string{"HTTP 401", "api_key"}, requests: 1},
		{name: "rate limited", fault: wandbfake.Fault{Kind: wandbfake.FaultRateLimited, Operation: op, RetryAfter: 7 * time.Second},
			wantErr: []string{"HTTP 429", "after 4 attempts"}, requests: 4,
			waits: []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second}},
		{name: "server error", fault: wandbfake.Fault{Kind: wandbfake.FaultServerError, Operation: op, Status: 502},
			wantErr: []string{"HTTP 502", "after 4 attempts"}, requests: 4},
		{name: "graphql errors", fault: wandbfake.Fault{Kind: wandbfake.FaultGraphQLError, Operation: op, Message: "query timed out"},
			wantErr: []string{"graphql errors: query timed out"}, requests: 1},
		{name: "truncated body", fault: wandbfake.Fault{Kind: wandbfake.FaultTruncated, Operation: op},
			wantErr: []string{"decode response"}, requests: 1},
		{name: "empty page without cursor", fault: wandbfake.Fault{Kind: wandbfake.FaultEmptyPage, Operation: op, StuckCursor: true},
			wantErr: []string{"hasNextPage but gives no endCursor"}, requests: 1},
		{name: "empty pages not advancing", fault: wandbfake.Fault{Kind: wandbfake.FaultEmptyPage, Operation: op},
			wantErr: []string{"pagination does not advance"}, requests: 2},
		{name: "transient server error", fault: wandbfake.Fault{Kind: wandbfake.FaultServerError, Operation: op, Times: 2},
			requests: 4},
		{name: "transient rate limit", fault: wandbfake.Fault{Kind: wandbfake.FaultRateLimited, Operation: op, Times: 1, RetryAfter: 3 * time.Second},
			requests: 3, waits: []time.Duration{3 * time.Second}},
		{name: "one empty page", fault: wandbfake.Fault{Kind: wandbfake.FaultEmptyPage, Operation: op, Times: 1},
			requests: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, nil)
			populate(t, e.fake, 3, 4)
			base, err := e.poll(sources.Previous{})
			if err != nil {
				t.Fatal(err)
			}
			prev := sources.Previous{Snapshot: base.Snapshot, Aux: base.Aux}
			e.fake.InjectFault(tc.fault)
			before := e.fake.Requests()
			r, err := e.poll(prev)
			if got := e.fake.Requests() - before; got != tc.requests {
				t.Errorf("faulted poll sent %d requests, want %d", got, tc.requests)
			}
			if tc.waits != nil {
				if diff := cmp.Diff(tc.waits, e.waited); diff != "" {
					t.Errorf("backoffs (-want +got):\n%s", diff)
				}
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("poll succeeded under the fault")
				}
				if r.Snapshot != nil {
					t.Error("a failed poll returned a snapshot")
				}
				msg := err.Error()
				for _, want := range append([]string{`source "wandb-test"`, scope}, tc.wantErr...) {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not mention %q", msg, want)
					}
				}
				if strings.Contains(msg, testKey) {
					t.Errorf("error shows the API key: %s", msg)
				}
				e.fake.ClearFaults()
				if r, err = e.poll(prev); err != nil {
					t.Fatalf("after recovery: %v", err)
				}
			} else if err != nil {
				t.Fatalf("poll failed: %v", err)
			}
			if r.Requests != tc.requests && len(tc.wantErr) == 0 {
				t.Errorf("Result.Requests = %d, want %d", r.Requests, tc.requests)
			}
			if diff := cmp.Diff(base.Snapshot, r.Snapshot); diff != "" {
				t.Errorf("snapshot after the fault differs (-before +after):\n%s", diff)
			}
		})
	}
}

// TestPagination reads the same registry with pages of two items (forcing
// follow-up pages of collections, versions and alias actions, and failing one
// of them once) and with the default pages: both snapshots must be equal.
func TestPagination(t *testing.T) {
	e := newEnv(t, true, nil)
	populate(t, e.fake, 5, 5)
	want, err := e.poll(sources.Previous{})
	if err != nil {
		t.Fatal(err)
	}
	if n, v := want.Snapshot.Counts(); n != 6 || v != 26 {
		t.Fatalf("counts %d models, %d versions; want 6, 26", n, v)
	}
	e.fake.SetMaxPageSize(2)
	e.fake.InjectFault(wandbfake.Fault{Kind: wandbfake.FaultServerError, Operation: opMemberships, Times: 1})
	e.fake.InjectFault(wandbfake.Fault{Kind: wandbfake.FaultEmptyPage, Operation: opAliasActions, Times: 1})
	got, err := e.poll(sources.Previous{Snapshot: want.Snapshot, Aux: want.Aux})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Snapshot, got.Snapshot); diff != "" {
		t.Fatalf("paged snapshot differs (-default +paged):\n%s", diff)
	}
	// 3 registry pages + 1 legacy page + 5x2 version pages (+1 retried) +
	// 5x1 action pages (+1 empty).
	if got.Requests != 3+1+10+1+5+1 {
		t.Errorf("paged poll took %d requests, want 21", got.Requests)
	}
}

// TestActionHistoryProbe checks that the probe runs once, is remembered in
// the aux state, and that a server losing the fields later is handled.
func TestActionHistoryProbe(t *testing.T) {
	e := newEnv(t, false, nil)
	populate(t, e.fake, 1, 3)
	r, err := e.poll(sources.Previous{})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Aux) != `{"action_history":"absent"}` {
		t.Errorf("aux %s", r.Aux)
	}
	for _, m := range r.Snapshot.Models {
		for _, v := range m.Versions {
			if len(v.Actors) > 0 {
				t.Errorf("%s %s has actors without action history", m.Name, v.ID)
			}
		}
	}
	if _, err := e.poll(sources.Previous{Snapshot: r.Snapshot, Aux: r.Aux}); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Operations()[opProbeHistory]; n != 1 {
		t.Errorf("probed %d times, want 1", n)
	}
	if r.Snapshot.Models[1].Name != "acme-org/wandb-registry-model/model-000" {
		t.Fatalf("models %+v", r.Snapshot.Models)
	}

	// A new client (a restart) takes the probe result from the aux state.
	e.fake.SetActionHistory(true)
	c2, err := New(testConfig(e.hs.URL), Options{HTTPClient: e.hs.Client(), Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c2
	r2, err := e.poll(sources.Previous{Snapshot: r.Snapshot, Aux: []byte(`{"action_history":"present"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Operations()[opProbeHistory]; n != 1 {
		t.Errorf("probed %d times after a restart with aux, want 1", n)
	}
	if len(r2.Snapshot.Models[1].Versions[2].Actors) == 0 {
		t.Error("no actors with action history present")
	}

	// The server drops the fields: the poll still succeeds, without actors.
	e.fake.SetActionHistory(false)
	r3, err := e.poll(sources.Previous{Snapshot: r2.Snapshot, Aux: r2.Aux})
	if err != nil {
		t.Fatal(err)
	}
	if string(r3.Aux) != `{"action_history":"absent"}` {
		t.Errorf("aux %s after the server dropped action history", r3.Aux)
	}
	if diff := cmp.Diff(r.Snapshot, r3.Snapshot); diff != "" {
		t.Errorf("snapshot without history differs:\n%s", diff)
	}
}

// TestModelFilter keeps only the collections the globs select, matched on
// the full model name or the collection name.
func TestModelFilter(t *testing.T) {
	e := newEnv(t, true, func(c *config.Source) {
		c.Models = []string{"model-00[02]", "acme-ml/model-registry/*"}
	})
	populate(t, e.fake, 3, 1)
	r, err := e.poll(sources.Previous{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range r.Snapshot.Models {
		names = append(names, m.Name)
	}
	want := []string{"acme-ml/model-registry/legacy-model", "acme-org/wandb-registry-model/model-000", "acme-org/wandb-registry-model/model-002"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
}

// TestNotFound fails the poll when a configured registry or organization
// does not exist, rather than reporting it empty.
func TestNotFound(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Source)
		want string
	}{
		{"registry", func(c *config.Source) { c.Registries = []string{"nope"} }, "acme-org/wandb-registry-nope): project not found"},
		{"organization", func(c *config.Source) { c.Organization = "nope" }, `organization "nope" not found`},
		{"team", func(c *config.Source) { c.LegacyEntities = []string{"nope"} }, "nope/model-registry): project not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, tc.edit)
			_, err := e.poll(sources.Previous{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCancelled returns an error at once on a cancelled context.
func TestCancelled(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := e.client.Snapshot(ctx, sources.Previous{}); err == nil || r.Snapshot != nil {
		t.Fatalf("Snapshot on a cancelled context: %v, %v", r.Snapshot, err)
	}
}

// TestNewValidates rejects configs that cannot work.
func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Source)
		want string
	}{
		{"no key", func(c *config.Source) { c.APIKey = "" }, "api_key is required"},
		{"no organization", func(c *config.Source) { c.Organization = "" }, "registries need organization"},
		{"nothing watched", func(c *config.Source) { c.Registries, c.LegacyEntities = nil, nil }, "set registries"},
		{"bad glob", func(c *config.Source) { c.Models = []string{"["} }, "bad pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:1")
			tc.edit(&cfg)
			if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
	c, err := New(config.Source{Name: "cloud", APIKey: "k", LegacyEntities: []string{"team"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.web != "https://wandb.ai" || c.Type() != "wandb" || c.Name() != "cloud" {
		t.Errorf("web %q type %q name %q", c.web, c.Type(), c.Name())
	}
}

// TestProbeErrors: a probe that fails at execution (the field exists) means
// present; a probe that cannot be sent fails the poll and is tried again.
func TestProbeErrors(t *testing.T) {
	e := newEnv(t, true, nil)
	populate(t, e.fake, 1, 2)
	e.fake.InjectFault(wandbfake.Fault{Kind: wandbfake.FaultServerError, Operation: opProbeHistory})
	if _, err := e.poll(sources.Previous{}); err == nil || !strings.Contains(err.Error(), "wandb "+opProbeHistory) {
		t.Fatalf("probe failing with 503: %v", err)
	}
	e.fake.ClearFaults()
	e.fake.InjectFault(wandbfake.Fault{Kind: wandbfake.FaultGraphQLError, Operation: opProbeHistory, Times: 1, Message: "not found"})
	r, err := e.poll(sources.Previous{})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Aux) != `{"action_history":"present"}` {
		t.Errorf("aux %s, want present", r.Aux)
	}
}
