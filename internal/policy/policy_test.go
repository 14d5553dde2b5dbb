package policy

import (
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
)

func mlflowConfig() *Config {
	return &Config{
		SourceType: sources.TypeMLflow, Stages: []string{"Production"}, Aliases: []string{"champion"},
		ApprovalTag: "approved_by", ApprovalTimeTag: "approved_at", MaxAge: 720 * time.Hour,
		EmergencyTag: "emergency_change", RetireTag: "retired", RollbackRequestTag: "rollback_requested",
		Objective: Fixed(30 * time.Minute),
	}
}

// started returns a harness whose registry has model m with versions 1 and
// 2, polled once (baseline) and once more.
func started(t *testing.T, cfg *Config) (*harness, *registry) {
	h := newHarness(t, cfg)
	r := newRegistry().on(h)
	r.version("m", "1")
	r.version("m", "2")
	none(t, h.poll(time.Minute, r.snapshot()))
	return h, r
}

func TestBaselineJudgesNothing(t *testing.T) {
	h := newHarness(t, mlflowConfig())
	r := newRegistry().on(h)
	r.stage("m", "3", "Production")
	rs := h.poll(time.Minute, r.snapshot())
	none(t, rs)
	var pc int
	for _, x := range rs {
		if x.Kind == KindProductionChanged {
			pc++
			expect(t, x, "serving_after", "3")
		}
	}
	if pc != 1 {
		t.Fatalf("baseline production.changed: %d", pc)
	}
}

func TestFirstPromotionEverMissing(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.stage("m", "1", "Production")
	f := one(t, h.poll(time.Minute, r.snapshot()))
	if f.Kind != KindPromotion {
		t.Fatalf("kind %s", f.Kind)
	}
	expect(t, f, "verdict", "missing", "reason", "no_evidence", "severity", "danger", "promoter", "unknown", "alert", true, "change_type", "standard")
}

func TestEvidenceSamePollWithoutTime(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.stage("m", "1", "Production")
	r.tag("m", "1", "approved_by", "bob@example.com")
	f := one(t, h.poll(time.Minute, r.snapshot()))
	expect(t, f, "verdict", "approved", "order", "same_poll", "approver", "bob@example.com", "severity", "info")
}

func TestApprovedAtBeforeAndAfter(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.tag("m", "1", "approved_by", "bob@example.com")
	r.tag("m", "1", "approved_at", h.now.Add(-time.Hour).Format(time.RFC3339))
	r.stage("m", "1", "Production")
	f := one(t, h.poll(time.Minute, r.snapshot()))
	expect(t, f, "verdict", "approved", "order", "", "severity", "", "alert", false)

	// approved_at after the promotion time: missing/after, then at once a
	// late promotion superseding it.
	h2, r2 := started(t, mlflowConfig())
	v := r2.version("m", "2")
	v.Stage = "Production"
	v.UpdatedAt = sources.FormatTime(h2.now.Add(10 * time.Second))
	r2.tag("m", "2", "approved_by", "bob@example.com")
	r2.tag("m", "2", "approved_at", h2.now.Add(50*time.Second).Format(time.RFC3339))
	rs := findingsOf(h2.poll(time.Minute, r2.snapshot()))
	if len(rs) != 2 {
		t.Fatalf("findings: %v", kindsOf(rs))
	}
	expect(t, rs[0], "verdict", "missing", "reason", "after")
	expect(t, rs[1], "verdict", "late", "supersedes", rs[0].Seq, "approver", "bob@example.com")
}

func TestSelfApproval(t *testing.T) {
	cases := []struct {
		name, creator, promoter, approver, verdict string
	}{
		{"approver is creator", "alice", "", "ALICE", "self_approved"},
		{"creator unknown", "", "", "alice", "approved"},
		{"different people", "carol", "", "alice", "approved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, mlflowConfig())
			r := newRegistry().on(h)
			r.version("m", "1").Creator = c.creator
			h.poll(time.Minute, r.snapshot())
			r.tag("m", "1", "approved_by", c.approver)
			h.poll(time.Minute, r.snapshot())
			r.stage("m", "1", "Production")
			f := one(t, h.poll(time.Minute, r.snapshot()))
			expect(t, f, "verdict", c.verdict)
		})
	}
}

