package export

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// Kinds the export reads beyond the policy's (DESIGN.md section 3).
const (
	kindCoverage      = "coverage"
	kindCoverageGap   = "coverage.gap"
	kindConfigApplied = "config.applied"
	kindModelCreated  = "model.created"
	kindModelDeleted  = "model.deleted"
)

// policyKinds are the entries the first pass reads: the findings and
// production.changed.
var policyKinds = []string{
	policy.KindProductionChanged, policy.KindPromotion, policy.KindRollback, policy.KindRestored,
	policy.KindRollbackOverdue, policy.KindCoverageLate,
}

// period is [from, to) on observed_at, as leaf time strings (fixed width,
// so they compare as bytes).
type period struct{ from, to string }

func (p period) contains(observedAt []byte) bool {
	return string(observedAt) >= p.from && string(observedAt) < p.to
}

// filter selects entries by source and model name; empty fields match all.
type filter struct{ source, model string }

func (f filter) none() bool { return f.source == "" && f.model == "" }

func (f filter) matches(h head) bool {
	return (f.source == "" || rawEquals(h.source, f.source)) && (f.model == "" || rawEquals(h.model, f.model))
}

func rawEquals(raw []byte, s string) bool {
	if string(raw) == s {
		return true
	}
	return text(raw) == s
}

// judgement is the approval side of a judged finding, as the population
// reads it.
type judgement struct {
	seq        int64
	observed   time.Time
	verdict    string
	order      string
	approver   string
	approvedAt string
	promoter   string
	evidence   []int64
}

func judgementOf(r *ledger.Record) judgement {
	p := r.Payload
	j := judgement{
		seq: r.Seq, observed: r.ObservedAt,
		verdict: intern(str(p, "verdict")), order: str(p, "order"), approver: str(p, "approver"),
		approvedAt: interval(p["approved_at"]), promoter: str(p, "promoter"),
	}
	for _, e := range list(p, "evidence") {
		if m, ok := e.(map[string]any); ok {
			if n, ok := m["seq"].(int64); ok {
				j.evidence = append(j.evidence, n)
			}
		}
	}
	return j
}

type modelKey struct{ source, modelID string }

// What ends an exception that is still open when it is derived.
const (
	waitNone = iota
	waitLeave
	waitRollback
	waitGap
)

// exception is one row of exceptions.csv, kept until the end of the period
// because a later entry may end it. Its strings are the decoded entry's or
// interned constants.
type exception struct {
	seq          int64
	leafHash     [32]byte
	observed     time.Time
	model        modelKey
	name         string // the model's name
	version      string // the finding's version; waitLeave: leaving production ends it
	kind         string
	severity     string
	verdict      string
	reason       string
	result       string
	supersededBy int64 // 0: none (a finding never supersedes seq 0's finding)
	ended        string
	endedSeq     int64
	endedAt      time.Time
	serving      string // waitRollback: the serving version when it fired
	gapFrom      string // waitGap: the gap's start
	wait         int
}

func (e *exception) end(how string, seq int64, at time.Time) {
	e.ended, e.endedSeq, e.endedAt, e.wait = how, seq, at, waitNone
}

// row is the exception's line of exceptions.csv.
func (e *exception) row() []string {
	endedSeq, endedAt := "", ""
	if e.ended != EndedOpen {
		endedSeq, endedAt = num(e.endedSeq), ledger.FormatTime(e.endedAt)
	}
	return []string{num(e.seq), hex.EncodeToString(e.leafHash[:]), ledger.FormatTime(e.observed), cell(e.model.source), cell(e.name),
		cell(e.version), cell(e.kind), cell(e.severity), cell(e.verdict), cell(e.reason), cell(e.result),
		optNum(e.supersededBy, e.supersededBy > 0), e.ended, endedSeq, endedAt}
}

// intern returns the constant equal to s for the few words findings repeat,
// so that kept exceptions do not hold copies of them.
func intern(s string) string {
	for _, c := range internable {
		if s == c {
			return c
		}
	}
	return s
}

var internable = []string{
	policy.KindPromotion, policy.KindRollback, policy.KindRestored, policy.KindRollbackOverdue, policy.KindCoverageLate,
	policy.SeverityDanger, policy.SeverityWarning, policy.SeverityInfo,
	policy.VerdictApproved, policy.VerdictMissing, policy.VerdictSelfApproved, policy.VerdictRejected, policy.VerdictLate, policy.VerdictNA,
	policy.ReasonNoEvidence, policy.ReasonNotAllowed, policy.ReasonTooOld, policy.ReasonCreatedApproved, policy.ReasonAfter,
	"met", "overrun", "", "1", "2", "3",
}

