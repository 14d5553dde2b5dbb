package demo

import (
	"fmt"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
	sm "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// storyStart is when the demo's fake clock starts and registrywatch takes its
// first look at the registries: a fixed time, so every run tells the same
// story at the same times.
var storyStart = time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)

// oct returns the time hh:mm on day d of October 2026 (UTC).
func oct(d, hh, mm int) time.Time { return time.Date(2026, 10, d, hh, mm, 0, 0, time.UTC) }

// step is one thing a person or a pipeline does in a registry: at a time,
// in a source, described as it would be told, done on the fakes.
type step struct {
	at     time.Time
	source string
	what   string
	do     func(w *world) error
}

// The people of the story. MLflow open source records no one; the other
// registries name them as shown.
var (
	pipeline = sm.AssumedRole("mlops-pipeline", "build-4812") // a CI role session, no person behind it
	bobAWS   = sm.AssumedRole("MLReviewer", "bob").WithSourceIdentity("bob@example.com")
	aliceAWS = sm.AssumedRole("MLEngineer", "alice").WithSourceIdentity("alice@example.com")
)

// cloudTrailLag is how late CloudTrail shows bob's approval of credit-risk
// v1 (CloudTrail lags the registry by minutes); the step says so.
const cloudTrailLag = 12 * time.Minute

// setting is what the registries hold when registrywatch is deployed, at
// storyStart: a baseline, judged by no one.
var setting = []step{
	{storyStart, mlflowProd, "fraud-detector v1 serves in Production, approved by bob", func(w *world) error {
		if err := w.mlflow.CreateModel("fraud-detector", mlflowfake.ModelSpec{Description: "card fraud scoring"}); err != nil {
			return err
		}
		if _, err := w.mlflow.CreateVersion("fraud-detector", mlflowVersion("fraud-detector", 1, "approved_by", "bob")); err != nil {
			return err
		}
		return w.mlflow.TransitionStage("fraud-detector", "1", mlflowfake.StageProduction, false)
	}},
	{storyStart, databricksWS, "churn-predictor v1 serves in Production", func(w *world) error {
		if err := w.databricks.CreateModel("churn-predictor", mlflowfake.ModelSpec{User: "erin@example.com"}); err != nil {
			return err
		}
		if _, err := w.databricks.CreateVersion("churn-predictor", databricksVersion(1)); err != nil {
			return err
		}
		return w.databricks.TransitionStage("churn-predictor", "1", mlflowfake.StageProduction, false)
	}},
	{storyStart, sagemakerProd, "the model package group credit-risk is empty", func(w *world) error {
		_, err := w.sagemaker.CreateGroup("credit-risk", "credit limit decisions")
		return err
	}},
	{storyStart, wandbProd, "recommender v0 holds the production and approved aliases", func(w *world) error {
		w.wandb.AddUser(wandbfake.User{Username: "carol", Email: "carol@example.com"})
		w.wandb.AddUser(wandbfake.User{Username: "bob", Email: "bob@example.com"})
		w.wandb.AddUser(wandbfake.User{Username: "ci-bot", Service: true})
		for _, err := range []error{
			w.wandb.AddOrganization(wandbOrg, wandbOrgOwner),
			w.wandb.AddTeam(wandbTeam, wandbOrg),
			w.wandb.CreateRegistry(wandbOrg, "model", wandbfake.ProjectSpec{ArtifactTypes: []string{"model"}}),
			w.wandb.CreateProject(wandbTeam, wandbProject, wandbfake.ProjectSpec{}),
		} {
			if err != nil {
				return err
			}
		}
		coll, err := w.wandb.CreateCollection(wandbOrgOwner, wandbRegistry, "recommender", wandbfake.CollectionSpec{Description: "home page recommendations"})
		if err != nil {
			return err
		}
		if err := wandbLink(w, "carol", 0); err != nil {
			return err
		}
		if err := w.wandb.SetAlias(coll, 0, "approved", "bob"); err != nil {
			return err
		}
		return w.wandb.SetAlias(coll, 0, "production", "ci-bot")
	}},
}

