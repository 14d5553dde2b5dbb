package policy

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/watch"
)

// Poll is one successful poll of the source, as the policy sees it.
type Poll struct {
	// Prev is the previous snapshot, nil at the source's first successful
	// poll (a baseline: production.changed entries, no findings).
	Prev *sources.Snapshot
	// Next is the snapshot just taken, with the identities watch carried over.
	Next *sources.Snapshot
	// Changes are the poll's changes in batch order. Attribution changes
	// MUST carry payload entry_seq (int64) resolved by the caller.
	Changes []watch.Change
	// PrevPollStart and PollEnd bound the poll interval; PollEnd is "now".
	PrevPollStart time.Time
	PollEnd       time.Time
}

// Evaluate judges one poll against the state folded from the ledger so far.
// It does not modify s: the caller appends the outputs after the changes and
// then applies the committed entries to s.
func Evaluate(s *State, p Poll) []Output {
	e := &evaluator{s: s, cfg: s.cfg, p: p, byVersion: make(map[verKey][]int), byModel: make(map[string][]int)}
	deleted := make(map[string]bool)
	for i, c := range p.Changes {
		e.byVersion[verKey{c.ModelID, c.Version}] = append(e.byVersion[verKey{c.ModelID, c.Version}], i)
		e.byModel[c.ModelID] = append(e.byModel[c.ModelID], i)
		if c.Kind == watch.KindModelDeleted {
			deleted[c.ModelID] = true
		}
	}
	e.completed = make(map[string]bool)
	for i := range p.Next.Models {
		e.model(&p.Next.Models[i])
	}
	ids := make([]string, 0, len(deleted))
	for id := range deleted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e.gone(id)
	}
	if p.Prev != nil {
		for _, o := range overdue(s, p.PollEnd, e.completed) {
			e.emit(o)
		}
	}
	return e.out
}

// Overdue returns a rollback.overdue finding for every rollback clock of s
// whose objective has passed at now and that has not fired. The daemon calls
// it from its deadline timers, so the finding fires while the source is down;
// the ledger's finding_id makes a second firing a no-op.
func Overdue(s *State, now time.Time) []Output { return overdue(s, now, nil) }

type verKey struct{ model, version string }

type evaluator struct {
	s         *State
	cfg       *Config
	p         Poll
	out       []Output
	byVersion map[verKey][]int
	byModel   map[string][]int
	// completed holds the models whose rollback clocks this poll ends.
	completed map[string]bool
}

func (e *evaluator) emit(o Output) int {
	e.out = append(e.out, o)
	return len(e.out) - 1
}

func (e *evaluator) pollInterval() Interval { return Interval{e.p.PrevPollStart, e.p.PollEnd} }

func (e *evaluator) change(i int) *watch.Change { return &e.p.Changes[i] }

func changeInterval(c *watch.Change) Interval { return Interval{c.From, c.To} }

// inProduction reports whether any configured production pointer holds v.
func (c *Config) inProduction(v *sources.Version) bool {
	if slices.Contains(c.Stages, v.Stage) {
		return true
	}
	for _, a := range v.Aliases {
		if slices.Contains(c.Aliases, a) {
			return true
		}
	}
	if c.ApprovalStatus != "" && v.ApprovalStatus == c.ApprovalStatus {
		return true
	}
	return c.inLifecycle(v.LifecycleStage)
}

// inLifecycle matches a lifecycle stage ("Production" or "Production/Approved")
// against the configured stage names.
func (c *Config) inLifecycle(stage string) bool {
	if stage == "" {
		return false
	}
	name, _, _ := strings.Cut(stage, "/")
	return slices.Contains(c.LifecycleStages, stage) || slices.Contains(c.LifecycleStages, name)
}

func (e *evaluator) production(m *sources.Model) []string {
	var p []string
	for i := range m.Versions { // sorted by ordering key
		if e.cfg.inProduction(&m.Versions[i]) {
			p = append(p, m.Versions[i].ID)
		}
	}
	return p
}

func findVersion(m *sources.Model, id string) *sources.Version {
	for i := range m.Versions {
		if m.Versions[i].ID == id {
			return &m.Versions[i]
		}
	}
	return nil
}

func order(id string) int64 {
	n, _ := watch.VersionOrder(id)
	return n
}