// modelInfo is what inventory.csv says of one model.
type modelInfo struct {
	source, modelID, name string
	deleted               bool
	production            []string
	serving, since        string
	changeSeq, lastSeq    int64
	hasChange, seen       bool
}

// configDigest is a config.applied entry, as the manifest lists it.
type configDigest struct {
	Seq        int64  `json:"seq"`
	ObservedAt string `json:"observed_at"`
	Digest     string `json:"digest"`
	CarryIn    bool   `json:"carry_in,omitempty"`
}

// outputs are where the deriver writes the CSV files.
type outputs struct {
	population, exceptions, history, coverage, inventory io.Writer
}

// deriver derives the bundle's CSV files from ledger entries alone, in two
// passes over the entries in seq order: pre (the findings and
// production.changed, to learn supersedes chains and when each production
// state ended), then entry (everything, writing rows as it goes). The
// exporter feeds it from the ledger and the bundle verifier from
// events.jsonl and carry_in.jsonl, so both derive the same bytes. Its memory
// holds the superseding findings, one time per production change, the
// exceptions and the models: never the entries.
type deriver struct {
	period period

	// From the first pass.
	superseder map[int64]int64     // finding seq -> the seq of the finding superseding it
	judged     map[int64]judgement // superseding findings
	nextChange map[int64]string    // production.changed seq -> observed_at of the model's next one
	lastChange map[modelKey]int64

	population, exceptionsW, history, coverage, inventory *csv.Writer
	report                                                *reportBuilder // nil when verifying

	models     map[string]map[string]*modelInfo // source -> model_id
	exceptions []*exception
	waiting    map[modelKey][]*exception
	gaps       map[string][]*exception
	counts     map[string]map[string]*int64
	entries    int64
	boundary   int64
	configs    []configDigest
	rows       int64 // population rows
}

func newDeriver(p period) *deriver {
	return &deriver{
		period:     p,
		superseder: map[int64]int64{},
		judged:     map[int64]judgement{},
		nextChange: map[int64]string{},
		lastChange: map[modelKey]int64{},
		models:     map[string]map[string]*modelInfo{},
		waiting:    map[modelKey][]*exception{},
		gaps:       map[string][]*exception{},
		counts:     map[string]map[string]*int64{},
	}
}

// pre is the first pass: carry-in entries (carry set) and then the entries
// of the range, in seq order. It ignores every kind but the policy's.
func (d *deriver) pre(leaf []byte, carry bool) error {
	h, err := parseHead(leaf)
	if err != nil {
		return err
	}
	if !carry && !d.period.contains(h.observedAt) {
		return nil
	}
	switch string(h.kind) {
	case policy.KindProductionChanged:
		key := modelKey{text(h.source), text(h.modelID)}
		if prev, ok := d.lastChange[key]; ok {
			d.nextChange[prev] = text(h.observedAt)
		}
		d.lastChange[key] = h.seq
	case policy.KindPromotion, policy.KindRollback, policy.KindRestored:
		if carry {
			return nil
		}
		r, err := decode(leaf)
		if err != nil {
			return err
		}
		sup, ok := r.Payload["supersedes"].(int64)
		if !ok || sup >= r.Seq {
			return nil
		}
		if _, dup := d.superseder[sup]; !dup {
			d.superseder[sup] = r.Seq
		}
		d.judged[r.Seq] = judgementOf(&r)
	}
	return nil
}

// start opens the CSV writers and writes their headers.
func (d *deriver) start(o outputs) error {
	d.population = csv.NewWriter(o.population)
	d.exceptionsW = csv.NewWriter(o.exceptions)
	d.history = csv.NewWriter(o.history)
	d.coverage = csv.NewWriter(o.coverage)
	d.inventory = csv.NewWriter(o.inventory)
	for _, w := range []struct {
		w    *csv.Writer
		cols []string
	}{{d.population, populationColumns}, {d.exceptionsW, exceptionColumns}, {d.history, historyColumns}, {d.coverage, coverageColumns}} {
		if err := w.w.Write(w.cols); err != nil {
			return err
		}
	}
	return nil
}

