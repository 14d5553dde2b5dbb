package demo

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// wantFindings is every finding the story must leave in the ledger, and
// nothing else: "[observed] source kind model@version verdict/reason/order
// result promoter=… approver=… severity=…", then what it supersedes.
var wantFindings = []string{
	// MLflow open source names no one: the promoter is unknown, the approver
	// is the approved_by tag.
	"[Oct 01 09:50] mlflow-prod promotion fraud-detector@2 approved promoter=unknown approver=bob severity=",
	"[Oct 01 11:20] mlflow-prod promotion fraud-detector@3 missing/no_evidence promoter=unknown approver= severity=danger",
	"[Oct 01 13:45] mlflow-prod promotion fraud-detector@3 late promoter=unknown approver=bob severity=warning supersedes promotion fraud-detector@3 missing",
	// Rolled back to v2, whose approval it inherits, 9 to 14 minutes after
	// the rollback_requested tag: within the 30 minute objective.
	"[Oct 01 15:15] mlflow-prod rollback fraud-detector@2 approved met [540000 840000] promoter=unknown approver=bob severity=info",
	// Databricks: the request that disappeared with the stage change is the
	// approval; the registry never says who approved.
	"[Oct 02 09:55] databricks-ws promotion churn-predictor@2 approved promoter=unknown approver=unknown severity=",
	// SageMaker: CloudTrail names bob 12 minutes after his approval.
	"[Oct 02 10:35] sagemaker-prod promotion credit-risk@1 approved promoter=unknown approver=unknown severity=",
	"[Oct 02 10:45] sagemaker-prod promotion credit-risk@1 approved promoter=bob@example.com approver=bob@example.com severity= supersedes promotion credit-risk@1 approved",
	"[Oct 02 13:10] sagemaker-prod promotion credit-risk@2 missing/created_approved promoter=arn:aws:sts::111122223333:assumed-role/mlops-pipeline/build-4812 approver= severity=danger",
	// Nothing served churn-predictor from 14:21: the objective passed at
	// 14:51, and v1 served again at 15:26.
	"[Oct 02 14:51] databricks-ws rollback.overdue churn-predictor@2  promoter= approver= severity=danger",
	"[Oct 02 15:30] databricks-ws rollback churn-predictor@1 approved overrun [3900000 3900000] promoter=unknown approver=unknown severity=danger",
	"[Oct 02 16:25] sagemaker-prod promotion credit-risk@3 self_approved promoter=alice@example.com approver=alice@example.com severity=danger",
	// W&B's action history names who moved each alias.
	"[Oct 03 10:05] wandb-prod promotion acme-org/wandb-registry-model/recommender@v1 approved promoter=ci-bot approver=bob severity=",
}

// TestDemo plays the whole demo into a temporary directory and checks what
// it leaves there against the ledger itself: the exact findings, one line
// of slack.jsonl per message the daemon recorded as delivered, a bundle and
// a ledger that verify with the public key, and the tour's pointers.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := Run(t.Context(), Options{Dir: dir, Out: &out, Logger: logger})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, name := range []string{ConfigFile, LedgerFile, KeyFile, PublicKeyFile, SlackFile,
		filepath.Join(BundleDir, "manifest.json"), filepath.Join(BundleDir, "manifest.sig"), filepath.Join(BundleDir, "report.html")} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("demo left no %s: %v", name, err)
		}
	}
	if fi, err := os.Stat(res.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ledger.key: %v, mode %v", err, fi.Mode())
	}
	pub, err := ledger.ReadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, filepath.Join(dir, LedgerFile))

	t.Run("findings", func(t *testing.T) {
		if diff := cmp.Diff(wantFindings, findingLines(recs)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	t.Run("slack.jsonl", func(t *testing.T) {
		delivered, posted := 0, 0
		for _, r := range recs {
			switch {
			case r.Kind == alerts.KindDelivered:
				delivered++
			case r.Kind == daemon.KindCheckpointPublished && slices.Contains(anyStrings(r.Payload["where"]), daemon.WhereSlack):
				posted++
			}
		}
		if delivered != 7 || posted != 2 {
			t.Errorf("ledger records %d alerts delivered and %d checkpoints posted to Slack, want 7 and 2", delivered, posted)
		}
		lines := jsonLines(t, filepath.Join(dir, SlackFile))
		if len(lines) != delivered+posted {
			t.Fatalf("slack.jsonl has %d lines, the ledger records %d alerts and %d checkpoints sent", len(lines), delivered, posted)
		}
		alerted := 0
		for i, m := range lines {
			text, _ := m["text"].(string)
			body, _ := m["body"].(map[string]any)
			switch {
			case text == "" || body == nil || m["ts"] == "":
				t.Errorf("slack.jsonl line %d lacks text, body or ts: %v", i+1, m)
			case strings.HasPrefix(text, "registrywatch checkpoint of "):
			default:
				alerted++
			}
		}
		if alerted != delivered {
			t.Errorf("slack.jsonl holds %d alerts, the ledger records %d delivered", alerted, delivered)
		}
		if res.Tour.Messages != len(lines) || res.Tour.Alerts["danger"] != 5 || res.Tour.Alerts["warning"] != 1 || res.Tour.Alerts["info"] != 1 {
			t.Errorf("tour counts %d messages, alerts %v", res.Tour.Messages, res.Tour.Alerts)
		}
	})

	t.Run("verify", func(t *testing.T) {
		rep, err := ledger.Verify(t.Context(), res.Ledger, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}})
		if err != nil || !rep.OK() || rep.Entries != int64(len(recs)) {
			t.Fatalf("ledger verify: %v %+v", err, rep)
		}
		brep, err := export.VerifyBundle(t.Context(), res.Bundle, export.VerifyOptions{Keys: []crypto.PublicKey{pub}})
		if err != nil || !brep.OK() {
			t.Fatalf("bundle verify: %v", err)
		}
		if brep.Events != int64(len(recs)) || !brep.Manifest.Complete {
			t.Errorf("the bundle proves %d entries (complete %v), the ledger holds %d", brep.Events, brep.Manifest.Complete, len(recs))
		}
	})

	t.Run("config", func(t *testing.T) {
		b, err := os.ReadFile(res.Config)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("${")) {
			t.Errorf("%s still holds a variable:\n%s", ConfigFile, b)
		}
		cfg, err := config.Load(res.Config, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Ledger.Path != res.Ledger || len(cfg.Sources) != 4 {
			t.Errorf("config: ledger %s, %d sources", cfg.Ledger.Path, len(cfg.Sources))
		}
	})

	t.Run("tour", func(t *testing.T) {
		text := out.String()
		for _, want := range []string{
			"[Oct 01 11:16] mlflow-prod: alice promotes fraud-detector v3 to Production without approval\n",
			"[Oct 01 11:20]   slack #ml-audit DANGER promotion without approval: fraud-detector@3 (mlflow-prod)\n",
			"[Oct 02 14:51]   slack #ml-oncall DANGER rollback overdue: churn-predictor@2 (databricks-ws)\n",
			"  registrywatch verify -ledger " + res.Ledger + " -key " + res.PublicKey + "\n",
			"  registrywatch log -ledger " + res.Ledger + "\n",
			"  registrywatch verify -bundle " + res.Bundle + " -key " + res.PublicKey + "\n",
			"  openssl pkeyutl -verify -pubin -inkey " + res.PublicKey + " -rawin -in " + filepath.Join(res.Bundle, "manifest.json") +
				" -sigfile " + filepath.Join(res.Bundle, "manifest.sig") + "\n",
			"The demo's directory: " + res.Dir + "\n",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the output lacks %q", want)
			}
		}
	})

	t.Run("again without force", func(t *testing.T) {
		_, err := Run(t.Context(), Options{Dir: dir})
		if !errors.Is(err, ErrDirNotEmpty) {
			t.Fatalf("second run: %v, want ErrDirNotEmpty", err)
		}
		if got := records(t, filepath.Join(dir, LedgerFile)); len(got) != len(recs) {
			t.Errorf("the refused run changed the ledger: %d entries, had %d", len(got), len(recs))
		}
	})
}