// story is what happens over three days, in time order. registrywatch polls
// every registry every five minutes meanwhile.
var story = []step{
	// Thursday: MLflow open source.
	{oct(1, 9, 12), mlflowProd, "the training pipeline registers fraud-detector v2", func(w *world) error {
		_, err := w.mlflow.CreateVersion("fraud-detector", mlflowVersion("fraud-detector", 2))
		return err
	}},
	{oct(1, 9, 31), mlflowProd, "bob reviews fraud-detector v2 and tags it approved_by=bob", func(w *world) error {
		return w.mlflow.SetVersionTag("fraud-detector", "2", "approved_by", "bob")
	}},
	{oct(1, 9, 47), mlflowProd, "alice promotes fraud-detector v2 to Production (v1 is archived)", func(w *world) error {
		return w.mlflow.TransitionStage("fraud-detector", "2", mlflowfake.StageProduction, true)
	}},
	{oct(1, 11, 2), mlflowProd, "the training pipeline registers fraud-detector v3", func(w *world) error {
		_, err := w.mlflow.CreateVersion("fraud-detector", mlflowVersion("fraud-detector", 3))
		return err
	}},
	{oct(1, 11, 16), mlflowProd, "alice promotes fraud-detector v3 to Production without approval", func(w *world) error {
		return w.mlflow.TransitionStage("fraud-detector", "3", mlflowfake.StageProduction, true)
	}},
	{oct(1, 13, 41), mlflowProd, "bob approves fraud-detector v3 after the fact: approved_by=bob", func(w *world) error {
		return w.mlflow.SetVersionTag("fraud-detector", "3", "approved_by", "bob")
	}},
	{oct(1, 15, 3), mlflowProd, "dave, on call, sees v3 misfire and tags it rollback_requested=INC-2041", func(w *world) error {
		return w.mlflow.SetVersionTag("fraud-detector", "3", "rollback_requested", "INC-2041")
	}},
	{oct(1, 15, 14), mlflowProd, "dave rolls fraud-detector back to v2 in Production (v3 is archived)", func(w *world) error {
		return w.mlflow.TransitionStage("fraud-detector", "2", mlflowfake.StageProduction, true)
	}},

	// Friday: Databricks and SageMaker.
	{oct(2, 9, 4), databricksWS, "erin registers churn-predictor v2", func(w *world) error {
		_, err := w.databricks.CreateVersion("churn-predictor", databricksVersion(2))
		return err
	}},
	{oct(2, 9, 18), databricksWS, "erin requests the transition of churn-predictor v2 to Production", func(w *world) error {
		_, err := w.databricks.CreateTransitionRequest("erin@example.com", "churn-predictor", "2", mlflowfake.StageProduction, "CHG-7731: retrained on September data")
		return err
	}},
	{oct(2, 9, 52), databricksWS, "frank approves erin's request: v2 goes to Production (v1 is archived)", func(w *world) error {
		_, err := w.databricks.ApproveTransitionRequest("frank@example.com", "churn-predictor", "2", mlflowfake.StageProduction, true, "reviewed CHG-7731")
		return err
	}},
	{oct(2, 10, 6), sagemakerProd, "the build pipeline registers credit-risk v1, pending manual approval", func(w *world) error {
		_, err := w.sagemaker.CreatePackage("credit-risk", sm.PendingManualApproval, pipeline)
		return err
	}},
	{oct(2, 10, 33), sagemakerProd, "bob approves credit-risk v1 (CloudTrail shows it 12 minutes later)", func(w *world) error {
		w.sagemaker.SetCloudTrailDelay(cloudTrailLag)
		defer w.sagemaker.SetCloudTrailDelay(0)
		return w.sagemaker.UpdateApproval(w.sagemaker.PackageARN("credit-risk", 1), sm.Approved, "backtest ok, CHG-7740", bobAWS)
	}},
	{oct(2, 13, 8), sagemakerProd, "the build pipeline registers credit-risk v2 already Approved, skipping review", func(w *world) error {
		_, err := w.sagemaker.CreatePackage("credit-risk", sm.Approved, pipeline)
		return err
	}},
	{oct(2, 14, 21), databricksWS, "erin pulls churn-predictor v2 out of Production: nothing serves", func(w *world) error {
		return w.databricks.TransitionStage("churn-predictor", "2", mlflowfake.StageArchived, false)
	}},
	{oct(2, 15, 2), databricksWS, "erin requests churn-predictor v1 back to Production", func(w *world) error {
		if err := w.databricks.TransitionStage("churn-predictor", "1", mlflowfake.StageStaging, false); err != nil {
			return err
		}
		_, err := w.databricks.CreateTransitionRequest("erin@example.com", "churn-predictor", "1", mlflowfake.StageProduction, "INC-2057: roll back")
		return err
	}},
	{oct(2, 15, 26), databricksWS, "frank approves: churn-predictor v1 serves again", func(w *world) error {
		_, err := w.databricks.ApproveTransitionRequest("frank@example.com", "churn-predictor", "1", mlflowfake.StageProduction, false, "")
		return err
	}},
	{oct(2, 16, 4), sagemakerProd, "alice registers credit-risk v3, pending manual approval", func(w *world) error {
		_, err := w.sagemaker.CreatePackage("credit-risk", sm.PendingManualApproval, aliceAWS)
		return err
	}},
	{oct(2, 16, 22), sagemakerProd, "alice approves her own credit-risk v3", func(w *world) error {
		return w.sagemaker.UpdateApproval(w.sagemaker.PackageARN("credit-risk", 3), sm.Approved, "lgtm", aliceAWS)
	}},

	// Saturday: Weights & Biases.
	{oct(3, 9, 7), wandbProd, "carol logs recommender v1 and links it to the model registry", func(w *world) error {
		return wandbLink(w, "carol", 1)
	}},
	{oct(3, 9, 35), wandbProd, "bob moves the approved alias from recommender v0 to v1", func(w *world) error {
		return wandbAlias(w, 1, "approved", "bob")
	}},
	{oct(3, 10, 2), wandbProd, "ci-bot moves the production alias from recommender v0 to v1", func(w *world) error {
		return wandbAlias(w, 1, "production", "ci-bot")
	}},
}

