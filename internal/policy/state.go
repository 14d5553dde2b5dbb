package policy

import (
	"slices"
	"sort"
	"time"

	"github.com/registrywatch/registrywatch/internal/watch"
)

// State is the policy's view of a source's history, folded from its
// committed entries in seq order (Apply). It is derived data: rebuilding it
// from the ledger gives the same State.
type State struct {
	cfg    *Config
	models map[string]*modelState // by model_id
}

type modelState struct {
	name    string
	deleted bool
	// p holds the versions in production, in ordering-key order.
	p []string
	// served reports that P has held versions before; lastServing is the
	// serving version when P was last non-empty.
	served      bool
	lastServing string
	vacancy     *rollbackClock
	request     *rollbackClock
	versions    map[string]*versionState
}

// rollbackClock is a rollback that has started and not completed: a vacancy
// or a rollback request.
type rollbackClock struct {
	start   Interval
	trigger int64 // seq of the entry that started it
	version string
	overdue bool
}

type versionState struct {
	findings []*findingState
	evidence *evidenceState
	// tags holds the values of the tags the policy reads (approval, time,
	// retire, emergency, rollback request).
	tags map[string]string
	// actors maps a change entry's seq to the actor an attribution gave it.
	actors map[int64]string
}

type findingState struct {
	seq        int64
	kind       string
	verdict    string
	open       bool
	t          Interval
	trigger    int64
	evidence   []int64
	payload    map[string]any
	sodKnown   bool
	superseded bool
}

// evidenceState is the latest approval evidence of a version.
type evidenceState struct {
	seq      int64
	kind     string
	approver string
	at       Interval
	present  bool
	rejected bool
}

// NewState returns an empty State for a source with policy cfg.
func NewState(cfg *Config) *State {
	return &State{cfg: cfg, models: make(map[string]*modelState)}
}

func (s *State) model(id string) *modelState {
	m := s.models[id]
	if m == nil {
		m = &modelState{versions: make(map[string]*versionState)}
		s.models[id] = m
	}
	return m
}

func (m *modelState) version(id string) *versionState {
	v := m.versions[id]
	if v == nil {
		v = &versionState{tags: make(map[string]string), actors: make(map[int64]string)}
		m.versions[id] = v
	}
	return v
}

// Apply folds one committed entry of the source into the state. Entries
// MUST be applied in seq order.
func (s *State) Apply(r Record) {
	if r.ModelID == "" {
		return
	}
	m := s.model(r.ModelID)
	if r.Model != "" {
		m.name = r.Model
	}
	cfg := s.cfg
	switch r.Kind {
	case KindProductionChanged:
		s.applyProduction(m, r)
	case KindPromotion, KindRollback, KindRestored:
		s.applyFinding(m, r)
	case KindRollbackOverdue:
		seq := payloadInt(r.Payload, "triggering_seq")
		for _, c := range []*rollbackClock{m.vacancy, m.request} {
			if c != nil && c.trigger == seq {
				c.overdue = true
			}
		}
	case watch.KindModelDeleted:
		m.deleted = true
	case watch.KindModelCreated:
		m.deleted = false
	case watch.KindBaseline, watch.KindVersionCreated:
		if r.Version == "" {
			return
		}
		v := m.version(r.Version)
		for _, kv := range payloadKVs(r.Payload, "tags") {
			v.setTag(cfg, kv[0], kv[1])
		}
		at := Interval{r.From, r.To}
		if r.Kind == watch.KindBaseline {
			at = Interval{r.ObservedAt, r.ObservedAt}
		}
		if val, ok := v.tags[cfg.ApprovalTag]; ok && cfg.ApprovalTag != "" {
			v.evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: val, at: at, present: true}
		}
		if cfg.ApprovalAlias != "" && slices.Contains(payloadStrings(r.Payload, "aliases"), cfg.ApprovalAlias) {
			v.evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: Unknown, at: at, present: true}
		}
		if cfg.StatusApproval && r.Kind == watch.KindBaseline && payloadString(r.Payload, "approval_status") == "Approved" {
			v.evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: Unknown, at: at, present: true}
		}
	case watch.KindTagSet, watch.KindTagRemoved:
		if r.Version == "" {
			return
		}
		v := m.version(r.Version)
		key := payloadString(r.Payload, "key")
		if r.Kind == watch.KindTagRemoved {
			delete(v.tags, key)
			if key == cfg.ApprovalTag && v.evidence != nil {
				v.evidence.present = false
			}
			return
		}
		v.setTag(cfg, key, payloadString(r.Payload, "value"))
		if key == cfg.ApprovalTag && cfg.ApprovalTag != "" {
			v.evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: payloadString(r.Payload, "value"), at: Interval{r.From, r.To}, present: true}
		}
		if key == cfg.RollbackRequestTag && cfg.RollbackRequestTag != "" && m.request == nil && r.Version == m.serving() {
			m.request = &rollbackClock{start: Interval{r.From, r.To}, trigger: r.Seq, version: r.Version}
		}
	case watch.KindAliasSet:
		alias := payloadString(r.Payload, "alias")
		if alias != cfg.ApprovalAlias || alias == "" {
			return
		}
		if prev := payloadString(r.Payload, "previous_version"); prev != "" {
			if e := m.version(prev).evidence; e != nil {
				e.present = false
			}
		}
		m.version(r.Version).evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: r.Actor, at: Interval{r.From, r.To}, present: true}
	case watch.KindAliasRemoved:
		if payloadString(r.Payload, "alias") == cfg.ApprovalAlias && cfg.ApprovalAlias != "" {
			if e := m.version(r.Version).evidence; e != nil {
				e.present = false
			}
		}
	case watch.KindApprovalChanged:
		if !cfg.StatusApproval {
			return
		}
		v := m.version(r.Version)
		switch payloadString(r.Payload, "to") {
		case "Approved":
			v.evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: r.Actor, at: Interval{r.From, r.To}, present: true}
		case "Rejected":
			v.evidence = &evidenceState{seq: r.Seq, kind: r.Kind, approver: r.Actor, at: Interval{r.From, r.To}, rejected: true}
		default:
			v.evidence = nil
		}
	case watch.KindRequestOpened:
		if m.request == nil && slices.Contains(cfg.Stages, payloadString(r.Payload, "to_stage")) {
			if cur := m.serving(); cur != "" && versionOrder(r.Version) < versionOrder(cur) {
				m.request = &rollbackClock{start: Interval{r.From, r.To}, trigger: r.Seq, version: cur}
			}
		}
	case watch.KindAttribution:
		seq := payloadInt(r.Payload, "entry_seq")
		actor := payloadString(r.Payload, "actor")
		v := m.version(r.Version)
		v.actors[seq] = actor
		if v.evidence != nil && v.evidence.seq == seq {
			v.evidence.approver = actor
		}
	}
}

