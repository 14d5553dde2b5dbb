package policy

import (
	"encoding/json"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/watch"
)

// RawCreatedApproved is the Version.Raw key a source sets to "true" when a
// version was created already approved and so skipped the manual approval
// step (SageMaker).
const RawCreatedApproved = "created_approved"

// judgement is the approval verdict of one finding and the evidence for it.
type judgement struct {
	verdict  string
	reason   string
	order    string
	approver string
	// approvedAt is an Interval, an inherited payload value, or nil.
	approvedAt any
	evidence   []any
	// evidenceChange is the index of the poll's change that is the
	// evidence, or -1.
	evidenceChange int
}

// fill writes the judgement's payload keys; absent values are "" or [].
func (j judgement) fill(p map[string]any) {
	p["verdict"] = j.verdict
	p["reason"] = j.reason
	p["order"] = j.order
	p["approver"] = j.approver
	switch at := j.approvedAt.(type) {
	case Interval:
		p["approved_at"] = at.payload()
	case nil:
		p["approved_at"] = ""
	default:
		p["approved_at"] = at
	}
	if j.evidence == nil {
		p["evidence"] = []any{}
	} else {
		p["evidence"] = j.evidence
	}
}

// evidence is one piece of approval evidence found for a version.
type evidence struct {
	kind     string
	ref      Ref
	change   int
	approver string
	at       Interval
	// transition marks evidence that is the promotion itself (a SageMaker
	// approval that is the production pointer, a Databricks request approved
	// with the stage change): it is neither before nor after it.
	transition bool
}

// judge returns the verdict for version v entering P (or re-judged) at time
// t. trig is the poll's change that triggers the judgement; promotedBy is the
// seq of the committed change that moved v into P when re-judging (else -1).
// attributed maps entry seqs to actors learned in this poll.
func (e *evaluator) judge(m *sources.Model, v *sources.Version, hist *versionState, kind string, trig int, promotedBy int64, t Interval, promoter string, attributed map[int64]string) judgement {
	cfg := e.cfg
	j := judgement{evidenceChange: -1}
	if kind == KindRollback && hist != nil {
		if f := hist.lastJudged(); f != nil && f.verdict == VerdictApproved {
			j.verdict = VerdictApproved
			j.approver = str(f.payload, "approver")
			j.approvedAt = f.payload["approved_at"]
			j.evidence = []any{map[string]any{"kind": f.kind, "seq": seqRef(f.seq)}}
			return j
		}
	}
	if v == nil {
		j.verdict, j.reason = VerdictMissing, ReasonNoEvidence
		return j
	}
	ev := e.findEvidence(m.ID, v, hist, trig, promotedBy, t)
	if ev == nil {
		switch {
		case cfg.StatusApproval && v.ApprovalStatus == "Rejected":
			j.verdict = VerdictRejected
		case cfg.StatusApproval && rawValue(v.Raw, RawCreatedApproved) == "true":
			j.verdict, j.reason = VerdictMissing, ReasonCreatedApproved
		default:
			j.verdict, j.reason = VerdictMissing, ReasonNoEvidence
		}
		return j
	}
	if a, ok := attributed[ev.ref.Seq]; ok && ev.change < 0 {
		ev.approver = a
	}
	if ev.approver == "" {
		ev.approver = Unknown
	}
	j.approver = ev.approver
	j.approvedAt = ev.at
	j.evidence = []any{map[string]any{"kind": ev.kind, "seq": ev.ref}}
	j.evidenceChange = ev.change
	switch {
	case len(cfg.Approvers) > 0 && !containsFold(cfg.Approvers, ev.approver):
		j.verdict, j.reason = VerdictMissing, ReasonNotAllowed
	case cfg.MaxAge > 0 && t.From.Sub(ev.at.To) > cfg.MaxAge:
		j.verdict, j.reason = VerdictMissing, ReasonTooOld
	case sameIdentity(ev.approver, v.Creator) || (cfg.ApprovalStatus == "" && sameIdentity(ev.approver, promoter)):
		// When the approval status is the production pointer, the approval
		// is the promotion: only the creator is compared.
		j.verdict = VerdictSelfApproved
	case ev.transition || ev.at.To.Before(t.From):
		j.verdict = VerdictApproved
	case ev.at.From.After(t.To):
		j.verdict, j.reason = VerdictMissing, ReasonAfter
	default:
		j.verdict, j.order = VerdictApproved, "same_poll"
	}
	return j
}

