package daemon

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/wandb"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// TestWandBScenario links v0-v2, moves the production alias v1 -> v2
// without approval, back to v1 (a rollback), unlinks a version and renames
// the collection: once with the action-history fields served (actors known)
// and once without (actor unknown, times bounded by the polls).
func TestWandBScenario(t *testing.T) {
	for _, history := range []bool{true, false} {
		t.Run(map[bool]string{true: "with action history", false: "without action history"}[history], func(t *testing.T) {
			playWandB(t, history)
		})
	}
}

func playWandB(t *testing.T, history bool) {
	clk := clock.NewFake(time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC))
	f := wandbfake.New(clk)
	f.SetActionHistory(history)
	r0 := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.AddUser(wandbfake.User{Username: "alice"})
	f.AddUser(wandbfake.User{Username: "ci-bot", Service: true})
	r0(f.AddOrganization("acme", "acme-org"))
	r0(f.AddTeam("acme-ml", "acme"))
	r0(f.CreateRegistry("acme", "model", wandbfake.ProjectSpec{ArtifactTypes: []string{"model"}}))
	r0(f.CreateProject("acme-ml", "training", wandbfake.ProjectSpec{}))
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := config.Source{
		Name: "wb", Type: sources.TypeWandB, URL: srv.URL, APIKey: "k", Organization: "acme", Registries: []string{"model"},
		Timeout: config.Duration(time.Hour), Concurrency: 4,
		Production: config.Production{Aliases: []string{"production"}}, Approval: config.SourceApproval{Alias: "approved"},
		ProtectedAliases: []string{"production", "approved"},
	}
	client, err := wandb.New(cfg, wandb.Options{Clock: clk})
	r0(err)
	r := newPollRig(t, clk, client, cfg)
	actor := func(a string) string {
		if history {
			return a
		}
		return "unknown"
	}
	keys := []string{"alias", "previous_version", "verdict", "reason", "promoter", "result", "duration_ms"}
	const m = "acme-org/wandb-registry-model/fraud"

	sameLines(t, "baseline", r.poll(keys...), nil)
	coll, err := f.CreateCollection("acme-org", wandbfake.RegistryPrefix+"model", "fraud", wandbfake.CollectionSpec{})
	r0(err)
	for i := 0; i < 3; i++ {
		art, err := f.LogArtifact("acme-ml", "training", "fraud-xgb", wandbfake.Artifact{Digest: sources.Itoa(int64(i)), CreatedBy: "alice"})
		r0(err)
		_, err = f.LinkVersion(coll, art, "alice")
		r0(err)
	}
	sameLines(t, "linked", r.poll(keys...), []string{
		"model.created " + m + "@ unknown",
		"version.created " + m + "@v0 alice",
		"version.created " + m + "@v1 alice",
		"version.created " + m + "@v2 alice",
	})

	r0(f.SetAlias(coll, 1, "production", "ci-bot"))
	sameLines(t, "v1 to production", r.poll(keys...), []string{
		"alias.set " + m + "@v1 " + actor("ci-bot") + " alias=production previous_version=",
		"production.changed " + m + "@ registrywatch",
		"promotion " + m + "@v1 registrywatch verdict=missing reason=no_evidence promoter=" + actor("ci-bot"),
	})
	r0(f.SetAlias(coll, 2, "production", "ci-bot"))
	sameLines(t, "moved to v2 without approval", r.poll(keys...), []string{
		"alias.set " + m + "@v2 " + actor("ci-bot") + " alias=production previous_version=v1",
		"production.changed " + m + "@ registrywatch",
		"promotion " + m + "@v2 registrywatch verdict=missing reason=no_evidence promoter=" + actor("ci-bot"),
	})
	r0(f.SetAlias(coll, 1, "production", "alice"))
	sameLines(t, "back to v1", r.poll(keys...), []string{
		"alias.set " + m + "@v1 " + actor("alice") + " alias=production previous_version=v2",
		"production.changed " + m + "@ registrywatch",
		"rollback " + m + "@v1 registrywatch verdict=missing reason=no_evidence promoter=" + actor("alice") + " result=met duration_ms=[0 0]",
	})
	r0(f.Unlink(coll, 0, "alice"))
	sameLines(t, "v0 unlinked", r.poll(keys...), []string{"version.deleted " + m + "@v0 unknown"})
	r0(f.RenameCollection(coll, "fraud-scoring"))
	renamed := r.poll(keys...)
	sameLines(t, "renamed", renamed, []string{"model.renamed acme-org/wandb-registry-model/fraud-scoring@ unknown"})

	// The model id stayed the collection's id through the rename.
	ids := map[string]bool{}
	err = r.led.Find(t.Context(), ledger.Query{Source: "wb"}, func(rec ledger.Record) error {
		if rec.ModelID != "" {
			ids[rec.ModelID] = true
		}
		return nil
	})
	r0(err)
	if len(ids) != 1 || !ids[coll] {
		t.Fatalf("model ids %v, want only %s", ids, coll)
	}
	if _, err := ledger.Verify(t.Context(), r.path, ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
		t.Fatal(err)
	}
}
