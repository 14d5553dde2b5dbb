package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
	"github.com/registrywatch/registrywatch/internal/watch"
)

// fixtureDir is ../shared/fixtures relative to the repository root.
var fixtureDir = filepath.Join("..", "..", "..", "shared", "fixtures")

// fixtureStep is one recorded exchange of the MLflow scenario.
type fixtureStep struct {
	n    int
	file string
	req  struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Query  map[string]any  `json:"query"`
		Body   json.RawMessage `json:"body"`
	}
	resp json.RawMessage
	// at is when the step happens: the newest registry timestamp its answer
	// reveals, or a time interpolated between its neighbours.
	at time.Time
}

var msTimestamp = regexp.MustCompile(`\b1[7-9][0-9]{11}\b`)

// loadScenario reads the numbered fixture files of dir and dates each step.
func loadScenario(t *testing.T, dir string) []fixtureStep {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.json"))
	if len(files) == 0 {
		t.Skipf("fixtures not found in %s (../shared is absent): skipping", dir)
	}
	sort.Strings(files)
	var steps []fixtureStep
	var newest int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Request  json.RawMessage `json:"request"`
			Response struct {
				Body json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s := fixtureStep{file: filepath.Base(f), resp: raw.Response.Body}
		s.n, _ = strconv.Atoi(s.file[:2])
		if err := json.Unmarshal(raw.Request, &s.req); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var max int64
		for _, m := range msTimestamp.FindAll(raw.Response.Body, -1) {
			if v, _ := strconv.ParseInt(string(m), 10, 64); v > max {
				max = v
			}
		}
		if max > newest {
			s.at, newest = time.UnixMilli(max).UTC(), max
		}
		steps = append(steps, s)
	}
	// Interpolate the undated steps between their dated neighbours.
	for i := 0; i < len(steps); {
		if !steps[i].at.IsZero() {
			i++
			continue
		}
		j := i
		for j < len(steps) && steps[j].at.IsZero() {
			j++
		}
		prev := steps[i-1].at
		next := prev.Add(time.Duration(j-i+1) * time.Second)
		if j < len(steps) {
			next = steps[j].at
		}
		step := next.Sub(prev) / time.Duration(j-i+1)
		for k := i; k < j; k++ {
			steps[k].at = prev.Add(time.Duration(k-i+1) * step).Truncate(time.Millisecond)
		}
		i = j
	}
	return steps
}

// replay sends the step's recorded request to the fake.
func (s *fixtureStep) replay(t *testing.T, h http.Handler) int {
	t.Helper()
	u := &url.URL{Path: s.req.Path}
	q := url.Values{}
	for k, v := range s.req.Query {
		switch x := v.(type) {
		case string:
			q.Set(k, x)
		case []any:
			for _, e := range x {
				q.Add(k, fmt.Sprint(e))
			}
		}
	}
	u.RawQuery = q.Encode()
	var body []byte
	if len(s.req.Body) > 0 && string(s.req.Body) != "null" {
		body = s.req.Body
		var text string
		if json.Unmarshal(s.req.Body, &text) == nil { // a raw (malformed) body
			body = []byte(text)
		}
	}
	r := httptest.NewRequest(s.req.Method, u.String(), bytes.NewReader(body))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// timedSource moves the fake clock to the poll's end while it snapshots.
type timedSource struct {
	sources.Source
	clk *clock.Fake
	end time.Time
}

func (s *timedSource) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	res, err := s.Source.Snapshot(ctx, prev)
	s.clk.Set(s.end)
	return res, err
}

// pollWindow is where the poll after a step runs: the middle third of the
// time between the step and the next one.
type pollWindow struct{ start, end time.Time }

// scenarioRun is a ledger written by polling after every step of a scenario.
type scenarioRun struct {
	led     *ledger.Ledger
	path    string
	byStep  map[int][]ledger.Record
	windows map[int]pollWindow
}