func last(p []string) string {
	if len(p) == 0 {
		return ""
	}
	return p[len(p)-1]
}

// model evaluates one model of the new snapshot.
func (e *evaluator) model(m *sources.Model) {
	ms := e.s.models[m.ID]
	var pPrev []string
	if ms != nil {
		pPrev = ms.p
	}
	pNext := e.production(m)
	if slices.Equal(pPrev, pNext) {
		e.rejudge(m, ms, pNext)
		return
	}
	servingBefore, servingAfter := last(pPrev), last(pNext)
	entering, leaving := diff(pNext, pPrev), diff(pPrev, pNext)
	triggers := make(map[string]int, len(entering))
	var moves []int
	for _, id := range entering {
		if i := e.enteringChange(m.ID, id); i >= 0 {
			triggers[id] = i
			moves = append(moves, i)
		}
	}
	leavingServing := -1
	for _, id := range leaving {
		if i := e.leavingChange(m.ID, id); i >= 0 {
			moves = append(moves, i)
			if id == servingBefore {
				leavingServing = i
			}
		}
	}
	when := e.pollInterval()
	if len(moves) > 0 {
		when = changeInterval(e.change(moves[0]))
		for _, i := range moves[1:] {
			c := e.change(i)
			if c.From.Before(when.From) {
				when.From = c.From
			}
			if c.To.After(when.To) {
				when.To = c.To
			}
		}
	}
	e.emit(Output{
		Kind: KindProductionChanged, Model: m.Name, ModelID: m.ID, From: when.From, To: when.To,
		Payload: map[string]any{
			"before": stringsAny(pPrev), "after": stringsAny(pNext),
			"serving_before": servingBefore, "serving_after": servingAfter,
		},
	})
	if len(pNext) > 0 {
		e.completed[m.ID] = true
	}
	if e.p.Prev == nil {
		return // a baseline judges nothing
	}
	kind := KindPromotion
	switch {
	case len(pPrev) > 0:
		if order(servingAfter) < order(servingBefore) {
			kind = KindRollback
		}
	case ms != nil && ms.served:
		switch lo := order(ms.lastServing); {
		case order(servingAfter) < lo:
			kind = KindRollback
		case order(servingAfter) > lo:
			kind = KindRestored
		}
	}
	for _, id := range entering {
		trig, ok := triggers[id]
		if !ok {
			continue // entered P without a change moving it (e.g. a scope change)
		}
		e.judgeEntering(m, ms, id, kind, trig, leavingServing, servingBefore, servingAfter)
	}
	if len(entering) == 0 && servingBefore != "" && servingAfter != "" && order(servingAfter) < order(servingBefore) && leavingServing >= 0 {
		e.naRollback(m, ms, leavingServing, servingBefore, servingAfter)
	}
	e.rejudge(m, ms, intersect(pPrev, pNext))
}

// gone handles a model deleted in this poll: P becomes empty, no clock starts.
func (e *evaluator) gone(id string) {
	ms := e.s.models[id]
	if ms == nil || len(ms.p) == 0 {
		return
	}
	for _, m := range e.p.Next.Models {
		if m.ID == id {
			return // recreated under the same identity: handled by model
		}
	}
	c := e.change(e.byModel[id][0])
	for _, i := range e.byModel[id] {
		if e.change(i).Kind == watch.KindModelDeleted {
			c = e.change(i)
		}
	}
	e.emit(Output{
		Kind: KindProductionChanged, Model: c.Model, ModelID: id, From: c.From, To: c.To,
		Payload: map[string]any{
			"before": stringsAny(ms.p), "after": []any{},
			"serving_before": last(ms.p), "serving_after": "",
		},
	})
	e.completed[id] = true
}

// enteringChange returns the index of the first change of the poll that
// moved version v into production, or -1.
func (e *evaluator) enteringChange(modelID, v string) int {
	cfg := e.cfg
	for _, i := range e.byVersion[verKey{modelID, v}] {
		c := e.change(i)
		switch c.Kind {
		case watch.KindVersionCreated:
			return i
		case watch.KindStageChanged:
			if slices.Contains(cfg.Stages, str(c.Payload, "to")) && !slices.Contains(cfg.Stages, str(c.Payload, "from")) {
				return i
			}
		case watch.KindAliasSet:
			if slices.Contains(cfg.Aliases, str(c.Payload, "alias")) {
				return i
			}
		case watch.KindApprovalChanged:
			if cfg.ApprovalStatus != "" && str(c.Payload, "to") == cfg.ApprovalStatus {
				return i
			}
		case watch.KindLifecycle:
			if cfg.inLifecycle(str(c.Payload, "to")) && !cfg.inLifecycle(str(c.Payload, "from")) {
				return i
			}
		}
	}
	return -1
}