// storyEnd is when the story stops: two polls after the last step.
var storyEnd = oct(3, 10, 15)

// mlflowVersion describes version n of an MLflow model, with tags given as
// key, value pairs.
func mlflowVersion(model string, n int, tags ...string) mlflowfake.VersionSpec {
	spec := mlflowfake.VersionSpec{Source: fmt.Sprintf("s3://acme-models/%s/%d", model, n), RunID: fmt.Sprintf("run%04d", 4000+n)}
	for i := 0; i+1 < len(tags); i += 2 {
		spec.Tags = append(spec.Tags, mlflowfake.Tag{Key: tags[i], Value: tags[i+1]})
	}
	return spec
}

// databricksVersion describes version n of churn-predictor, registered by
// erin.
func databricksVersion(n int) mlflowfake.VersionSpec {
	return mlflowfake.VersionSpec{Source: fmt.Sprintf("dbfs:/models/churn-predictor/%d", n), User: "erin@example.com"}
}

// wandbLink logs artifact version n of the recommender training run as
// user and links it to the registry collection as v<n>.
func wandbLink(w *world, user string, n int) error {
	coll, err := w.wandb.CollectionID(wandbOrgOwner, wandbRegistry, "recommender")
	if err != nil {
		return err
	}
	art, err := w.wandb.LogArtifact(wandbTeam, wandbProject, "recommender-two-tower", wandbfake.Artifact{
		Digest: fmt.Sprintf("d41d8cd98f00b204e9800998ecf8427%d", n), Run: fmt.Sprintf("train-%d", 100+n), CreatedBy: user,
	})
	if err != nil {
		return err
	}
	idx, err := w.wandb.LinkVersion(coll, art, user)
	if err == nil && idx != n {
		err = fmt.Errorf("recommender: linked as v%d, want v%d", idx, n)
	}
	return err
}

// wandbAlias points alias at recommender v<n> as user.
func wandbAlias(w *world, n int, alias, user string) error {
	coll, err := w.wandb.CollectionID(wandbOrgOwner, wandbRegistry, "recommender")
	if err != nil {
		return err
	}
	return w.wandb.SetAlias(coll, n, alias, user)
}
