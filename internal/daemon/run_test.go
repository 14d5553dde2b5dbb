package daemon

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// registryWithProduction creates model fraud with version 1 in Production,
// approved.
func registryWithProduction(t *testing.T, reg *mlflowfake.Server) {
	t.Helper()
	must(t, reg.CreateModel("fraud", mlflowfake.ModelSpec{}))
	_, err := reg.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "s3://models/fraud/1", Tags: []mlflowfake.Tag{{Key: "approved_by", Value: "carol"}}})
	must(t, err)
	must(t, reg.TransitionStage("fraud", "1", mlflowfake.StageProduction, false))
}

// TestOutage: a registry that answers 503 to everything appends no change,
// opens a coverage gap that alerts coverage.late once it reaches
// alerts.coverage_gap and makes /readyz unready; when the registry is back
// the gap is recorded and the changes made meanwhile appear with interval
// times.
func TestOutage(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	h.start()
	if got := kindList(h.entries(0)); !strings.Contains(got, "baseline") || !strings.HasSuffix(got, "snapshot") {
		t.Fatalf("first poll: %s", got)
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d %s", code, body)
	}
	if code, body := h.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	size0 := h.size()

	h.reg.Inject(mlflowfake.Fault{Status: http.StatusServiceUnavailable})
	h.advanceTo(t0.Add(5 * time.Minute))
	must(t, h.reg.SetVersionTag("fraud", "1", "owner", "alice"))
	v2, err := h.reg.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "s3://models/fraud/2"})
	must(t, err)

	h.advanceTo(t0.Add(15*time.Minute - time.Second))
	if recs := h.entries(size0); len(recs) != 0 {
		t.Fatalf("the outage appended entries:\n%s", describe(recs))
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the gap reached alerts.coverage_gap: %d %s", code, body)
	}
	if _, body := h.get("/metrics"); !strings.Contains(body, "registrywatch_coverage_gaps_open 1") ||
		!strings.Contains(body, `registrywatch_poll_errors_total{cause="source_error",source="mlflow-prod"}`) {
		t.Fatalf("metrics during the outage:\n%s", body)
	}

	lateAt := t0.Add(15 * time.Minute)
	h.advanceTo(lateAt)
	late := ofKind(h.entries(size0), KindCoverageLate)
	if len(late) != 1 {
		t.Fatalf("coverage.late entries at the bound: %d", len(late))
	}
	p := late[0].Payload
	if p["from"] != ts(t0) || p["cause"] != CauseSourceError || p["missed_ticks"] != int64(15) || p["severity"] != "danger" ||
		!late[0].ObservedAt.Equal(lateAt) || late[0].Source != "mlflow-prod" || late[0].ModelID != "" {
		t.Fatalf("coverage.late: %+v observed %s", p, late[0].ObservedAt)
	}
	msgs := h.messages("coverage gap")
	if len(msgs) != 1 || !msgs[0].ReceivedAt.Equal(lateAt) {
		t.Fatalf("Slack coverage alerts: %+v", msgs)
	}
	code, body := h.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "source mlflow-prod: no successful poll since "+ts(t0)) {
		t.Fatalf("/readyz past the bound: %d %s", code, body)
	}

	h.advanceTo(t0.Add(25*time.Minute + 30*time.Second))
	if n := len(ofKind(h.entries(size0), KindCoverageLate)); n != 1 {
		t.Fatalf("coverage.late appended %d times", n)
	}
	h.reg.ClearFaults()
	closeAt := t0.Add(26 * time.Minute)
	h.advanceTo(closeAt)

	recs := h.entries(size0)
	gaps := ofKind(recs, KindCoverageGap)
	if len(gaps) != 1 {
		t.Fatalf("coverage.gap entries: %d\n%s", len(gaps), describe(recs))
	}
	want := map[string]any{"from": ts(t0), "to": ts(closeAt), "missed_ticks": int64(25), "cause": CauseSourceError}
	for k, v := range want {
		if gaps[0].Payload[k] != v {
			t.Errorf("coverage.gap %s = %v, want %v", k, gaps[0].Payload[k], v)
		}
	}
	tags := ofKind(recs, "tag.set")
	if len(tags) != 1 || !tags[0].OccurredFrom.Equal(t0) || !tags[0].OccurredTo.Equal(closeAt) {
		t.Fatalf("tag.set made during the outage:\n%s", describe(tags))
	}
	created := ofKind(recs, "version.created")
	if len(created) != 1 || created[0].Version != v2 || !created[0].OccurredFrom.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("version.created during the outage:\n%s", describe(created))
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the outage: %d %s", code, body)
	}
	if n := len(h.messages("coverage gap")); n != 1 {
		t.Fatalf("%d coverage alerts", n)
	}
	h.stop()
	h.verify()
}