// playScenario replays steps on a fake MLflow (Databricks when typ says so)
// and polls after every step (poll 0 before step 01), or only after the
// steps for which pollAfter is true.
func playScenario(t *testing.T, steps []fixtureStep, typ string, mlflow3 bool, skip map[int]bool, pollAfter func(int) bool) *scenarioRun {
	t.Helper()
	ctx := t.Context()
	clk := clock.NewFake(steps[0].at.Add(-3 * time.Second))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk, Databricks: typ == sources.TypeDatabricks, MLflow3: mlflow3, DefaultUser: "svc-ci@example.com"})
	srv := fake.Start()
	t.Cleanup(srv.Close)
	led, path := openTestLedger(t, clk)
	srcCfg := config.Source{
		Name: "mlflow-prod", Type: typ, URL: srv.URL, Timeout: config.Duration(time.Hour), Concurrency: 4,
		Production: config.Production{Stages: []string{"Production"}, Aliases: []string{"champion"}},
		Approval:   config.SourceApproval{Tag: "approved_by"},
	}
	client, err := mlflow.New(srcCfg, mlflow.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	src := &timedSource{Source: client, clk: clk}
	global := config.Policy{RollbackObjective: config.Duration(30 * time.Minute), EmergencyTag: "emergency_change", RetireTag: "retired",
		Approval: config.Approval{MaxAge: config.Duration(720 * time.Hour)}}
	p := NewPoller(src, led, PollerOptions{Clock: clk, Policy: PolicyConfig(global, srcCfg)})
	run := &scenarioRun{led: led, path: path, byStep: map[int][]ledger.Record{}, windows: map[int]pollWindow{}}
	poll := func(step int, w pollWindow) {
		t.Helper()
		before, _ := led.Size(ctx)
		clk.Set(w.start)
		src.end = w.end
		if _, err := p.PollOnce(ctx); err != nil {
			t.Fatalf("poll %02d: %v", step, err)
		}
		run.windows[step] = w
		err := led.Find(ctx, ledger.Query{FromSeq: before}, func(r ledger.Record) error {
			run.byStep[step] = append(run.byStep[step], r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	poll(0, pollWindow{steps[0].at.Add(-2 * time.Second), steps[0].at.Add(-time.Second)})
	for i, s := range steps {
		if !skip[s.n] {
			clk.Set(s.at)
			s.replay(t, fake.Handler())
		}
		if pollAfter != nil && !pollAfter(s.n) {
			continue
		}
		next := s.at.Add(time.Second)
		if i+1 < len(steps) {
			next = steps[i+1].at
		}
		gap := next.Sub(s.at)
		poll(s.n, pollWindow{s.at.Add(gap / 3).Truncate(time.Millisecond), s.at.Add(2 * gap / 3).Truncate(time.Millisecond)})
	}
	return run
}

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
func checkExpected(t *testing.T, run *scenarioRun, steps []fixtureStep, want map[int][]golden, ignoreActor bool) {
	t.Helper()
	at := map[int]time.Time{}
	for _, s := range steps {
		at[s.n] = s.at
	}
	seqOf := map[stepRef]int64{}
	for step, rs := range run.byStep {
		for _, r := range rs {
			if _, ok := seqOf[stepRef{step, r.Kind}]; !ok {
				seqOf[stepRef{step, r.Kind}] = r.Seq
			}
		}
	}
	interval := func(step int) map[string]any {
		prev := run.windows[step-1]
		for k := step - 1; k >= 0 && prev.start.IsZero(); k-- {
			prev = run.windows[k]
		}
		return map[string]any{"from": ledger.FormatTime(prev.start), "to": ledger.FormatTime(run.windows[step].end)}
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
	for s := range run.byStep {
		steps2[s] = true
	}
	var order []int
	for s := range steps2 {
		order = append(order, s)
	}
	sort.Ints(order)
	for _, step := range order {
		var got []ledger.Record
		for _, r := range run.byStep[step] {
			switch r.Kind {
			case "snapshot", KindConfigApplied, "coverage":
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
		for _, r := range run.byStep[step] {
			if ledger.IsFinding(r.Kind) {
				seq, _ := r.Payload["triggering_seq"].(int64)
				tr, err := run.led.Record(t.Context(), seq)
				if err != nil || tr.Kind != kind {
					t.Errorf("step %02d: triggering_seq %d is %s, want %s", step, seq, tr.Kind, kind)
				}
			}
		}
	}
}

func scenarioTimes(steps []fixtureStep) map[string]string {
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
		json.Unmarshal(s.resp, &body)
		mc, _ := body.RegisteredModel.Created.Int64()
		vc, _ := body.ModelVersion.Created.Int64()
		switch s.n {
		case 1:
			c["m"] = sources.FormatMillis(mc)
		case 3, 4, 5:
			c[strconv.Itoa(s.n-2)] = sources.FormatMillis(vc)
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
			steps := loadScenario(t, tc.dir)
			run := playScenario(t, steps, tc.typ, tc.mlflow3, map[int]bool{76: tc.typ == sources.TypeDatabricks}, nil)
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
			for step, rs := range run.byStep {
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
			if _, err := ledger.Verify(t.Context(), run.path, ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
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
	steps := loadScenario(t, filepath.Join(fixtureDir, "mlflow"))
	run := playScenario(t, steps, sources.TypeMLflow, false, nil, func(n int) bool { return n%3 == 0 })
	checkExpected(t, run, steps, expectedEveryThird(scenarioTimes(steps)), false)
}