func (v *versionState) setTag(cfg *Config, key, value string) {
	switch key {
	case cfg.ApprovalTag, cfg.ApprovalTimeTag, cfg.RetireTag, cfg.EmergencyTag, cfg.RollbackRequestTag:
		if key != "" {
			v.tags[key] = value
		}
	}
}

func (s *State) applyProduction(m *modelState, r Record) {
	before := m.p
	after := payloadStrings(r.Payload, "after")
	servingBefore := payloadString(r.Payload, "serving_before")
	servingAfter := payloadString(r.Payload, "serving_after")
	m.p = after
	for _, id := range before {
		if !slices.Contains(after, id) {
			for _, f := range m.version(id).findings {
				f.open = false
			}
		}
	}
	if len(after) > 0 {
		m.served = true
		m.lastServing = servingAfter
		m.vacancy = nil
		if servingAfter != servingBefore {
			m.request = nil
		}
		return
	}
	if len(before) == 0 {
		return
	}
	// A vacancy: P became empty. It starts no clock for a deleted model or
	// when the last serving version carries the retire tag.
	last := servingBefore
	if last == "" {
		last = m.lastServing
	}
	if m.deleted {
		return
	}
	if _, retired := m.version(last).tags[s.cfg.RetireTag]; retired && s.cfg.RetireTag != "" {
		return
	}
	m.vacancy = &rollbackClock{start: Interval{r.From, r.To}, trigger: r.Seq, version: last}
}

func (s *State) applyFinding(m *modelState, r Record) {
	v := m.version(r.Version)
	if sup := payloadInt(r.Payload, "supersedes"); sup > 0 || payloadHasInt(r.Payload, "supersedes") {
		for _, f := range v.findings {
			f.open = false
			if f.seq == sup {
				f.superseded = true
			}
		}
	}
	verdict := payloadString(r.Payload, "verdict")
	f := &findingState{
		seq:     r.Seq,
		kind:    r.Kind,
		verdict: verdict,
		open:    isOpenVerdict(verdict) && slices.Contains(m.p, r.Version),
		t:       Interval{r.From, r.To},
		trigger: payloadInt(r.Payload, "triggering_seq"),
		payload: r.Payload,
	}
	for _, e := range payloadList(r.Payload, "evidence") {
		if em, ok := e.(map[string]any); ok {
			f.evidence = append(f.evidence, toInt(em["seq"]))
		}
	}
	f.sodKnown = known(payloadString(r.Payload, "approver")) && known(payloadString(r.Payload, "promoter"))
	v.findings = append(v.findings, f)
}

// serving returns the serving version: the member of P with the highest
// ordering key, "" when P is empty.
func (m *modelState) serving() string {
	if len(m.p) == 0 {
		return ""
	}
	return m.p[len(m.p)-1]
}

func isOpenVerdict(v string) bool {
	return v == VerdictMissing || v == VerdictSelfApproved || v == VerdictRejected
}

// lastJudged returns the version's most recent finding that judged an
// approval (not n/a), or nil.
func (v *versionState) lastJudged() *findingState {
	for i := len(v.findings) - 1; i >= 0; i-- {
		if v.findings[i].verdict != VerdictNA {
			return v.findings[i]
		}
	}
	return nil
}

// openFindings returns the version's open findings, most recent last.
func (v *versionState) openFindings() []*findingState {
	var out []*findingState
	for _, f := range v.findings {
		if f.open {
			out = append(out, f)
		}
	}
	return out
}

// Deadline is when a started rollback of a model becomes overdue.
type Deadline struct {
	ModelID string
	At      time.Time
}

// Deadlines returns the overdue deadlines of every rollback clock that is
// running and has not fired, sorted by time; the daemon sets timers on them
// so rollback.overdue fires even while the source is failing.
func (s *State) Deadlines() []Deadline {
	var out []Deadline
	for id, m := range s.models {
		for _, c := range []*rollbackClock{m.vacancy, m.request} {
			if c != nil && !c.overdue {
				out = append(out, Deadline{ModelID: id, At: c.start.From.Add(s.cfg.ObjectiveFor(m.name))})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ModelID < out[j].ModelID
	})
	return out
}

// Production returns the versions in production of a model, by model_id.
func (s *State) Production(modelID string) []string {
	if m := s.models[modelID]; m != nil {
		return append([]string(nil), m.p...)
	}
	return nil
}
