package daemon

import (
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// mlflowRig is a Poller over a fake MLflow or Databricks workspace registry.
type mlflowRig struct {
	*pollRig
	fake *mlflowfake.Server
}

func newMLflowRig(t *testing.T, typ string, approval config.SourceApproval) *mlflowRig {
	clk := clock.NewFake(time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk, Databricks: typ == sources.TypeDatabricks, DefaultUser: "svc-ci@example.com"})
	srv := fake.Start()
	t.Cleanup(srv.Close)
	cfg := config.Source{
		Name: "dbx", Type: typ, URL: srv.URL, Timeout: config.Duration(time.Hour), Concurrency: 4,
		Production: config.Production{Stages: []string{"Production"}}, Approval: approval,
	}
	client, err := mlflow.New(cfg, mlflow.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &mlflowRig{pollRig: newPollRig(t, clk, client, cfg), fake: fake}
}

// TestDatabricksTransitionRequests is the golden list of the Databricks
// workspace registry with approval by transition requests.
func TestDatabricksTransitionRequests(t *testing.T) {
	r := newMLflowRig(t, sources.TypeDatabricks, config.SourceApproval{TransitionRequests: true})
	f := r.fake
	keys := []string{"from", "to", "to_stage", "requester", "verdict", "reason", "order", "approver", "result"}

	r.must(f.CreateModel("fraud", mlflowfake.ModelSpec{}))
	_, err := f.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "dbfs:/m/1"})
	r.must(err)
	sameLines(t, "baseline", r.poll(keys...), []string{
		"baseline fraud@ unknown",
		"baseline fraud@1 unknown",
	})

	// carol requests Production; dave approves it: one poll sees the request
	// and one sees it vanish with the stage change (approval evidence).
	r.clk.Advance(time.Second)
	_, err = f.CreateTransitionRequest("carol@example.com", "fraud", "1", "Production", "CHG-1")
	r.must(err)
	sameLines(t, "request opened", r.poll(keys...), []string{
		"request.opened fraud@1 carol@example.com to_stage=Production requester=carol@example.com",
	})
	r.clk.Advance(time.Second)
	_, err = f.ApproveTransitionRequest("dave@example.com", "fraud", "1", "Production", true, "ok")
	r.must(err)
	sameLines(t, "approved", r.poll(keys...), []string{
		"request.closed fraud@1 unknown to_stage=Production requester=carol@example.com",
		"stage.changed fraud@1 unknown from=None to=Production",
		"production.changed fraud@ registrywatch",
		"promotion fraud@1 registrywatch verdict=approved reason= order= approver=unknown",
	})

	// A direct transition without a request skips approval.
	r.clk.Advance(time.Second)
	_, err = f.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "dbfs:/m/2"})
	r.must(err)
	r.poll()
	r.clk.Advance(time.Second)
	r.must(f.TransitionStage("fraud", "2", "Production", true))
	sameLines(t, "direct", r.poll(keys...), []string{
		"stage.changed fraud@1 unknown from=Production to=Archived",
		"stage.changed fraud@2 unknown from=None to=Production",
		"production.changed fraud@ registrywatch",
		"promotion fraud@2 registrywatch verdict=missing reason=no_evidence order= approver=",
	})

	// The older version goes back to Staging (requests are listed for
	// versions that are not Archived), then a request to bring it back to
	// Production starts the rollback clock; it is approved 10 minutes later:
	// the rollback lasted from the request.
	r.clk.Advance(time.Second)
	r.must(f.TransitionStage("fraud", "1", "Staging", false))
	r.poll()
	r.clk.Advance(time.Second)
	_, err = f.CreateTransitionRequest("carol@example.com", "fraud", "1", "Production", "rollback, INC-4")
	r.must(err)
	sameLines(t, "rollback requested", r.poll(keys...), []string{
		"request.opened fraud@1 carol@example.com to_stage=Production requester=carol@example.com",
	})
	r.clk.Advance(10 * time.Minute)
	_, err = f.ApproveTransitionRequest("dave@example.com", "fraud", "1", "Production", true, "")
	r.must(err)
	sameLines(t, "rollback approved", r.poll(append(keys, "duration_ms")...), []string{
		"request.closed fraud@1 unknown to_stage=Production requester=carol@example.com",
		"stage.changed fraud@1 unknown from=Staging to=Production",
		"stage.changed fraud@2 unknown from=Production to=Archived",
		"production.changed fraud@ registrywatch",
		"rollback fraud@1 registrywatch verdict=approved reason= order= approver=unknown result=met duration_ms=[660000 660000]",
	})

	// A rejected request just disappears: no evidence, no finding.
	r.clk.Advance(time.Second)
	_, err = f.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "dbfs:/m/3"})
	r.must(err)
	r.must(f.TransitionStage("fraud", "3", "Staging", false))
	r.poll()
	_, err = f.CreateTransitionRequest("carol@example.com", "fraud", "3", "Production", "")
	r.must(err)
	r.poll()
	r.clk.Advance(time.Second)
	_, err = f.RejectTransitionRequest("erin@example.com", "fraud", "3", "Production", "no")
	r.must(err)
	sameLines(t, "rejected", r.poll(keys...), []string{
		"request.closed fraud@3 unknown to_stage=Production requester=carol@example.com",
	})
	if _, err := ledger.Verify(t.Context(), r.path, ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
		t.Fatal(err)
	}
}