// carryIn takes one carry-in entry (the latest production.changed of a
// model before the period, or the config in force at its start).
func (d *deriver) carryIn(leaf []byte) error {
	r, err := decode(leaf)
	if err != nil {
		return err
	}
	switch r.Kind {
	case policy.KindProductionChanged:
		return d.productionChanged(&r)
	case kindConfigApplied:
		d.configs = append(d.configs, configDigest{Seq: r.Seq, ObservedAt: ledger.FormatTime(r.ObservedAt), Digest: str(r.Payload, "digest"), CarryIn: true})
		return nil
	}
	return fmt.Errorf("carry-in entry %d is a %s (want production.changed or config.applied)", r.Seq, r.Kind)
}

// entry is the second pass: every entry of the range, in seq order.
func (d *deriver) entry(leaf []byte) error {
	h, err := parseHead(leaf)
	if err != nil {
		return err
	}
	if !d.period.contains(h.observedAt) {
		d.boundary++
		return nil
	}
	d.entries++
	d.count(h)
	if len(h.modelID) > 0 {
		d.touch(h)
	}
	switch string(h.kind) {
	case policy.KindProductionChanged, policy.KindPromotion, policy.KindRollback, policy.KindRestored,
		policy.KindRollbackOverdue, policy.KindCoverageLate, kindCoverage, kindCoverageGap, kindConfigApplied,
		kindModelCreated, kindModelDeleted:
	default:
		return nil
	}
	r, err := decode(leaf)
	if err != nil {
		return err
	}
	switch r.Kind {
	case policy.KindProductionChanged:
		return d.productionChanged(&r)
	case policy.KindPromotion, policy.KindRollback, policy.KindRestored:
		return d.judgedFinding(&r)
	case policy.KindRollbackOverdue, policy.KindCoverageLate:
		d.exception(&r, nil)
	case kindCoverage:
		w, _ := r.Payload["window"].(map[string]any)
		from, _ := w["from"].(string)
		to, _ := w["to"].(string)
		if d.report != nil {
			polls, _ := r.Payload["polls"].(int64)
			failures, _ := r.Payload["failures"].(int64)
			d.report.polls(r.Source, polls, failures)
		}
		return d.coverage.Write([]string{cell(r.Source), cell(r.Kind), cell(from), cell(to),
			intCell(r.Payload, "polls"), intCell(r.Payload, "failures"), "", "", cell(str(r.Payload, "last_snapshot_digest")), num(r.Seq)})
	case kindCoverageGap:
		from := str(r.Payload, "from")
		for _, e := range d.gaps[r.Source] {
			if e.wait == waitGap && e.gapFrom == from {
				e.end(EndedGapClosed, r.Seq, r.ObservedAt)
			}
		}
		d.gaps[r.Source] = pendingOnly(d.gaps[r.Source])
		if d.report != nil {
			d.report.gap(r.Source, from, str(r.Payload, "to"), str(r.Payload, "cause"))
		}
		return d.coverage.Write([]string{cell(r.Source), cell(r.Kind), cell(from), cell(str(r.Payload, "to")),
			"", "", intCell(r.Payload, "missed_ticks"), cell(str(r.Payload, "cause")), "", num(r.Seq)})
	case kindConfigApplied:
		d.configs = append(d.configs, configDigest{Seq: r.Seq, ObservedAt: ledger.FormatTime(r.ObservedAt), Digest: str(r.Payload, "digest")})
	case kindModelCreated, kindModelDeleted:
		if m := d.model(r.Source, r.ModelID); m != nil {
			m.deleted = r.Kind == kindModelDeleted
		}
	}
	return nil
}

// count counts an entry of the period by source and kind, without
// allocating for the common case of names without JSON escapes.
func (d *deriver) count(h head) {
	src, kind := h.source, h.kind
	if bytes.IndexByte(src, '\\') >= 0 || bytes.IndexByte(kind, '\\') >= 0 {
		src, kind = []byte(text(src)), []byte(text(kind))
	}
	bySource := d.counts[string(src)]
	if bySource == nil {
		bySource = map[string]*int64{}
		d.counts[string(src)] = bySource
	}
	n := bySource[string(kind)]
	if n == nil {
		n = new(int64)
		bySource[string(kind)] = n
	}
	*n++
}

// countsByKind returns the counts per source and kind.
func (d *deriver) countsByKind() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(d.counts))
	for src, kinds := range d.counts {
		out[src] = make(map[string]int64, len(kinds))
		for k, n := range kinds {
			out[src][k] = *n
		}
	}
	return out
}