// leavingChange returns the index of the first change of the poll that moved
// version v out of production, or -1.
func (e *evaluator) leavingChange(modelID, v string) int {
	cfg := e.cfg
	for _, i := range e.byModel[modelID] {
		c := e.change(i)
		if c.Kind == watch.KindAliasSet && str(c.Payload, "previous_version") == v && slices.Contains(cfg.Aliases, str(c.Payload, "alias")) {
			return i
		}
		if c.Version != v {
			continue
		}
		switch c.Kind {
		case watch.KindVersionDeleted:
			return i
		case watch.KindStageChanged:
			if slices.Contains(cfg.Stages, str(c.Payload, "from")) && !slices.Contains(cfg.Stages, str(c.Payload, "to")) {
				return i
			}
		case watch.KindAliasRemoved:
			if slices.Contains(cfg.Aliases, str(c.Payload, "alias")) {
				return i
			}
		case watch.KindApprovalChanged:
			if cfg.ApprovalStatus != "" && str(c.Payload, "from") == cfg.ApprovalStatus {
				return i
			}
		case watch.KindLifecycle:
			if cfg.inLifecycle(str(c.Payload, "from")) && !cfg.inLifecycle(str(c.Payload, "to")) {
				return i
			}
		}
	}
	return -1
}

// judgeEntering appends the judged finding of a version entering P.
func (e *evaluator) judgeEntering(m *sources.Model, ms *modelState, id, kind string, trig, leavingServing int, servingBefore, servingAfter string) {
	v := findVersion(m, id)
	c := e.change(trig)
	t := changeInterval(c)
	promoter := c.Actor
	if c.Kind == watch.KindVersionCreated {
		t = e.pollInterval() // first seen already in P: entered over the poll
		promoter = e.createdPromoter(v, c)
	}
	var hist *versionState
	if ms != nil {
		hist = ms.versions[id]
	}
	j := e.judge(m, v, hist, kind, trig, -1, t, promoter, nil)
	payload := e.findingPayload(v, j, changeRef(trig), promoter, servingBefore, servingAfter)
	payload["change_type"] = e.changeType(kind, v, hist)
	if kind == KindRollback {
		e.addTiming(payload, m.Name, ms, trig, t, leavingServing)
	}
	idx := e.emitFinding(kind, m, id, t, payload)
	if j.reason == ReasonAfter {
		late := j
		late.verdict, late.reason = VerdictLate, ""
		e.supersede(m, id, payload, late, outputRef(idx), changeRef(j.evidenceChange), t)
	}
}

// createdPromoter names who put a version first seen already in production
// there: the actor of a fact about a production pointer (a W&B alias set, a
// SageMaker approval, a stage or lifecycle change), else its creator when it
// was created already in production (SageMaker created_approved), else
// unknown: who created a version is not who promoted it.
func (e *evaluator) createdPromoter(v *sources.Version, created *watch.Change) string {
	cfg := e.cfg
	if v == nil {
		return Unknown
	}
	for _, try := range []struct {
		kind string
		keys []string
	}{
		{watch.KindAliasSet, cfg.Aliases},
		{watch.KindApprovalChanged, []string{cfg.ApprovalStatus}},
		{watch.KindStageChanged, cfg.Stages},
		{watch.KindLifecycle, cfg.LifecycleStages},
	} {
		if f, ok := pointerFact(v, try.kind, try.keys...); ok {
			return f.actor
		}
	}
	if rawValue(v.Raw, RawCreatedApproved) == "true" {
		return created.Actor
	}
	return Unknown
}

