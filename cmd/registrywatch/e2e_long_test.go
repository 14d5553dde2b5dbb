package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// The commands the first-run scripts (testdata/e2e_*.txtar) use.
func init() {
	scriptCmds["fakemlflow"] = cmdFakeMLflow
	scriptCmds["exits"] = cmdExits
}

// cmdFakeMLflow: fakemlflow VAR [TOKEN] serves an MLflow registry holding
// model fraud v1 in Production until the script ends, and sets $VAR to its
// URL; with TOKEN, every request must carry it as a bearer token.
func cmdFakeMLflow(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: fakemlflow VAR [TOKEN]")
	}
	opts := mlflowfake.Options{}
	if len(args) == 2 {
		opts.Tokens = map[string]string{args[1]: "svc-registrywatch"}
	}
	reg := mlflowfake.New(opts)
	ts.Check(reg.CreateModel("fraud", mlflowfake.ModelSpec{}))
	_, err := reg.CreateVersion("fraud", mlflowfake.VersionSpec{})
	ts.Check(err)
	ts.Check(reg.TransitionStage("fraud", "1", mlflowfake.StageProduction, false))
	srv := reg.Start()
	ts.Defer(srv.Close)
	ts.Setenv(args[0], srv.URL)
}

// cmdExits: exits CODE PROG [ARGS] runs PROG as exec does (its output is
// what stdout and stderr then check) and fails unless it exits with CODE.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	code := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		code = ee.ExitCode()
	}
	if code != want {
		ts.Fatalf("%s exited %d, want %d", args[1], code, want)
	}
}

// e2eChange is a registry change the end-to-end run made: the ledger MUST
// hold exactly one entry of kind for source and model@version, whose payload
// has key = value when key is set.
type e2eChange struct {
	source, kind, model, version, key, value string
}

func (c e2eChange) String() string {
	return fmt.Sprintf("%s %s %s@%s %s=%s", c.source, c.kind, c.model, c.version, c.key, c.value)
}

func (c e2eChange) matches(r ledger.Record) bool {
	return r.Source == c.source && r.Kind == c.kind && r.Model == c.model && r.Version == c.version &&
		(c.key == "" || fmt.Sprint(r.Payload[c.key]) == c.value)
}

// e2eChangeKinds are the kinds of change entries the run can cause.
var e2eChangeKinds = []string{"version.created", "version.updated", "version.deleted", "stage.changed",
	"alias.set", "alias.removed", "tag.set", "tag.removed", "request.opened", "request.closed", "model.created"}