// findEvidence returns the approval evidence of v under the source's
// approval config: from a change of this poll, else from history. Evidence
// present at a baseline counts as set at the baseline's observed_at.
// promotedBy is the seq of the change that moved v into P when re-judging a
// committed finding, else -1.
func (e *evaluator) findEvidence(modelID string, v *sources.Version, hist *versionState, trig int, promotedBy int64, t Interval) *evidence {
	cfg := e.cfg
	fromHistory := func(approver string) *evidence {
		if hist == nil || hist.evidence == nil || !hist.evidence.present {
			return nil
		}
		h := hist.evidence
		if approver == "" {
			approver = h.approver
		}
		// Evidence that is the promotion itself stays so when re-judged.
		return &evidence{kind: h.kind, ref: seqRef(h.seq), change: -1, approver: approver, at: h.at, transition: h.seq == promotedBy}
	}
	fromChange := func(i int, approver string) *evidence {
		c := e.change(i)
		if approver == "" {
			approver = c.Actor
		}
		return &evidence{kind: c.Kind, ref: changeRef(i), change: i, approver: approver, at: changeInterval(c)}
	}
	switch {
	case cfg.ApprovalTag != "":
		value, ok := tagValue(v.Tags, cfg.ApprovalTag)
		if !ok {
			return nil
		}
		var ev *evidence
		if i := e.versionChange(modelID, v.ID, func(c *watch.Change) bool {
			return c.Kind == watch.KindTagSet && str(c.Payload, "key") == cfg.ApprovalTag
		}); i >= 0 {
			ev = fromChange(i, value)
		} else if i := e.versionChange(modelID, v.ID, isCreated); i >= 0 {
			ev = fromChange(i, value) // first seen with the tag, as State.Apply folds it
		} else if ev = fromHistory(value); ev == nil {
			return nil
		}
		if cfg.ApprovalTimeTag != "" {
			if s, ok := tagValue(v.Tags, cfg.ApprovalTimeTag); ok {
				if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
					ev.at = Interval{at.UTC(), at.UTC()}
				}
			}
		}
		return ev
	case cfg.ApprovalAlias != "":
		if !containsString(v.Aliases, cfg.ApprovalAlias) {
			return nil
		}
		if i := e.versionChange(modelID, v.ID, func(c *watch.Change) bool {
			return c.Kind == watch.KindAliasSet && str(c.Payload, "alias") == cfg.ApprovalAlias
		}); i >= 0 {
			return fromChange(i, "")
		}
		if i := e.versionChange(modelID, v.ID, isCreated); i >= 0 {
			// First seen with the alias, as State.Apply folds it; an actor
			// fact (W&B action history) may name who set it.
			ev := fromChange(i, Unknown)
			if f, ok := pointerFact(v, watch.KindAliasSet, cfg.ApprovalAlias); ok {
				ev.approver, ev.at = f.actor, Interval{f.at, f.at}
			}
			return ev
		}
		return fromHistory("")
	case cfg.StatusApproval:
		if v.ApprovalStatus != "Approved" {
			return nil
		}
		if i := e.versionChange(modelID, v.ID, func(c *watch.Change) bool {
			return c.Kind == watch.KindApprovalChanged && str(c.Payload, "to") == "Approved"
		}); i >= 0 {
			ev := fromChange(i, "")
			ev.transition = i == trig
			return ev
		}
		if i := e.versionChange(modelID, v.ID, isCreated); i >= 0 && rawValue(v.Raw, RawCreatedApproved) != "true" {
			// Created pending and approved between two polls: the approval
			// happened; CloudTrail may already name who approved it.
			ev := fromChange(i, Unknown)
			if f, ok := pointerFact(v, watch.KindApprovalChanged, "Approved"); ok {
				ev.approver, ev.at = f.actor, Interval{f.at, f.at}
			}
			ev.transition = i == trig && cfg.ApprovalStatus != ""
			return ev
		}
		if hist != nil && hist.evidence != nil && hist.evidence.rejected {
			return nil
		}
		return fromHistory("")
	case cfg.TransitionRequests:
		if trig < 0 || e.change(trig).Kind != watch.KindStageChanged {
			return nil
		}
		stage := str(e.change(trig).Payload, "to")
		if i := e.versionChange(modelID, v.ID, func(c *watch.Change) bool {
			return c.Kind == watch.KindRequestClosed && str(c.Payload, "to_stage") == stage
		}); i >= 0 {
			ev := fromChange(i, Unknown)
			ev.at, ev.transition = t, true
			return ev
		}
	}
	return nil
}