func TestApproverEqualsPromoter(t *testing.T) {
	// W&B-style: production alias set by an actor known from history, and
	// the approval alias set by the same actor.
	cfg := &Config{Aliases: []string{"production"}, ApprovalAlias: "approved", Objective: Fixed(30 * time.Minute)}
	h := newHarness(t, cfg)
	r := newRegistry().on(h)
	r.version("c", "v1")
	h.poll(time.Minute, r.snapshot())
	v := r.version("c", "v1")
	v.Aliases = []string{"approved"}
	v.Actors = []sources.Actor{{Change: "alias.set", Key: "approved", Actor: "dana", At: sources.FormatTime(h.now.Add(10 * time.Second)), Evidence: "a1"}}
	h.poll(time.Minute, r.snapshot())
	v = r.version("c", "v1")
	v.Aliases = []string{"approved", "production"}
	v.Actors = append(v.Actors, sources.Actor{Change: "alias.set", Key: "production", Actor: "Dana", At: sources.FormatTime(h.now.Add(10 * time.Second)), Evidence: "a2"})
	f := one(t, h.poll(time.Minute, r.snapshot()))
	expect(t, f, "verdict", "self_approved", "promoter", "Dana", "approver", "dana")
}

func TestAllowListAndTooOld(t *testing.T) {
	cfg := mlflowConfig()
	cfg.Approvers = []string{"bob@example.com"}
	h, r := started(t, cfg)
	r.tag("m", "1", "approved_by", "mallory@example.com")
	h.poll(time.Minute, r.snapshot())
	r.stage("m", "1", "Production")
	expect(t, one(t, h.poll(time.Minute, r.snapshot())), "verdict", "missing", "reason", "not_allowed", "approver", "mallory@example.com")

	cfg2 := mlflowConfig()
	cfg2.MaxAge = time.Hour
	h2, r2 := started(t, cfg2)
	r2.tag("m", "1", "approved_by", "bob@example.com")
	h2.poll(time.Minute, r2.snapshot())
	h2.poll(2*time.Hour, r2.snapshot())
	r2.stage("m", "1", "Production")
	expect(t, one(t, h2.poll(time.Minute, r2.snapshot())), "verdict", "missing", "reason", "too_old")
}

func TestPromotionAfterRejectedApproval(t *testing.T) {
	cfg := &Config{SourceType: sources.TypeSageMaker, LifecycleStages: []string{"Production"}, StatusApproval: true, Objective: Fixed(30 * time.Minute)}
	h := newHarness(t, cfg)
	r := newRegistry().on(h)
	r.version("g", "1").ApprovalStatus = "PendingManualApproval"
	h.poll(time.Minute, r.snapshot())
	r.version("g", "1").ApprovalStatus = "Rejected"
	none(t, h.poll(time.Minute, r.snapshot()))
	r.version("g", "1").LifecycleStage = "Production/Approved"
	expect(t, one(t, h.poll(time.Minute, r.snapshot())), "verdict", "rejected", "severity", "danger")
}

func TestSageMakerApprovalIsPromotion(t *testing.T) {
	cfg := &Config{SourceType: sources.TypeSageMaker, ApprovalStatus: "Approved", StatusApproval: true, Objective: Fixed(30 * time.Minute)}
	h := newHarness(t, cfg)
	r := newRegistry().on(h)
	v := r.version("g", "1")
	v.ApprovalStatus, v.Creator = "PendingManualApproval", "alice"
	h.poll(time.Minute, r.snapshot())
	r.version("g", "1").ApprovalStatus = "Approved"
	f := one(t, h.poll(time.Minute, r.snapshot()))
	expect(t, f, "verdict", "approved", "order", "", "approver", "unknown")
	// CloudTrail names the approver two polls later: the creator herself.
	h.poll(time.Minute, r.snapshot())
	r.version("g", "1").Actors = []sources.Actor{{Change: "approval.changed", Key: "Approved", Actor: "alice", At: sources.FormatTime(h.now.Add(-90 * time.Second)), Evidence: "ct-1"}}
	rs := h.poll(time.Minute, r.snapshot())
	f2 := one(t, rs)
	expect(t, f2, "verdict", "self_approved", "supersedes", f.Seq, "approver", "alice")

	// A version created Approved skipped the manual step.
	nv := r.version("g", "2")
	nv.ApprovalStatus = "Approved"
	nv.Raw = []sources.KV{{Key: RawCreatedApproved, Value: "true"}}
	expect(t, one(t, h.poll(time.Minute, r.snapshot())), "verdict", "missing", "reason", "created_approved")
}

