package export_test

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/daemon/daemontest"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// playMLflow plays the recorded MLflow scenario into a ledger (skipping
// when the fixtures are absent).
func playMLflow(t *testing.T) (*daemontest.Run, crypto.PublicKey) {
	t.Helper()
	steps := daemontest.LoadScenario(t, filepath.Join(daemontest.FixtureDir(), "mlflow"))
	r := daemontest.Play(t, steps, daemontest.Options{})
	pub, err := ledger.ParsePublicKeyPEM(r.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return r, pub
}

// judged returns the seq of the judged finding a step appended (kind
// promotion, rollback or restored).
func judged(t *testing.T, r *daemontest.Run, step int) ledger.Record {
	t.Helper()
	for _, rec := range r.ByStep[step] {
		switch rec.Kind {
		case policy.KindPromotion, policy.KindRollback, policy.KindRestored:
			return rec
		}
	}
	t.Fatalf("step %02d appended no judged finding", step)
	return ledger.Record{}
}

// TestMLflowScenario exports the ledger of the recorded MLflow scenario
// (EXPECTED.md): the population is the findings of steps 08, 14, 17, 19
// and 23, step 17's verdict reads late (superseded by step 29's finding),
// and production_history says what served at every change.
func TestMLflowScenario(t *testing.T) {
	r, ledgerPub := playMLflow(t)
	k := newKey(t, ledger.KeyTypeEd25519) // the manifest's signer
	day := r.Windows[0].Start.Truncate(24 * time.Hour)
	bundle, sum := run(t, r.Path, k, day, day.Add(24*time.Hour), func(o *export.Options) { o.Keys = []crypto.PublicKey{ledgerPub} })
	verify(t, bundle, k.pub, ledgerPub)

	pop := table(t, filepath.Join(bundle, export.FilePopulation))
	var seqs []string
	for _, row := range pop {
		seqs = append(seqs, row["ledger_seq"])
	}
	want := map[int]map[string]string{
		8:  {"verdict": "missing", "superseded_by": "", "approved_before": "no", "approver_is_promoter": "unknown", "version": "1", "change_type": "standard"},
		14: {"verdict": "approved", "superseded_by": "", "approved_before": "yes", "approver_is_promoter": "unknown", "version": "2", "approver": "bob@example.com"},
		17: {"verdict": "late", "superseded_by": seqStr(judged(t, r, 29).Seq), "approved_before": "no", "approver_is_promoter": "unknown",
			"version": "1", "approver": "carol@example.com", "change_type": "rollback", "duration_min_ms": "0", "duration_max_ms": "0", "result": "met"},
		19: {"verdict": "approved", "superseded_by": "", "approved_before": "yes", "approver_is_promoter": "unknown", "version": "2"},
		23: {"verdict": "n/a", "superseded_by": "", "approved_before": "unknown", "approver_is_promoter": "unknown", "version": "1", "result": "met"},
	}
	var wantSeqs []string
	for _, step := range []int{8, 14, 17, 19, 23} {
		wantSeqs = append(wantSeqs, seqStr(judged(t, r, step).Seq))
	}
	if !slices.Equal(seqs, wantSeqs) || sum.Population != 5 {
		t.Fatalf("population rows %v, want the findings of steps 08, 14, 17, 19, 23: %v", seqs, wantSeqs)
	}
	rows := bySeq(pop)
	for step, cols := range want {
		row := rows[seqStr(judged(t, r, step).Seq)]
		for c, v := range cols {
			if row[c] != v {
				t.Errorf("step %02d: %s = %q, want %q", step, c, row[c], v)
			}
		}
		if row["promoter"] != "unknown" || row["model"] != "fraud-detector" {
			t.Errorf("step %02d: promoter %q model %q", step, row["promoter"], row["model"])
		}
	}

	// What served at the time of every production change, and just before.
	hist := table(t, filepath.Join(bundle, export.FileHistory))
	servingAt := func(modelID string, at time.Time) (string, bool) {
		ts := ledger.FormatTime(at)
		for _, row := range hist {
			if row["model_id"] == modelID && row["from"] <= ts && (row["to"] == "" || ts < row["to"]) {
				return row["serving_version"], true
			}
		}
		return "", false
	}
	changes := 0
	for step := range r.ByStep {
		for _, rec := range r.ByStep[step] {
			if rec.Kind != policy.KindProductionChanged {
				continue
			}
			changes++
			after, _ := rec.Payload["serving_after"].(string)
			before, _ := rec.Payload["serving_before"].(string)
			if got, ok := servingAt(rec.ModelID, rec.ObservedAt); !ok || got != after {
				t.Errorf("step %02d: production_history says %q served at %s, want %q", step, got, ledger.FormatTime(rec.ObservedAt), after)
			}
			if got, _ := servingAt(rec.ModelID, rec.ObservedAt.Add(-time.Millisecond)); got != before {
				t.Errorf("step %02d: production_history says %q served just before %s, want %q", step, got, ledger.FormatTime(rec.ObservedAt), before)
			}
		}
	}
	if changes != 5 || len(hist) != 5 {
		t.Errorf("%d production changes, %d history rows; want 5 and 5", changes, len(hist))
	}

	ex := bySeq(table(t, filepath.Join(bundle, export.FileExceptions)))
	for step, ended := range map[int]string{8: export.EndedLeftProduction, 17: export.EndedLateApproval, 29: export.EndedLateApproval} {
		if got := ex[seqStr(judged(t, r, step).Seq)]["ended"]; got != ended {
			t.Errorf("exception of step %02d: ended %q, want %q", step, got, ended)
		}
	}
	if len(ex) != 3 {
		t.Errorf("%d exceptions, want those of steps 08, 17 and 29", len(ex))
	}
}

// TestMLflowCarryIn exports a period starting between steps 19 and 23: the
// production state of step 19 is carried in, with its proof, and the late approval of step 29 supersedes a finding from before
// the period, so it makes no population row.
func TestMLflowCarryIn(t *testing.T) {
	r, ledgerPub := playMLflow(t)
	k := newKey(t, ledger.KeyTypeECDSAP256)
	from := r.Windows[20].Start
	bundle, sum := run(t, r.Path, k, from, from.Add(24*time.Hour), func(o *export.Options) { o.Keys = []crypto.PublicKey{ledgerPub} })
	rep := verify(t, bundle, k.pub, ledgerPub)
	// The carry-in: the config in force (if the run recorded one) and the
	// production state of step 19.
	var wantCarry []byte
	var config []byte
	for step := 0; step <= 19; step++ {
		for _, rec := range r.ByStep[step] {
			if rec.Kind == "config.applied" {
				config = rec.Leaf
			}
		}
	}
	n := int64(1)
	if config != nil {
		wantCarry = append(append(wantCarry, config...), '\n')
		n++
	}
	for _, rec := range r.ByStep[19] {
		if rec.Kind == policy.KindProductionChanged {
			wantCarry = append(append(wantCarry, rec.Leaf...), '\n')
		}
	}
	if rep.CarryIn != n || sum.CarryIn != n {
		t.Fatalf("carried in %d (verified %d), want %d", sum.CarryIn, rep.CarryIn, n)
	}
	got, err := os.ReadFile(filepath.Join(bundle, export.FileCarryIn))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantCarry) {
		t.Errorf("carry_in.jsonl:\n%s\nwant:\n%s", got, wantCarry)
	}
	m := manifestOf(t, bundle)
	if int64(len(m.CarryIn)) != n || len(m.CarryIn[n-1].Proof) == 0 {
		t.Errorf("manifest carry-in %+v", m.CarryIn)
	}
	pop := table(t, filepath.Join(bundle, export.FilePopulation))
	if len(pop) != 1 || pop[0]["ledger_seq"] != seqStr(judged(t, r, 23).Seq) {
		t.Errorf("population %v, want only step 23's rollback", pop)
	}
	hist := table(t, filepath.Join(bundle, export.FileHistory))
	pc19 := r.ByStep[19][len(r.ByStep[19])-1]
	for _, rec := range r.ByStep[19] {
		if rec.Kind == policy.KindProductionChanged {
			pc19 = rec
		}
	}
	if len(hist) != 2 || hist[0]["ledger_seq"] != seqStr(pc19.Seq) || hist[0]["versions_in_production"] != "1 2" ||
		hist[0]["to"] != hist[1]["from"] || hist[1]["serving_version"] != "1" {
		t.Errorf("production history %v", hist)
	}
}