// touch records that an entry of the period is about a model.
func (d *deriver) touch(h head) {
	bySource := d.models[string(h.source)]
	var m *modelInfo
	if bySource != nil {
		m = bySource[string(h.modelID)]
	}
	if m == nil {
		m = d.model(text(h.source), text(h.modelID))
	}
	m.lastSeq, m.seen = h.seq, true
	if len(h.model) > 0 && string(h.model) != m.name {
		m.name = text(h.model)
	}
}

// model returns the inventory record of a model, creating it.
func (d *deriver) model(source, modelID string) *modelInfo {
	if modelID == "" {
		return nil
	}
	bySource := d.models[source]
	if bySource == nil {
		bySource = map[string]*modelInfo{}
		d.models[source] = bySource
	}
	m := bySource[modelID]
	if m == nil {
		m = &modelInfo{source: source, modelID: modelID}
		bySource[modelID] = m
	}
	return m
}

// productionChanged writes the production_history row that the change
// begins and ends the exceptions it closes.
func (d *deriver) productionChanged(r *ledger.Record) error {
	after := strs(r.Payload, "after")
	serving := str(r.Payload, "serving_after")
	observed := ledger.FormatTime(r.ObservedAt)
	to := d.nextChange[r.Seq]
	row := []string{cell(r.Source), cell(r.Model), cell(r.ModelID), cell(strings.Join(after, " ")), cell(serving),
		observed, to, ledger.FormatTime(r.OccurredFrom), ledger.FormatTime(r.OccurredTo), num(r.Seq)}
	if err := d.history.Write(row); err != nil {
		return err
	}
	key := modelKey{r.Source, r.ModelID}
	for _, e := range d.waiting[key] {
		switch {
		case e.wait == waitLeave && !slices.Contains(after, e.version):
			e.end(EndedLeftProduction, r.Seq, r.ObservedAt)
		case e.wait == waitRollback && serving != "" && (e.serving == "" || serving != e.serving):
			e.end(EndedRollbackCompleted, r.Seq, r.ObservedAt)
		}
	}
	d.waiting[key] = pendingOnly(d.waiting[key])
	if m := d.model(r.Source, r.ModelID); m != nil {
		if r.Model != "" {
			m.name = r.Model
		}
		m.production, m.serving, m.since, m.changeSeq, m.hasChange = after, serving, observed, r.Seq, true
	}
	if d.report != nil {
		d.report.production(r, after, serving, to)
	}
	return nil
}

func pendingOnly(list []*exception) []*exception {
	out := list[:0]
	for _, e := range list {
		if e.wait != waitNone {
			out = append(out, e)
		}
	}
	return out
}

// chain follows the supersedes chain of a finding to its latest judgement;
// supersededBy is the seq of the finding that supersedes it directly.
func (d *deriver) chain(own judgement) (latest judgement, supersededBy string) {
	first, ok := d.superseder[own.seq]
	if !ok {
		return own, ""
	}
	latest = own
	for cur, ok := first, true; ok; cur, ok = d.superseder[cur] {
		latest = d.judged[cur]
	}
	return latest, num(first)
}

// judgedFinding writes the population row of a promotion, rollback or
// restored finding that supersedes nothing, and its exception.
func (d *deriver) judgedFinding(r *ledger.Record) error {
	own := judgementOf(r)
	latest, supersededBy := d.chain(own)
	p := r.Payload
	if _, supersedes := p["supersedes"].(int64); !supersedes {
		var dmin, dmax string
		if ds := list(p, "duration_ms"); len(ds) == 2 {
			lo, ok1 := ds[0].(int64)
			hi, ok2 := ds[1].(int64)
			dmin, dmax = optNum(lo, ok1), optNum(hi, ok2)
		}
		trigger, _ := p["triggering_seq"].(int64)
		row := []string{
			num(r.Seq), leafHash(r.Leaf), cell(r.Source), cell(r.Model), cell(r.Version),
			ledger.FormatTime(r.OccurredFrom), ledger.FormatTime(r.OccurredTo), cell(str(p, "change_type")),
			cell(latest.promoter), cell(latest.approver), cell(latest.approvedAt),
			approvedBefore(latest), approverIsPromoter(latest, trigger), cell(latest.verdict), supersededBy,
			dmin, dmax, intCell(p, "objective_ms"), cell(str(p, "result")),
		}
		if err := d.population.Write(row); err != nil {
			return err
		}
		d.rows++
		if d.report != nil {
			d.report.finding(r, latest, row[11], row[12], d.superseder[r.Seq])
		}
	}
	d.exception(r, &chained{own, latest})
	return nil
}