// naRollback appends the rollback with verdict n/a of a serving key that went
// down without any version entering P.
func (e *evaluator) naRollback(m *sources.Model, ms *modelState, trig int, servingBefore, servingAfter string) {
	c := e.change(trig)
	t := changeInterval(c)
	v := findVersion(m, servingAfter)
	payload := e.findingPayload(v, judgement{verdict: VerdictNA}, changeRef(trig), c.Actor, servingBefore, servingAfter)
	payload["change_type"] = "rollback"
	e.addTiming(payload, m.Name, ms, trig, t, trig)
	e.emitFinding(KindRollback, m, servingAfter, t, payload)
}

func (e *evaluator) emitFinding(kind string, m *sources.Model, version string, t Interval, payload map[string]any) int {
	payload["severity"] = Severity(kind, str(payload, "verdict"), str(payload, "order"), str(payload, "result"))
	return e.emit(Output{
		Kind: kind, Model: m.Name, ModelID: m.ID, Version: version, From: t.From, To: t.To,
		Payload: payload, Alert: ShouldAlert(kind, payload),
	})
}

func (e *evaluator) changeType(kind string, v *sources.Version, hist *versionState) string {
	if kind == KindRollback {
		return "rollback"
	}
	if tag := e.cfg.EmergencyTag; tag != "" && v != nil {
		for _, kv := range v.Tags {
			if kv.Key == tag {
				return "emergency"
			}
		}
	}
	return "standard"
}

// findingPayload builds the keys every judged finding carries.
func (e *evaluator) findingPayload(v *sources.Version, j judgement, trig Ref, promoter, servingBefore, servingAfter string) map[string]any {
	if promoter == "" {
		promoter = Unknown
	}
	url := ""
	if v != nil {
		url = v.URL
	}
	p := map[string]any{
		"triggering_seq": trig,
		"supersedes":     "",
		"promoter":       promoter,
		"serving_before": servingBefore,
		"serving_after":  servingAfter,
		"registry_url":   url,
	}
	j.fill(p)
	return p
}

// addTiming adds the rollback timing keys: start, completed, duration_ms,
// objective_ms and result.
func (e *evaluator) addTiming(p map[string]any, model string, ms *modelState, trig int, completed Interval, leaving int) {
	start, atomic := completed, true
	consider := func(s Interval) {
		if atomic || s.From.Before(start.From) {
			start, atomic = s, false
		}
	}
	if ms != nil && ms.vacancy != nil {
		consider(ms.vacancy.start)
	}
	if ms != nil && ms.request != nil {
		consider(ms.request.start)
	}
	if leaving >= 0 && leaving != trig {
		consider(changeInterval(e.change(leaving)))
	}
	objective := e.cfg.ObjectiveFor(model)
	var lo, hi time.Duration
	if !atomic {
		lo = max(0, completed.From.Sub(start.To))
		hi = max(0, completed.To.Sub(start.From))
	}
	result := "met"
	if hi > objective {
		result = "overrun"
	}
	p["start"] = start.payload()
	p["completed"] = completed.payload()
	p["duration_ms"] = []any{lo.Milliseconds(), hi.Milliseconds()}
	p["objective_ms"] = objective.Milliseconds()
	p["result"] = result
}

// rejudge appends a superseding promotion for versions that stayed in P when
// approval evidence or an attribution arrives in this poll for a finding that
// is open, or whose separation-of-duties check was unknown.
func (e *evaluator) rejudge(m *sources.Model, ms *modelState, stayed []string) {
	if ms == nil || e.p.Prev == nil {
		return
	}
	for _, id := range stayed {
		hist := ms.versions[id]
		if hist == nil {
			continue
		}
		latest := hist.lastJudged()
		if latest == nil {
			continue
		}
		open := hist.openFindings()
		evIdx := e.evidenceChange(m.ID, id)
		attrIdx, promoterAttr, approverAttr := e.attributionFor(m.ID, id, latest)
		if evIdx < 0 && attrIdx < 0 {
			continue
		}
		if len(open) == 0 && (evIdx >= 0 && attrIdx < 0 || latest.sodKnown) {
			continue
		}
		promoter := str(latest.payload, "promoter")
		if promoterAttr != "" {
			promoter = promoterAttr
		}
		v := findVersion(m, id)
		trig := evIdx
		if trig < 0 {
			trig = attrIdx
		}
		var attributed map[int64]string
		if approverAttr != "" {
			attributed = make(map[int64]string)
			for _, seq := range latest.evidence {
				attributed[seq] = approverAttr
			}
		}
		j := e.judge(m, v, hist, KindPromotion, trig, latest.trigger, latest.t, promoter, attributed)
		if j.reason == ReasonAfter {
			j.verdict, j.reason = VerdictLate, ""
		}
		if j.verdict == str(latest.payload, "verdict") && j.reason == str(latest.payload, "reason") &&
			j.approver == str(latest.payload, "approver") && promoter == str(latest.payload, "promoter") {
			continue
		}
		target := latest
		if len(open) > 0 {
			target = open[len(open)-1]
		}
		base := copyMap(target.payload)
		base["promoter"] = promoter
		e.supersede(m, id, base, j, seqRef(target.seq), changeRef(trig), target.t)
	}
}

