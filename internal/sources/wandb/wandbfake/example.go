package wandbfake

import (
	"errors"
	"fmt"
)

// Example holds the IDs of the objects LoadExample creates.
type Example struct {
	// Collection is acme-org/wandb-registry-model/fraud-detector.
	Collection string
	// Churn is acme-org/wandb-registry-model/churn-model (no versions).
	Churn string
	// Legacy is acme-ml/model-registry/fraud-detector.
	Legacy string
	// Artifacts are the source artifacts fraud-xgb v7, v8 and v9.
	Artifacts [3]string
}

// LoadExample loads the scenario of the recorded W&B responses: organization
// acme (entity acme-org) with registries model and dataset, team acme-ml with
// the training project fraud-training and the legacy model-registry; registry
// collection fraud-detector with v0 <- fraud-xgb:v7, v1 <- v8 (staging) and
// v2 <- v9 (production, moved from v1 by the service account acme-ml-ci-bot);
// an empty churn-model; legacy fraud-detector with v0 <- v7 and v1 <- v8
// (production) and an empty aml-ranker. Timestamps are the clock's.
func (s *Server) LoadExample() (Example, error) {
	var ex Example
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	s.AddUser(User{Username: "alice", Name: "Alice Chen", Email: "alice@acme.example"})
	s.AddUser(User{Username: "bob", Name: "Bob Okafor", Email: "bob@acme.example"})
	s.AddUser(User{Username: "acme-ml-ci-bot", Service: true})
	check(s.AddOrganization("acme", "acme-org"))
	check(s.AddTeam("acme-ml", "acme"))
	check(s.CreateRegistry("acme", "model", ProjectSpec{Description: "Production model registry", Access: "PRIVATE", ArtifactTypes: []string{"model"}}))
	check(s.CreateRegistry("acme", "dataset", ProjectSpec{Description: "Curated datasets", Access: "RESTRICTED", ArtifactTypes: []string{"dataset"}}))
	check(s.CreateProject("acme-ml", "fraud-training", ProjectSpec{}))
	check(s.CreateProject("acme-ml", "model-registry", ProjectSpec{}))
	for _, u := range [][2]string{{"alice", "admin"}, {"bob", "member"}, {"acme-ml-ci-bot", "member"}} {
		check(s.AddRegistryMember("acme-org", RegistryPrefix+"model", u[0], u[1]))
	}
	s.SetProtectedAliases("acme-ml", []string{"production", "staging"}, []string{"alice"})
	if len(errs) > 0 {
		return ex, errors.Join(errs...)
	}

	for i := range 7 {
		_, err := s.LogArtifact("acme-ml", "fraud-training", "fraud-xgb", Artifact{
			Digest: fmt.Sprintf("%032x", i), Run: fmt.Sprintf("run%04d", i), CreatedBy: "alice", Size: 1, FileCount: 1,
		})
		check(err)
	}
	logged := []Artifact{
		{Digest: "9f2b4c1d7e6a5b3c2d1e0f9a8b7c6d5e", Description: "XGBoost fraud classifier",
			Metadata: `{"auc": 0.921, "framework": "xgboost", "git_sha": "a1b2c3d"}`, Run: "1a2b3c4d",
			RunDisplayName: "bold-river-35", CreatedBy: "alice", CommitHash: "a1b2c3d4e5f6a7b8c9d0",
			Size: 48211931, FileCount: 3, HistoryStep: 1207},
		{Digest: "3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f", Description: "XGBoost fraud classifier",
			Metadata: `{"auc": 0.934, "framework": "xgboost", "git_sha": "b2c3d4e"}`, Run: "8w2m1qz7",
			RunDisplayName: "misty-pond-38", CreatedBy: "alice", CommitHash: "b2c3d4e5f6a7b8c9d0e1",
			Size: 48530112, FileCount: 3, HistoryStep: 1208},
		{Digest: "7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b", Description: "XGBoost fraud classifier",
			Metadata: `{"auc": 0.947, "framework": "xgboost", "git_sha": "c3d4e5f"}`, CreatedBy: "bob",
			Tags: []string{"tier-1"}, CommitHash: "c3d4e5f6a7b8c9d0e1f2", Size: 48602227, FileCount: 3, HistoryStep: 1209},
	}
	for i, a := range logged {
		id, err := s.LogArtifact("acme-ml", "fraud-training", "fraud-xgb", a)
		check(err)
		ex.Artifacts[i] = id
	}
	var err error
	ex.Collection, err = s.CreateCollection("acme-org", RegistryPrefix+"model", "fraud-detector",
		CollectionSpec{Description: "Card-fraud scoring model", Tags: []string{"tier-1"}})
	check(err)
	ex.Churn, err = s.CreateCollection("acme-org", RegistryPrefix+"model", "churn-model", CollectionSpec{})
	check(err)
	ex.Legacy, err = s.CreateCollection("acme-ml", "model-registry", "fraud-detector", CollectionSpec{Description: "Legacy registered model"})
	check(err)
	_, err = s.CreateCollection("acme-ml", "model-registry", "aml-ranker", CollectionSpec{})
	check(err)
	if len(errs) > 0 {
		return ex, errors.Join(errs...)
	}

	steps := []func() error{
		func() error { _, err := s.LinkVersion(ex.Legacy, ex.Artifacts[0], "alice"); return err },
		func() error { _, err := s.LinkVersion(ex.Legacy, ex.Artifacts[1], "alice"); return err },
		func() error { return s.SetAlias(ex.Legacy, 1, "production", "alice") },
		func() error { _, err := s.LinkVersion(ex.Collection, ex.Artifacts[0], "alice"); return err },
		func() error { _, err := s.LinkVersion(ex.Collection, ex.Artifacts[1], "alice"); return err },
		func() error { return s.SetAlias(ex.Collection, 1, "staging", "bob") },
		func() error { return s.SetAlias(ex.Collection, 1, "production", "alice") },
		func() error { _, err := s.LinkVersion(ex.Collection, ex.Artifacts[2], "acme-ml-ci-bot"); return err },
		func() error { return s.SetAlias(ex.Collection, 2, "production", "acme-ml-ci-bot") },
	}
	for _, step := range steps {
		check(step())
	}
	return ex, errors.Join(errs...)
}