// chained is a judged finding's own judgement and the latest of its
// supersedes chain.
type chained struct{ own, latest judgement }

func isOpenVerdict(v string) bool {
	return v == policy.VerdictMissing || v == policy.VerdictSelfApproved || v == policy.VerdictRejected
}

// exception records r in exceptions.csv if it needed action: severity
// danger or warning, or a rollback.overdue or coverage.late finding.
func (d *deriver) exception(r *ledger.Record, j *chained) {
	p := r.Payload
	severity := str(p, "severity")
	if severity != policy.SeverityDanger && severity != policy.SeverityWarning &&
		r.Kind != policy.KindRollbackOverdue && r.Kind != policy.KindCoverageLate {
		return
	}
	e := &exception{
		seq: r.Seq, leafHash: ledger.LeafHash(r.Leaf), observed: r.ObservedAt, model: modelKey{r.Source, r.ModelID},
		name: r.Model, version: intern(r.Version), kind: intern(r.Kind), severity: intern(severity),
		verdict: intern(str(p, "verdict")), reason: intern(str(p, "reason")), result: intern(str(p, "result")),
		supersededBy: d.superseder[r.Seq], ended: EndedOpen,
	}
	d.exceptions = append(d.exceptions, e)
	switch r.Kind {
	case policy.KindRollbackOverdue:
		e.wait, e.serving = waitRollback, str(p, "serving_after")
		d.waiting[e.model] = append(d.waiting[e.model], e)
	case policy.KindCoverageLate:
		e.wait, e.gapFrom = waitGap, str(p, "from")
		d.gaps[r.Source] = append(d.gaps[r.Source], e)
	default:
		switch {
		case isOpenVerdict(j.own.verdict) || j.own.verdict == policy.VerdictLate:
			switch {
			case j.latest.verdict == policy.VerdictLate || j.latest.verdict == policy.VerdictApproved:
				e.end(EndedLateApproval, j.latest.seq, j.latest.observed)
			case isOpenVerdict(j.latest.verdict):
				e.wait = waitLeave
				d.waiting[e.model] = append(d.waiting[e.model], e)
			}
		case str(p, "result") == "overrun":
			e.end(EndedRollbackCompleted, r.Seq, r.ObservedAt)
		}
	}
}

// finish writes the rows known only at the end of the period: exceptions
// (with what ended them) and the inventory.
func (d *deriver) finish() error {
	for _, e := range d.exceptions {
		if err := d.exceptionsW.Write(e.row()); err != nil {
			return err
		}
	}
	if err := d.inventory.Write(inventoryColumns); err != nil {
		return err
	}
	var models []*modelInfo
	for _, bySource := range d.models {
		for _, m := range bySource {
			models = append(models, m)
		}
	}
	sort.Slice(models, func(i, j int) bool {
		a, b := models[i], models[j]
		if a.source != b.source {
			return a.source < b.source
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.modelID < b.modelID
	})
	for _, m := range models {
		status := "active"
		if m.deleted {
			status = "deleted"
		}
		since := ""
		if m.serving != "" {
			since = m.since
		}
		row := []string{cell(m.source), cell(m.name), cell(m.modelID), status, cell(strings.Join(m.production, " ")),
			cell(m.serving), since, optNum(m.changeSeq, m.hasChange), optNum(m.lastSeq, m.seen)}
		if err := d.inventory.Write(row); err != nil {
			return err
		}
	}
	if d.report != nil {
		d.report.finish(d, models)
	}
	for _, w := range []*csv.Writer{d.population, d.exceptionsW, d.history, d.coverage, d.inventory} {
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
	}
	return nil
}

func decode(leaf []byte) (ledger.Record, error) {
	e, seq, err := ledger.Decode(leaf)
	if err != nil {
		return ledger.Record{}, err
	}
	return ledger.Record{Seq: seq, Leaf: leaf, Entry: e}, nil
}

func leafHash(leaf []byte) string {
	h := ledger.LeafHash(leaf)
	return hex.EncodeToString(h[:])
}

func str(p map[string]any, k string) string {
	s, _ := p[k].(string)
	return s
}

func list(p map[string]any, k string) []any {
	l, _ := p[k].([]any)
	return l
}

func strs(p map[string]any, k string) []string {
	var out []string
	for _, v := range list(p, k) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func intCell(p map[string]any, k string) string {
	n, ok := p[k].(int64)
	return optNum(n, ok)
}