// TestLongEndToEnd runs the binary built from this package as a child
// process in real time (@every 1s) against fakes of MLflow, a Databricks
// workspace and W&B served by the test, with alerts to a fake Slack: it
// makes changes, kills the daemon with SIGKILL while more changes are being
// polled, restarts it, makes the last changes, and stops it with SIGTERM.
// Then the ledger verifies, every change is recorded exactly once and every
// promotion judged once, and the binary's own export and verify -bundle
// accept the evidence bundle.
func TestLongEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in real time")
	}
	bin := filepath.Join(t.TempDir(), "registrywatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	mlflow := mlflowfake.New(mlflowfake.Options{})
	databricks := mlflowfake.New(mlflowfake.Options{Databricks: true, Tokens: map[string]string{"dapi-e2e": "registrywatch@example.com"}})
	wandb := wandbfake.New(clock.Real{})
	wandb.SetAPIKey("e2e-key")
	slack := slackfake.New(slackfake.Options{})
	defer slack.Close()
	mlflowSrv, databricksSrv := mlflow.Start(), databricks.Start()
	defer mlflowSrv.Close()
	defer databricksSrv.Close()
	wandbSrv := httptest.NewServer(wandb)
	defer wandbSrv.Close()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// What the registries hold at the first start.
	must(mlflow.CreateModel("fraud", mlflowfake.ModelSpec{}))
	_, err := mlflow.CreateVersion("fraud", mlflowfake.VersionSpec{Tags: []mlflowfake.Tag{{Key: "approved_by", Value: "bob"}}})
	must(err)
	must(mlflow.TransitionStage("fraud", "1", mlflowfake.StageProduction, false))
	must(databricks.CreateModel("churn", mlflowfake.ModelSpec{User: "erin@example.com"}))
	_, err = databricks.CreateVersion("churn", mlflowfake.VersionSpec{User: "erin@example.com"})
	must(err)
	must(databricks.TransitionStage("churn", "1", mlflowfake.StageProduction, false))
	must(wandb.AddOrganization("acme", "acme-org"))
	must(wandb.AddTeam("acme-ml", "acme"))
	must(wandb.CreateRegistry("acme", "model", wandbfake.ProjectSpec{}))
	must(wandb.CreateProject("acme-ml", "training", wandbfake.ProjectSpec{}))
	coll, err := wandb.CreateCollection("acme-org", wandbfake.RegistryPrefix+"model", "recs", wandbfake.CollectionSpec{})
	must(err)
	link := func(n int) {
		t.Helper()
		art, err := wandb.LogArtifact("acme-ml", "training", "recs-model", wandbfake.Artifact{Digest: fmt.Sprintf("%032x", n), CreatedBy: "carol"})
		must(err)
		idx, err := wandb.LinkVersion(coll, art, "carol")
		must(err)
		if idx != n {
			t.Fatalf("linked v%d, want v%d", idx, n)
		}
	}
	link(0)
	must(wandb.SetAlias(coll, 0, "production", "ci-bot"))
	const recs = "acme-org/" + wandbfake.RegistryPrefix + "model/recs"

	sources := mlflowSource("mlflow-prod", mlflowSrv.URL) +
		fmt.Sprintf("  - name: databricks-ws\n    type: databricks\n    url: %s\n    token: dapi-e2e\n    schedule: \"@every 1s\"\n"+
			"    approval: { transition_requests: true }\n", databricksSrv.URL) +
		fmt.Sprintf("  - name: wandb-prod\n    type: wandb\n    url: %s\n    api_key: e2e-key\n    organization: acme\n    schedule: \"@every 1s\"\n"+
			"    approval: { alias: approved }\n    protected_aliases: [production, approved]\n", wandbSrv.URL)
	cfg, pub, db := longSetup(t, sources, "alerts:\n  slack:\n    webhook_url: "+slack.WebhookURL()+"\n")
	began := time.Now().UTC()

	var want []e2eChange
	recorded := func(c e2eChange) bool {
		for _, r := range records(t, db, ledger.Query{Source: c.source, Kind: c.kind}) {
			if c.matches(r) {
				return true
			}
		}
		return false
	}
	// change makes a change and records what it MUST leave in the ledger;
	// wait, when set, waits until the running daemon recorded all of it.
	change := func(wait bool, do func() error, expect ...e2eChange) {
		t.Helper()
		must(do())
		want = append(want, expect...)
		if wait {
			waitFor(t, func() bool {
				for _, c := range expect {
					if !recorded(c) {
						return false
					}
				}
				return true
			})
		}
	}
	baselined := func() bool {
		return len(records(t, db, ledger.Query{Kind: "snapshot"})) >= 3
	}

	// First run: a promotion in each registry.
	first := startChild(t, bin, "run", "-config", cfg)
	first.waitRunning()
	waitFor(t, baselined)
	change(true, func() error { _, err := mlflow.CreateVersion("fraud", mlflowfake.VersionSpec{}); return err },
		e2eChange{"mlflow-prod", "version.created", "fraud", "2", "", ""})
	change(true, func() error { return mlflow.SetVersionTag("fraud", "2", "approved_by", "bob") },
		e2eChange{"mlflow-prod", "tag.set", "fraud", "2", "value", "bob"})
	change(true, func() error { return mlflow.TransitionStage("fraud", "2", mlflowfake.StageProduction, true) },
		e2eChange{"mlflow-prod", "stage.changed", "fraud", "2", "to", "Production"},
		e2eChange{"mlflow-prod", "stage.changed", "fraud", "1", "to", "Archived"})
	change(true, func() error { link(1); return nil }, e2eChange{"wandb-prod", "version.created", recs, "v1", "", ""})
	change(true, func() error { return wandb.SetAlias(coll, 1, "production", "ci-bot") },
		e2eChange{"wandb-prod", "alias.set", recs, "v1", "alias", "production"})
	change(true, func() error {
		_, err := databricks.CreateVersion("churn", mlflowfake.VersionSpec{User: "erin@example.com"})
		return err
	}, e2eChange{"databricks-ws", "version.created", "churn", "2", "", ""})

	// More changes, and SIGKILL while the daemon polls them.
	change(false, func() error {
		_, err := databricks.CreateTransitionRequest("erin@example.com", "churn", "2", mlflowfake.StageProduction, "")
		return err
	}, e2eChange{"databricks-ws", "request.opened", "churn", "2", "to_stage", "Production"})
	change(false, func() error { _, err := mlflow.CreateVersion("fraud", mlflowfake.VersionSpec{}); return err },
		e2eChange{"mlflow-prod", "version.created", "fraud", "3", "", ""})
	change(false, func() error { return wandb.SetAlias(coll, 1, "approved", "bob") },
		e2eChange{"wandb-prod", "alias.set", recs, "v1", "alias", "approved"})
	time.Sleep(time.Duration(200+rand.IntN(1600)) * time.Millisecond)
	must(first.cmd.Process.Kill())
	if code := first.wait(10 * time.Second); code != -1 {
		t.Fatalf("SIGKILL: exit %d, want killed\n%s", code, first.output())
	}
	verifyLedger(t, db, pub)

	// Second run: what changed around the kill is recorded once, then the
	// request is approved.
	second := startChild(t, bin, "run", "-config", cfg)
	second.waitRunning()
	waitFor(t, func() bool {
		for _, c := range want {
			if !recorded(c) {
				return false
			}
		}
		return true
	})
	change(true, func() error {
		_, err := databricks.ApproveTransitionRequest("frank@example.com", "churn", "2", mlflowfake.StageProduction, true, "")
		return err
	}, e2eChange{"databricks-ws", "request.closed", "churn", "2", "to_stage", "Production"},
		e2eChange{"databricks-ws", "stage.changed", "churn", "2", "to", "Production"},
		e2eChange{"databricks-ws", "stage.changed", "churn", "1", "to", "Archived"})
	change(true, func() error { return mlflow.SetVersionTag("fraud", "3", "owner", "alice") },
		e2eChange{"mlflow-prod", "tag.set", "fraud", "3", "value", "alice"})
	waitFor(t, func() bool { // every alert delivered
		led, err := ledger.OpenReadOnly(db)
		if err != nil {
			return false
		}
		defer led.Close()
		items, err := led.Outbox(t.Context())
		return err == nil && len(items) == 0
	})
	must(second.cmd.Process.Signal(syscall.SIGTERM))
	if code := second.wait(20 * time.Second); code != exitOK {
		t.Fatalf("SIGTERM: exit %d\n%s", code, second.output())
	}

	// The ledger verifies; each change is recorded exactly once and nothing
	// else changed; each promotion is judged once.
	rep := verifyLedger(t, db, pub)
	changes := records(t, db, ledger.Query{Kinds: e2eChangeKinds})
	for _, c := range want {
		n := 0
		for _, r := range changes {
			if c.matches(r) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s recorded %d times", c, n)
		}
	}
	if len(changes) != len(want) {
		t.Errorf("%d change entries for %d changes made", len(changes), len(want))
	}
	promoted := map[string]int{}
	for _, r := range records(t, db, ledger.Query{Kind: ledger.KindPromotion}) {
		if r.Payload["supersedes"] == "" {
			promoted[r.Source+" "+r.Model+"@"+r.Version]++
		}
	}
	wantPromoted := map[string]int{"mlflow-prod fraud@2": 1, "wandb-prod " + recs + "@v1": 1, "databricks-ws churn@2": 1}
	if fmt.Sprint(promoted) != fmt.Sprint(wantPromoted) {
		t.Errorf("promotions judged %v, want %v", promoted, wantPromoted)
	}

	// The binary exports the run and verifies the bundle.
	bundle := filepath.Join(t.TempDir(), "bundle.zip")
	pubPath := filepath.Join(filepath.Dir(db), "ledger.pub")
	from, to := began.Add(-time.Hour).Format(time.RFC3339), time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	for _, args := range [][]string{
		{"verify", "-ledger", db, "-key", pubPath},
		{"export", "-config", cfg, "-from", from, "-to", to, "-out", bundle, "-key", pubPath},
		{"verify", "-bundle", bundle, "-key", pubPath},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("registrywatch %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("registrywatch %s:\n%s", args[0], out)
	}
	if fi, err := os.Stat(bundle); err != nil || fi.Size() == 0 {
		t.Fatalf("no bundle: %v", err)
	}
	t.Logf("%d changes recorded once each across a SIGKILL; ledger of %d entries verifies; %d Slack messages",
		len(want), rep.Entries, len(slack.Messages()))
}