// TestForceKeepsOtherFiles: -force removes only the files a demo writes.
func TestForceKeepsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{ConfigFile, LedgerFile, ledgerWALFile, SlackFile, "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, BundleDir, "samples"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareDir(dir, false); !errors.Is(err, ErrDirNotEmpty) {
		t.Fatalf("without force: %v", err)
	}
	if _, err := prepareDir(dir, true); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Fatalf("left %v, want only notes.txt", entries)
	}
}

// TestConfigCopy: configs/demo.yaml is the embedded config.
func TestConfigCopy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != configYAML {
		t.Fatal("configs/demo.yaml differs from internal/demo/demo.yaml: copy one onto the other")
	}
}

// TestStoryInOrder: the runner cannot move the clock back, so the steps
// must be in time order, within the story.
func TestStoryInOrder(t *testing.T) {
	for i, s := range story {
		if !s.at.After(storyStart) || s.at.After(storyEnd) || i > 0 && s.at.Before(story[i-1].at) {
			t.Errorf("step %d (%s) at %s is out of order", i, s.what, s.at)
		}
	}
}

func records(t *testing.T, path string) []ledger.Record {
	t.Helper()
	l, err := ledger.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []ledger.Record
	if err := l.Find(t.Context(), ledger.Query{}, func(r ledger.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// findingLines describes each finding of recs as wantFindings does, sorted
// by time and source.
func findingLines(recs []ledger.Record) []string {
	bySeq := map[int64]ledger.Record{}
	var lines []string
	for _, r := range recs {
		bySeq[r.Seq] = r
		if !ledger.IsFinding(r.Kind) {
			continue
		}
		p := r.Payload
		verdict := strings.TrimRight(alerts.PayloadString(p, "verdict")+"/"+alerts.PayloadString(p, "reason")+"/"+alerts.PayloadString(p, "order"), "/")
		line := fmt.Sprintf("%s %s %s %s@%s %s", stamp(r.ObservedAt), r.Source, r.Kind, r.Model, r.Version, verdict)
		if res := alerts.PayloadString(p, "result"); res != "" {
			line += fmt.Sprintf(" %s %v", res, p["duration_ms"])
		}
		line += fmt.Sprintf(" promoter=%s approver=%s severity=%s", alerts.PayloadString(p, "promoter"),
			alerts.PayloadString(p, "approver"), alerts.PayloadString(p, "severity"))
		if n, ok := alerts.PayloadInt(p, "supersedes"); ok {
			s := bySeq[n]
			line += fmt.Sprintf(" supersedes %s %s@%s %s", s.Kind, s.Model, s.Version, alerts.PayloadString(s.Payload, "verdict"))
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return lines
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("slack.jsonl line %d: %v", len(out)+1, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