// supersede appends a promotion that supersedes the finding whose payload is
// base (referenced by sup), triggered by trig, with judgement j.
func (e *evaluator) supersede(m *sources.Model, id string, base map[string]any, j judgement, sup, trig Ref, t Interval) {
	p := map[string]any{
		"triggering_seq": trig,
		"supersedes":     sup,
		"registry_url":   str(base, "registry_url"),
	}
	for _, k := range []string{"change_type", "serving_before", "serving_after", "promoter", "start", "completed", "duration_ms", "objective_ms", "result"} {
		if val, ok := base[k]; ok {
			p[k] = val
		}
	}
	j.fill(p)
	e.emitFinding(KindPromotion, m, id, t, p)
}

// evidenceChange returns the index of a change of this poll that adds
// approval evidence to version v, or -1.
func (e *evaluator) evidenceChange(modelID, v string) int {
	cfg := e.cfg
	for _, i := range e.byVersion[verKey{modelID, v}] {
		c := e.change(i)
		switch {
		case c.Kind == watch.KindTagSet && cfg.ApprovalTag != "" && str(c.Payload, "key") == cfg.ApprovalTag:
			return i
		case c.Kind == watch.KindAliasSet && cfg.ApprovalAlias != "" && str(c.Payload, "alias") == cfg.ApprovalAlias:
			return i
		case c.Kind == watch.KindApprovalChanged && cfg.StatusApproval && str(c.Payload, "to") == "Approved":
			return i
		}
	}
	return -1
}

// attributionFor finds an attribution of this poll naming the triggering
// change or the evidence of finding f; it returns its index and the actor it
// gives the promoter or the approver.
func (e *evaluator) attributionFor(modelID, v string, f *findingState) (idx int, promoter, approver string) {
	idx = -1
	for _, i := range e.byVersion[verKey{modelID, v}] {
		c := e.change(i)
		if c.Kind != watch.KindAttribution {
			continue
		}
		seq := payloadInt(c.Payload, "entry_seq")
		actor := str(c.Payload, "actor")
		if seq == f.trigger {
			idx, promoter = i, actor
		}
		if slices.Contains(f.evidence, seq) {
			idx, approver = i, actor
		}
	}
	return idx, promoter, approver
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func stringsAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// overdue returns rollback.overdue findings for the clocks of s whose
// objective passed at now, skipping models in skip.
func overdue(s *State, now time.Time, skip map[string]bool) []Output {
	ids := make([]string, 0, len(s.models))
	for id := range s.models {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Output
	for _, id := range ids {
		m := s.models[id]
		if skip[id] {
			continue
		}
		for _, c := range []*rollbackClock{m.vacancy, m.request} {
			if c == nil || c.overdue {
				continue
			}
			objective := s.cfg.ObjectiveFor(m.name)
			deadline := c.start.From.Add(objective)
			if now.Before(deadline) {
				continue
			}
			p := map[string]any{
				"triggering_seq": seqRef(c.trigger),
				"supersedes":     "",
				"promoter":       "",
				"serving_before": c.version,
				"serving_after":  m.serving(),
				"registry_url":   "",
				"change_type":    "rollback",
				"start":          c.start.payload(),
				"objective_ms":   objective.Milliseconds(),
			}
			judgement{}.fill(p)
			p["severity"] = Severity(KindRollbackOverdue, "", "", "")
			out = append(out, Output{
				Kind: KindRollbackOverdue, Model: m.name, ModelID: id, Version: c.version,
				From: deadline, To: deadline, Payload: p, Alert: true,
			})
		}
	}
	return out
}