func TestOverrunAndOverdueOnce(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.tag("m", "1", "approved_by", "bob@example.com")
	r.tag("m", "2", "approved_by", "bob@example.com")
	h.poll(time.Minute, r.snapshot())
	r.stage("m", "1", "Production")
	h.poll(time.Minute, r.snapshot())
	r.stage("m", "1", "Archived")
	r.stage("m", "2", "Production")
	h.poll(time.Minute, r.snapshot())
	// Demotion: v2 leaves, P empty.
	vacancyStart := r.at()
	r.stage("m", "2", "Archived")
	none(t, h.poll(time.Minute, r.snapshot()))
	for i := 0; i < 5; i++ { // 5 polls, 5 minutes apart: before the deadline
		none(t, h.poll(5*time.Minute-pollGap, r.snapshot()))
	}
	// The source is down: the deadline timer fires at s1 + 30 min.
	overdue := findingsOf(h.tick(vacancyStart.Add(30 * time.Minute).Sub(h.now)))
	for i := 0; i < 2; i++ {
		overdue = append(overdue, findingsOf(h.poll(time.Minute, r.snapshot()))...)
	}
	if len(overdue) != 1 || overdue[0].Kind != KindRollbackOverdue {
		t.Fatalf("overdue findings: %v", kindsOf(overdue))
	}
	if !overdue[0].From.Equal(vacancyStart.Add(30 * time.Minute)) {
		t.Fatalf("overdue at %v, want %v", overdue[0].From, vacancyStart.Add(30*time.Minute))
	}
	expect(t, overdue[0], "severity", "danger", "serving_before", "2")
	h.poll(vacancyStart.Add(40*time.Minute).Sub(h.now)-pollGap-pollGap/2, r.snapshot())
	// The older version is promoted 40 minutes after the demotion.
	r.stage("m", "1", "Production")
	f := one(t, h.poll(time.Minute, r.snapshot()))
	expect(t, f, "verdict", "approved", "result", "overrun", "severity", "danger", "change_type", "rollback")
	d := f.Payload["duration_ms"].([]any)
	if lo, hi := d[0].(int64), d[1].(int64); lo != (40*time.Minute).Milliseconds() || hi != lo {
		t.Fatalf("duration %v", d)
	}
	if len(findingsOf(h.tick(time.Hour))) != 0 {
		t.Fatal("overdue fired after completion")
	}
}

func TestRestored(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.stage("m", "1", "Production")
	h.poll(time.Minute, r.snapshot())
	r.stage("m", "1", "Archived")
	h.poll(time.Minute, r.snapshot())
	r.stage("m", "2", "Production")
	r.tag("m", "2", "approved_by", "bob")
	f := one(t, h.poll(time.Minute, r.snapshot()))
	if f.Kind != KindRestored {
		t.Fatalf("kind %s", f.Kind)
	}
	expect(t, f, "severity", "info")
}

func TestRollbackRequestedByTagMet(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.stage("m", "1", "Production")
	h.poll(time.Minute, r.snapshot())
	r.stage("m", "1", "Archived")
	r.stage("m", "2", "Production")
	h.poll(time.Minute, r.snapshot())
	r.tag("m", "2", "rollback_requested", "incident-7")
	h.poll(time.Minute, r.snapshot())
	h.poll(5*time.Minute, r.snapshot())
	r.stage("m", "2", "Archived")
	r.stage("m", "1", "Production")
	f := one(t, h.poll(time.Minute, r.snapshot()))
	expect(t, f, "result", "met", "change_type", "rollback")
	d := f.Payload["duration_ms"].([]any)
	if d[1].(int64) < (5 * time.Minute).Milliseconds() {
		t.Fatalf("duration %v does not start at the request", d)
	}
	if len(findingsOf(h.tick(time.Hour))) != 0 {
		t.Fatal("overdue after a completed rollback")
	}
}

func TestNoClockForRetiredOrDeleted(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.stage("m", "1", "Production")
	r.version("x", "1").Stage = "Production"
	h.poll(time.Minute, r.snapshot())
	r.tag("m", "1", "retired", "true")
	r.stage("m", "1", "Archived")
	r.remove("x")
	h.poll(time.Minute, r.snapshot())
	if got := findingsOf(h.tick(2 * time.Hour)); len(got) != 0 {
		t.Fatalf("overdue fired for a retired or deleted model: %v", kindsOf(got))
	}
	if len(h.st.Deadlines()) != 0 {
		t.Fatalf("deadlines: %v", h.st.Deadlines())
	}
}

func TestEmergencyChangeType(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.tag("m", "1", "emergency_change", "INC-9")
	r.stage("m", "1", "Production")
	expect(t, one(t, h.poll(time.Minute, r.snapshot())), "change_type", "emergency")
}

func TestObjectiveDefault(t *testing.T) {
	if (&Config{}).ObjectiveFor("x") != DefaultObjective {
		t.Fatal("default objective")
	}
}

func TestStateRebuildGivesSameOutputs(t *testing.T) {
	h, r := started(t, mlflowConfig())
	r.stage("m", "1", "Production")
	h.poll(time.Minute, r.snapshot())
	// Rebuild the state from the committed records, as a restart does.
	st := NewState(h.cfg)
	for _, rec := range h.records {
		st.Apply(rec)
	}
	r.tag("m", "1", "approved_by", "bob")
	snap := r.snapshot()
	h.st = st
	f := one(t, h.poll(time.Minute, snap))
	expect(t, f, "verdict", "late")
}