// TestDaemonDown: a daemon stopped and started again three ticks later
// records a daemon_down gap, closed by the first poll after the start.
func TestDaemonDown(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	h.start()
	h.advanceTo(t0.Add(time.Minute))
	h.stop()
	size0 := h.size()

	restart := t0.Add(4*time.Minute + 30*time.Second)
	h.clk.Set(restart)
	h.start()
	recs := h.entries(size0)
	gaps := ofKind(recs, KindCoverageGap)
	if len(gaps) != 1 {
		t.Fatalf("entries after the restart:\n%s", describe(recs))
	}
	want := map[string]any{"from": ts(t0.Add(time.Minute)), "to": ts(restart), "missed_ticks": int64(3), "cause": CauseDaemonDown}
	for k, v := range want {
		if gaps[0].Payload[k] != v {
			t.Errorf("coverage.gap %s = %v, want %v", k, gaps[0].Payload[k], v)
		}
	}
	// A restart within a tick records nothing.
	h.stop()
	size1 := h.size()
	h.clk.Set(restart.Add(50 * time.Second))
	h.start()
	if recs := h.entries(size1); len(recs) != 0 {
		t.Fatalf("a quick restart appended:\n%s", describe(recs))
	}
	h.stop()
	h.verify()
}

// TestPollAllRecordsNoDaemonDown: poll, run after a long pause, records no
// daemon_down gap.
func TestPollAllRecordsNoDaemonDown(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	h.start()
	h.stop()
	size0 := h.size()
	h.clk.Set(t0.Add(time.Hour + 30*time.Second))
	rep, err := PollAll(t.Context(), h.cfg, h.options())
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailedSources() != 0 || len(rep.Sources) != 1 || rep.Sources[0].Versions != 1 {
		t.Fatalf("report %+v", rep)
	}
	if got := ofKind(h.entries(size0), KindCoverageGap); len(got) != 0 {
		t.Fatalf("poll recorded a gap:\n%s", describe(got))
	}
	if got := ofKind(h.entries(size0), "coverage"); len(got) != 1 {
		t.Fatalf("poll after the hour closed: want its coverage entry, got %d", len(got))
	}
}

// TestRollbackOverdueWhileSourceDown: the rollback deadline fires on time
// while the registry fails, and its alert reaches Slack at the deadline.
func TestRollbackOverdueWhileSourceDown(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	_, err := h.reg.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "s3://models/fraud/2", Tags: []mlflowfake.Tag{{Key: "approved_by", Value: "carol"}}})
	must(t, err)
	h.start()
	h.advanceTo(t0.Add(30 * time.Second))
	must(t, h.reg.TransitionStage("fraud", "2", mlflowfake.StageProduction, true))
	h.advanceTo(t0.Add(time.Minute))
	s1 := t0.Add(90 * time.Second)
	h.advanceTo(s1)
	must(t, h.reg.TransitionStage("fraud", "2", mlflowfake.StageArchived, false))
	h.advanceTo(t0.Add(2 * time.Minute))
	recs := h.entries(0)
	if pc := ofKind(recs, "production.changed"); len(pc) < 2 {
		t.Fatalf("the vacancy was not seen:\n%s", describe(recs))
	}
	size0 := h.size()
	h.reg.Inject(mlflowfake.Fault{Status: http.StatusServiceUnavailable})

	deadline := s1.Add(30 * time.Minute)
	h.advanceTo(deadline.Add(-time.Second))
	if got := ofKind(h.entries(size0), ledger.KindRollbackOverdue); len(got) != 0 {
		t.Fatalf("rollback.overdue before its deadline:\n%s", describe(got))
	}
	h.advanceTo(deadline)
	got := ofKind(h.entries(size0), ledger.KindRollbackOverdue)
	if len(got) != 1 || !got[0].ObservedAt.Equal(deadline) || got[0].Model != "fraud" {
		t.Fatalf("rollback.overdue at the deadline:\n%s", describe(got))
	}
	msgs := h.messages("rollback overdue")
	if len(msgs) != 1 || !msgs[0].ReceivedAt.Equal(deadline) {
		t.Fatalf("Slack rollback.overdue alerts: %+v", msgs)
	}
	h.advance(10 * time.Minute)
	if n := len(ofKind(h.entries(size0), ledger.KindRollbackOverdue)); n != 1 {
		t.Fatalf("rollback.overdue appended %d times", n)
	}
	h.stop()
	h.verify()
}
