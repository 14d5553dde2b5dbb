package daemon_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/daemon/daemontest"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/watch"
)

var fixtureDir = daemontest.FixtureDir()

// golden is one expected entry of EXPECTED.md.
type golden struct {
	kind, model, version string
	payload              map[string]any
	// at is "exact <RFC 3339>" or "poll" (the poll interval), "" to skip.
	at string
}

// stepRef in an expected payload stands for the seq of the finding (or the
// change of kind) appended at that step.
type stepRef struct {
	step int
	kind string
}

func tags(kv ...string) []any {
	out := []any{}
	for i := 0; i < len(kv); i += 2 {
		out = append(out, map[string]any{"key": kv[i], "value": kv[i+1]})
	}
	return out
}

func versionState(stage, desc, source string, tagList []any, created string) map[string]any {
	return map[string]any{"stage": stage, "description": desc, "source": source, "run_id": "", "status": "READY",
		"tags": tagList, "aliases": []any{}, "created": created}
}

// expectedMLflow is ../shared/fixtures/mlflow/EXPECTED.md as data. Creation
// times are those of the 2.17 recording; the v3 run checks them separately.
func expectedMLflow(created map[string]string) map[int][]golden {
	fd, cp := "fraud-detector", "churn-predictor"
	finding := func(extra map[string]any) map[string]any {
		p := map[string]any{"reason": "", "supersedes": "", "approver": "", "evidence": []any{}, "promoter": "unknown", "change_type": "standard"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	return map[int][]golden{
		1: {{"model.created", fd, "", map[string]any{"name": fd, "description": "Card-fraud scoring model (gradient boosted trees).", "tags": tags("owner", "alice@example.com", "team", "risk-ml")}, "exact " + created["m"]}},
		3: {{"version.created", fd, "1", versionState("None", "baseline xgboost", "s3://bucket/models/fraud/1", tags("git_sha", "3f2c1aa"), created["1"]), "exact " + created["1"]}},
		4: {{"version.created", fd, "2", versionState("None", "retrained on Q3 data", "s3://bucket/models/fraud/2", tags("git_sha", "9b7e0d4"), created["2"]), "exact " + created["2"]}},
		5: {{"version.created", fd, "3", versionState("None", "", "s3://bucket/models/fraud/3", tags(), created["3"]), "exact " + created["3"]}},
		7: {{"stage.changed", fd, "1", map[string]any{"from": "None", "to": "Staging"}, "exact step"}},
		8: {
			{"stage.changed", fd, "1", map[string]any{"from": "Staging", "to": "Production"}, "exact step"},
			{"production.changed", fd, "", map[string]any{"before": []any{}, "after": []any{"1"}, "serving_before": "", "serving_after": "1"}, ""},
			{"promotion", fd, "1", finding(map[string]any{"verdict": "missing", "reason": "no_evidence", "serving_before": "", "serving_after": "1", "severity": "danger"}), "exact step"},
		},
		11: {{"stage.changed", fd, "2", map[string]any{"from": "None", "to": "Staging"}, "exact step"}},
		12: {{"tag.set", fd, "2", map[string]any{"key": "approved_by", "value": "bob@example.com", "previous": ""}, "poll"}},
		14: {
			{"stage.changed", fd, "1", map[string]any{"from": "Production", "to": "Archived"}, "exact step"},
			{"stage.changed", fd, "2", map[string]any{"from": "Staging", "to": "Production"}, "exact step"},
			{"production.changed", fd, "", map[string]any{"before": []any{"1"}, "after": []any{"2"}, "serving_before": "1", "serving_after": "2"}, ""},
			{"promotion", fd, "2", finding(map[string]any{"verdict": "approved", "order": "", "approver": "bob@example.com", "approved_at": "interval 12",
				"evidence": []any{map[string]any{"kind": "tag.set", "seq": stepRef{12, "tag.set"}}}, "serving_before": "1", "serving_after": "2", "severity": ""}), "exact step"},
		},
		17: {
			{"stage.changed", fd, "1", map[string]any{"from": "Archived", "to": "Production"}, "exact step"},
			{"stage.changed", fd, "2", map[string]any{"from": "Production", "to": "Archived"}, "exact step"},
			{"production.changed", fd, "", map[string]any{"before": []any{"2"}, "after": []any{"1"}, "serving_before": "2", "serving_after": "1"}, ""},
			{"rollback", fd, "1", finding(map[string]any{"verdict": "missing", "reason": "no_evidence", "change_type": "rollback", "serving_before": "2", "serving_after": "1",
				"start": "exact step", "completed": "exact step", "duration_ms": []any{int64(0), int64(0)}, "objective_ms": int64(1800000), "result": "met", "severity": "danger"}), "exact step"},
		},
		19: {
			{"alias.set", fd, "2", map[string]any{"alias": "champion", "previous_version": ""}, "poll"},
			{"production.changed", fd, "", map[string]any{"before": []any{"1"}, "after": []any{"1", "2"}, "serving_before": "1", "serving_after": "2"}, ""},
			{"promotion", fd, "2", finding(map[string]any{"verdict": "approved", "order": "", "approver": "bob@example.com", "approved_at": "interval 12",
				"evidence": []any{map[string]any{"kind": "tag.set", "seq": stepRef{12, "tag.set"}}}, "serving_before": "1", "serving_after": "2"}), "poll"},
		},
		23: {
			{"alias.set", fd, "1", map[string]any{"alias": "champion", "previous_version": "2"}, "poll"},
			{"production.changed", fd, "", map[string]any{"before": []any{"1", "2"}, "after": []any{"1"}, "serving_before": "2", "serving_after": "1"}, ""},
			{"rollback", fd, "1", finding(map[string]any{"verdict": "n/a", "change_type": "rollback", "serving_before": "2", "serving_after": "1",
				"start": "interval 23", "completed": "interval 23", "duration_ms": []any{int64(0), int64(0)}, "result": "met", "severity": "info"}), "poll"},
		},
		27: {{"alias.set", fd, "3", map[string]any{"alias": "challenger", "previous_version": ""}, "poll"}},
		28: {{"alias.removed", fd, "3", map[string]any{"alias": "challenger", "version": "3"}, "poll"}},
		29: {
			{"tag.set", fd, "1", map[string]any{"key": "approved_by", "value": "carol@example.com", "previous": ""}, "poll"},
			{"promotion", fd, "1", finding(map[string]any{"verdict": "late", "supersedes": stepRef{17, "rollback"}, "approver": "carol@example.com", "approved_at": "interval 29",
				"evidence": []any{map[string]any{"kind": "tag.set", "seq": stepRef{29, "tag.set"}}}, "change_type": "rollback", "serving_before": "2", "serving_after": "1",
				"start": "exact 17", "completed": "exact 17", "duration_ms": []any{int64(0), int64(0)}, "result": "met", "severity": "warning"}), "exact 17"},
		},
		30: {{"tag.removed", fd, "2", map[string]any{"key": "approved_by", "previous": "bob@example.com"}, "poll"}},
		32: {{"tag.set", fd, "", map[string]any{"key": "pii", "value": "false", "previous": ""}, "poll"}},
		33: {{"tag.removed", fd, "", map[string]any{"key": "pii", "previous": "false"}, "poll"}},
		34: {{"version.updated", fd, "3", map[string]any{"field": "description", "from": "", "to": "candidate: adds device fingerprint features"}, "exact step"}},
		35: {{"model.updated", fd, "", map[string]any{"field": "description", "from": "Card-fraud scoring model (gradient boosted trees).", "to": "Card-fraud scoring model. Owner: risk-ml."}, "exact step"}},
		36: {{"model.created", cp, "", map[string]any{"name": cp}, "exact " + created["cm"]}},
		37: {{"version.created", cp, "1", versionState("None", "", "s3://bucket/models/churn/1", tags(), created["c1"]), "exact " + created["c1"]}},
		53: {{"version.deleted", fd, "3", nil, "poll"}},
		55: {{"model.renamed", "fraud-detector-v2", "", map[string]any{"from": fd, "to": "fraud-detector-v2"}, "poll"}},
		58: {{"model.renamed", fd, "", map[string]any{"from": "fraud-detector-v2", "to": fd}, "poll"}},
	}
}

// expectedOrder sorts a step's entries as EXPECTED.md lists them: changes
// (by watch.Sort), production.changed, judged findings, superseding findings.
func expectedOrder(rs []ledger.Record) []ledger.Record {
	rank := func(r ledger.Record) int {
		switch {
		case r.Kind == "production.changed":
			return 1
		case ledger.IsFinding(r.Kind) && r.Payload["supersedes"] != "":
			return 3
		case ledger.IsFinding(r.Kind):
			return 2
		}
		return 0
	}
	var changes []watch.Change
	for _, r := range rs {
		if rank(r) == 0 {
			changes = append(changes, watch.Change{Kind: r.Kind, Model: r.Model, Version: r.Version, Payload: r.Payload, ModelID: strconv.FormatInt(r.Seq, 10)})
		}
	}
	watch.Sort(changes)
	pos := map[int64]int{}
	for i, c := range changes {
		seq, _ := strconv.ParseInt(c.ModelID, 10, 64)
		pos[seq] = i
	}
	out := append([]ledger.Record(nil), rs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if rank(a) == 0 {
			return pos[a.Seq] < pos[b.Seq]
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Version < b.Version
	})
	return out
}

// checkExpected compares the entries of every step with want. Snapshot,
// config.applied and coverage entries are not listed in EXPECTED.md.
func checkExpected(t *testing.T, run *daemontest.Run, steps []daemontest.Step, want map[int][]golden, ignoreActor bool) {
	t.Helper()
	at := map[int]time.Time{}
	for _, s := range steps {
		at[s.N] = s.At
	}
	seqOf := map[stepRef]int64{}
	for step, rs := range run.ByStep {
		for _, r := range rs {
			if _, ok := seqOf[stepRef{step, r.Kind}]; !ok {
				seqOf[stepRef{step, r.Kind}] = r.Seq
			}
		}
	}
	interval := func(step int) map[string]any {
		prev := run.Windows[step-1]
		for k := step - 1; k >= 0 && prev.Start.IsZero(); k-- {
			prev = run.Windows[k]
		}
		return map[string]any{"from": ledger.FormatTime(prev.Start), "to": ledger.FormatTime(run.Windows[step].End)}
	}
	exact := func(tm time.Time) map[string]any {
		return map[string]any{"from": ledger.FormatTime(tm), "to": ledger.FormatTime(tm)}
	}
	resolve := func(step int, v any) any {
		switch x := v.(type) {
		case stepRef:
			return seqOf[x]
		case string:
			switch {
			case x == "exact step":
				return exact(at[step])
			case strings.HasPrefix(x, "exact "):
				if n, err := strconv.Atoi(strings.TrimPrefix(x, "exact ")); err == nil {
					return exact(at[n])
				}
			case strings.HasPrefix(x, "interval "):
				n, _ := strconv.Atoi(strings.TrimPrefix(x, "interval "))
				return interval(n)
			}
		}
		return v
	}
	var resolveAll func(step int, v any) any
	resolveAll = func(step int, v any) any {
		switch x := v.(type) {
		case []any:
			out := make([]any, len(x))
			for i := range x {
				out[i] = resolveAll(step, x[i])
			}
			return out
		case map[string]any:
			out := map[string]any{}
			for k, val := range x {
				out[k] = resolveAll(step, val)
			}
			return out
		}
		return resolve(step, v)
	}
	steps2 := map[int]bool{}
	for s := range want {
		steps2[s] = true
	}
	for s := range run.ByStep {
		steps2[s] = true
	}
	var order []int
	for s := range steps2 {
		order = append(order, s)
	}
	sort.Ints(order)
	for _, step := range order {
		var got []ledger.Record
		for _, r := range run.ByStep[step] {
			switch r.Kind {
			case "snapshot", daemon.KindConfigApplied, "coverage":
				continue
			}
			got = append(got, r)
		}
		got = expectedOrder(got)
		exp := want[step]
		if len(got) != len(exp) {
			var kinds []string
			for _, r := range got {
				kinds = append(kinds, r.Kind+" "+r.Model+"@"+r.Version)
			}
			t.Errorf("step %02d: %d entries %v, want %d", step, len(got), kinds, len(exp))
			continue
		}
		for i, w := range exp {
			r := got[i]
			where := fmt.Sprintf("step %02d entry %d (%s)", step, i, w.kind)
			if r.Kind != w.kind || r.Model != w.model || r.Version != w.version {
				t.Errorf("%s: got %s %s@%s", where, r.Kind, r.Model, r.Version)
				continue
			}
			isFinding := ledger.IsFinding(r.Kind)
			switch {
			case isFinding && r.Actor != policy.Actor, !isFinding && r.Kind != "production.changed" && !ignoreActor && r.Actor != watch.Unknown:
				t.Errorf("%s: actor %q", where, r.Actor)
			}
			if w.payload != nil {
				wantP := resolveAll(step, w.payload).(map[string]any)
				gotP := r.Payload
				if isFinding { // compare the listed keys; check the rest exist
					sub := map[string]any{}
					for k := range wantP {
						sub[k] = gotP[k]
					}
					for _, k := range []string{"finding_id", "triggering_seq", "severity", "verdict", "reason", "order", "supersedes", "promoter", "approver", "approved_at", "evidence", "change_type", "serving_before", "serving_after", "registry_url"} {
						if _, ok := gotP[k]; !ok {
							t.Errorf("%s: payload lacks %s", where, k)
						}
					}
					gotP = sub
				}
				if d := cmp.Diff(wantP, gotP); d != "" {
					t.Errorf("%s: payload (-want +got):\n%s", where, d)
				}
			}
			switch occ := resolve(step, w.at).(type) {
			case map[string]any:
				if g := map[string]any{"from": ledger.FormatTime(r.OccurredFrom), "to": ledger.FormatTime(r.OccurredTo)}; !cmp.Equal(occ, g) {
					t.Errorf("%s: occurred %v, want %v", where, g, occ)
				}
			case string:
				if occ == "poll" {
					if g, w := map[string]any{"from": ledger.FormatTime(r.OccurredFrom), "to": ledger.FormatTime(r.OccurredTo)}, interval(step); !cmp.Equal(w, g) {
						t.Errorf("%s: occurred %v, want the poll interval %v", where, g, w)
					}
				}
			}
		}
	}
	// The step-17 rollback is the superseded one; the triggering seqs point
	// at the changes EXPECTED.md names (A2).
	for step, kind := range map[int]string{8: "stage.changed", 14: "stage.changed", 19: "alias.set", 23: "alias.set", 29: "tag.set"} {
		for _, r := range run.ByStep[step] {
			if ledger.IsFinding(r.Kind) {
				seq, _ := r.Payload["triggering_seq"].(int64)
				tr, err := run.Ledger.Record(t.Context(), seq)
				if err != nil || tr.Kind != kind {
					t.Errorf("step %02d: triggering_seq %d is %s, want %s", step, seq, tr.Kind, kind)
				}
			}
		}
	}
}

func scenarioTimes(steps []daemontest.Step) map[string]string {
	c := map[string]string{}
	for _, s := range steps {
		var body struct {
			RegisteredModel struct {
				Created json.Number `json:"creation_timestamp"`
			} `json:"registered_model"`
			ModelVersion struct {
				Created json.Number `json:"creation_timestamp"`
			} `json:"model_version"`
		}
		json.Unmarshal(s.Response, &body)
		mc, _ := body.RegisteredModel.Created.Int64()
		vc, _ := body.ModelVersion.Created.Int64()
		switch s.N {
		case 1:
			c["m"] = sources.FormatMillis(mc)
		case 3, 4, 5:
			c[strconv.Itoa(s.N-2)] = sources.FormatMillis(vc)
		case 36:
			c["cm"] = sources.FormatMillis(mc)
		case 37:
			c["c1"] = sources.FormatMillis(vc)
		}
	}
	return c
}

func TestExpectedMLflowScenario(t *testing.T) {
	for _, tc := range []struct {
		name, dir, typ string
		mlflow3        bool
	}{
		{"mlflow2", filepath.Join(fixtureDir, "mlflow"), sources.TypeMLflow, false},
		{"mlflow3", filepath.Join(fixtureDir, "mlflow", "v3"), sources.TypeMLflow, true},
		// Databricks serves the same workspace registry; its Databricks-only
		// route of step 76 would open a real transition request there.
		{"databricks", filepath.Join(fixtureDir, "mlflow"), sources.TypeDatabricks, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := daemontest.LoadScenario(t, tc.dir)
			run := daemontest.Play(t, steps, daemontest.Options{Type: tc.typ, MLflow3: tc.mlflow3, Skip: map[int]bool{76: tc.typ == sources.TypeDatabricks}})
			want := expectedMLflow(scenarioTimes(steps))
			if tc.typ == sources.TypeDatabricks {
				// The workspace registry returns the creator (user_id) and
				// omits empty strings, as the Databricks API does.
				for _, n := range []int{3, 4, 5, 37} {
					p := want[n][0].payload
					p["creator"] = "svc-ci@example.com"
					for _, k := range []string{"run_id", "description"} {
						if p[k] == "" {
							delete(p, k)
						}
					}
				}
			}
			checkExpected(t, run, steps, want, tc.typ == sources.TypeDatabricks)
			// Poll 0 appends the empty registry's snapshot entry.
			var snaps int
			for step, rs := range run.ByStep {
				for _, r := range rs {
					if r.Kind == "snapshot" {
						snaps++
						if step == 0 && (r.Payload["models"] != int64(0) || r.Payload["versions"] != int64(0)) {
							t.Errorf("poll 0 snapshot %v", r.Payload)
						}
					}
				}
			}
			if snaps < 26 {
				t.Errorf("snapshot entries: %d, want one per step with entries plus poll 0", snaps)
			}
			if _, err := ledger.Verify(t.Context(), run.Path, ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

// expectedEveryThird is the net history when the same scenario is polled
// only after every third step: several changes collapse into one, and
// changes without a registry time get the longer poll intervals.
func expectedEveryThird(created map[string]string) map[int][]golden {
	all := expectedMLflow(created)
	fd := "fraud-detector"
	finding := func(extra map[string]any) map[string]any {
		p := map[string]any{"reason": "", "supersedes": "", "approver": "", "evidence": []any{}, "promoter": "unknown", "change_type": "standard"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	at := func(g golden, occ string) golden { g.at = occ; return g }
	return map[int][]golden{
		3: {all[1][0], all[3][0]},
		6: {all[4][0], all[5][0]},
		9: {
			{"stage.changed", fd, "1", map[string]any{"from": "None", "to": "Production"}, "exact 8"},
			all[8][1],
			at(all[8][2], "exact 8"),
		},
		12: {at(all[11][0], "exact 11"), all[12][0]},
		15: {at(all[14][0], "exact 14"), at(all[14][1], "exact 14"), all[14][2],
			{"promotion", fd, "2", finding(map[string]any{"verdict": "approved", "order": "", "approver": "bob@example.com", "approved_at": "interval 12",
				"evidence": []any{map[string]any{"kind": "tag.set", "seq": stepRef{12, "tag.set"}}}, "serving_before": "1", "serving_after": "2"}), "exact 14"},
		},
		18: {at(all[17][0], "exact 17"), at(all[17][1], "exact 17"), all[17][2],
			{"rollback", fd, "1", finding(map[string]any{"verdict": "missing", "reason": "no_evidence", "change_type": "rollback", "serving_before": "2", "serving_after": "1",
				"start": "exact 17", "completed": "exact 17", "duration_ms": []any{int64(0), int64(0)}, "result": "met"}), "exact 17"},
		},
		21: {all[19][0], all[19][1],
			{"promotion", fd, "2", finding(map[string]any{"verdict": "approved", "approver": "bob@example.com", "approved_at": "interval 12",
				"evidence": []any{map[string]any{"kind": "tag.set", "seq": stepRef{12, "tag.set"}}}, "serving_before": "1", "serving_after": "2"}), "poll"},
		},
		24: {all[23][0], all[23][1],
			{"rollback", fd, "1", finding(map[string]any{"verdict": "n/a", "change_type": "rollback", "serving_before": "2", "serving_after": "1",
				"start": "interval 24", "completed": "interval 24", "duration_ms": []any{int64(0), int64(0)}, "result": "met"}), "poll"},
		},
		27: {all[27][0]},
		30: {
			{"tag.set", fd, "1", map[string]any{"key": "approved_by", "value": "carol@example.com", "previous": ""}, "poll"},
			all[30][0],
			all[28][0],
			{"promotion", fd, "1", finding(map[string]any{"verdict": "late", "supersedes": stepRef{18, "rollback"}, "approver": "carol@example.com", "approved_at": "interval 30",
				"evidence": []any{map[string]any{"kind": "tag.set", "seq": stepRef{30, "tag.set"}}}, "change_type": "rollback", "serving_before": "2", "serving_after": "1",
				"start": "exact 17", "completed": "exact 17", "duration_ms": []any{int64(0), int64(0)}, "result": "met"}), "exact 17"},
		},
		// 33: the model tag was set and deleted between two polls: no net change.
		36: {all[36][0], at(all[35][0], "exact 35"), at(all[34][0], "exact 34")},
		39: {all[37][0]},
		54: {all[53][0]},
		57: {all[55][0]},
		60: {all[58][0]},
	}
}

func TestExpectedScenarioEveryThirdStep(t *testing.T) {
	steps := daemontest.LoadScenario(t, filepath.Join(fixtureDir, "mlflow"))
	run := daemontest.Play(t, steps, daemontest.Options{PollAfter: func(n int) bool { return n%3 == 0 }})
	checkExpected(t, run, steps, expectedEveryThird(scenarioTimes(steps)), false)
}