// isCreated matches the change that first records a version: approval
// evidence it carries counts from it, as it does once folded into history.
func isCreated(c *watch.Change) bool { return c.Kind == watch.KindVersionCreated }

// fact is an actor fact of a version's snapshot, parsed.
type fact struct {
	actor string
	at    time.Time
}

// pointerFact returns the latest actor fact of v for a change of kind to one
// of keys (an alias name, a status or a stage) whose actor is known. It
// names who acted for a version first seen already changed, when the
// change itself has no entry of its own.
func pointerFact(v *sources.Version, kind string, keys ...string) (fact, bool) {
	var best fact
	found := false
	for _, f := range v.Actors {
		if f.Change != kind || f.Key == "" || !known(f.Actor) || !containsString(keys, f.Key) {
			continue
		}
		at, ok := sources.ParseTime(f.At)
		if ok && (!found || at.After(best.at)) {
			best, found = fact{f.Actor, at}, true
		}
	}
	return best, found
}

// versionChange returns the index of the first change of version v in this
// poll that satisfies ok, or -1.
func (e *evaluator) versionChange(modelID, v string, ok func(*watch.Change) bool) int {
	for _, i := range e.byVersion[verKey{modelID, v}] {
		if ok(e.change(i)) {
			return i
		}
	}
	return -1
}

// Severity is the worse of the verdict's and the rollback result's severity
// (DESIGN.md section 4): danger for missing, self_approved, rejected,
// overrun, rollback.overdue and coverage.late; warning for late (a follow-up
// in the original thread); info for approved same_poll, met and restored;
// none for approved. The result is stored in the finding's payload, where the
// alert dispatcher reads it.
func Severity(kind, verdict, order, result string) string {
	if kind == KindRollbackOverdue || kind == KindCoverageLate {
		return SeverityDanger
	}
	sev := SeverityNone
	rank := map[string]int{SeverityNone: 0, SeverityInfo: 1, SeverityWarning: 2, SeverityDanger: 3}
	raise := func(s string) {
		if rank[s] > rank[sev] {
			sev = s
		}
	}
	switch verdict {
	case VerdictMissing, VerdictSelfApproved, VerdictRejected:
		raise(SeverityDanger)
	case VerdictLate:
		raise(SeverityWarning) // a follow-up in the original alert's thread
	case VerdictApproved:
		if order == "same_poll" {
			raise(SeverityInfo)
		}
	}
	if kind == KindRestored {
		raise(SeverityInfo)
	}
	switch result {
	case "overrun":
		raise(SeverityDanger)
	case "met":
		raise(SeverityInfo)
	}
	return sev
}

// ShouldAlert reports whether a finding with this payload alerts someone:
// every finding with a severity (approved promotions alert nobody).
func ShouldAlert(kind string, payload map[string]any) bool {
	return str(payload, "severity") != SeverityNone
}

func tagValue(tags []sources.KV, key string) (string, bool) {
	for _, kv := range tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

func rawValue(raw []sources.KV, key string) string {
	v, _ := tagValue(raw, key)
	return v
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if sameIdentity(x, s) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns a payload string value, "" when absent or not a string.
func str(p map[string]any, k string) string {
	s, _ := p[k].(string)
	return s
}

func payloadString(p map[string]any, k string) string { return str(p, k) }

// payloadInt returns a payload integer (int64, int, json.Number, float64 or
// a resolved Ref), 0 when absent.
func payloadInt(p map[string]any, k string) int64 { return toInt(p[k]) }

func payloadHasInt(p map[string]any, k string) bool {
	switch p[k].(type) {
	case int64, int, json.Number, float64:
		return true
	}
	return false
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	case Ref:
		return n.Seq
	}
	return 0
}

func payloadList(p map[string]any, k string) []any {
	switch l := p[k].(type) {
	case []any:
		return l
	case []map[string]any:
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = x
		}
		return out
	}
	return nil
}

func payloadStrings(p map[string]any, k string) []string {
	if s, ok := p[k].([]string); ok {
		return s
	}
	var out []string
	for _, x := range payloadList(p, k) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// payloadKVs returns a payload's [{key, value}] list as pairs.
func payloadKVs(p map[string]any, k string) [][2]string {
	var out [][2]string
	for _, x := range payloadList(p, k) {
		if m, ok := x.(map[string]any); ok {
			out = append(out, [2]string{str(m, "key"), str(m, "value")})
		}
	}
	return out
}

func versionOrder(id string) int64 { return order(id) }
