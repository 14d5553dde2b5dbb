// Package exporttest writes ledgers whose export is known in advance: a
// short story per model (a promotion without approval, approved late; an
// approved promotion; a vacancy whose rollback overran and went overdue; a
// self-approved promotion left open; a coverage gap reported late), and
// large ledgers of realistic entries for benchmarks. The tests of the export
// and of the command line use it.
package exporttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// Source is the source every entry is about.
const Source = "mlflow-prod"

// Start is the story's first day (UTC midnight): day d of the story is
// Start + d days.
var Start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// Day returns hour h of day d of the story.
func Day(d int, h float64) time.Time {
	return Start.Add(time.Duration(d)*24*time.Hour + time.Duration(h*float64(time.Hour)))
}

// Hostile are model names built to break a CSV, a spreadsheet or a web page.
var Hostile = []string{`<script>alert(1)</script>`, `=HYPERLINK("http://x")`, "\tleading-tab", `+cmd|' /C calc'!A0`, `@SUM(1+1)`, `-2+3`}

// Story is what WriteStory wrote for one model: the seq of each of its
// findings and production changes, by name.
type Story struct {
	Model   string
	ModelID string
	Seq     map[string]int64
}

// Names of a story's entries, for Story.Seq.
const (
	PCFirst      = "pc-first"      // day 1: v1 enters production
	Missing      = "missing"       // day 1: promotion of v1, no approval (danger)
	Late         = "late"          // day 2: late approval of v1, supersedes Missing
	PCSecond     = "pc-second"     // day 4: v2 replaces v1
	Approved     = "approved"      // day 4: promotion of v2, approved before
	PCVacancy    = "pc-vacancy"    // day 5 10:00: v2 leaves, nothing serves
	Overdue      = "overdue"       // day 5 10:40: the rollback is overdue
	PCRollback   = "pc-rollback"   // day 5 11:00: v1 serves again
	Rollback     = "rollback"      // day 5 11:00: rollback to v1, overrun
	PCThird      = "pc-third"      // day 6: v3 replaces v1
	SelfApproved = "self-approved" // day 6: promotion of v3, approver = promoter (open)
	Evidence1    = "evidence-v1"   // day 2: tag.set approved_by on v1
	Evidence2    = "evidence-v2"   // day 3: tag.set approved_by on v2
	Evidence3    = "evidence-v3"   // day 6: tag.set approved_by on v3
	ConfigFirst  = "config"        // day 0: config.applied
	CoverageLate = "coverage-late" // day 7 03:00: coverage.late (source-wide)
	CoverageGap  = "coverage-gap"  // day 7 04:00: coverage.gap closing it
)

// Objective is the rollback objective of the story, in milliseconds.
const Objective = int64(30 * time.Minute / time.Millisecond)

// writer appends batches and remembers seqs by name.
type writer struct {
	ctx context.Context
	l   *ledger.Ledger
	seq map[string]int64
}

// batch is one poll: entries, with names for the seqs to remember.
type batch struct {
	entries []ledger.Entry
	names   map[int]string
	states  []ledger.State
}

func (b *batch) add(name string, e ledger.Entry) int {
	b.entries = append(b.entries, e)
	if name != "" {
		if b.names == nil {
			b.names = map[int]string{}
		}
		b.names[len(b.entries)-1] = name
	}
	return len(b.entries) - 1
}

func (w *writer) append(b *batch) error {
	res, err := w.l.Append(w.ctx, ledger.Batch{Entries: b.entries, States: b.states})
	if err != nil {
		return err
	}
	for i, name := range b.names {
		w.seq[name] = res.Seqs[i]
	}
	return nil
}

func change(kind, model, modelID, version string, at time.Time, payload map[string]any) ledger.Entry {
	return ledger.Entry{Kind: kind, Source: Source, SourceType: "mlflow", Model: model, ModelID: modelID, Version: version,
		Actor: "unknown", ObservedAt: at, OccurredFrom: at.Add(-time.Minute), OccurredTo: at, Payload: payload}
}

func registrywatch(kind, model, modelID, version string, at time.Time, payload map[string]any) ledger.Entry {
	e := change(kind, model, modelID, version, at, payload)
	e.Actor = "registrywatch"
	return e
}

func interval(from, to time.Time) map[string]any {
	return map[string]any{"from": ledger.FormatTime(from), "to": ledger.FormatTime(to)}
}

// finding builds a judged finding's payload (DESIGN.md section 4).
func finding(trigger ledger.Ref, severity, verdict, reason, order string, supersedes any, promoter, approver string,
	approvedAt any, evidence []any, changeType, before, after string) map[string]any {
	if evidence == nil {
		evidence = []any{}
	}
	return map[string]any{
		"triggering_seq": trigger, "severity": severity, "verdict": verdict, "reason": reason, "order": order,
		"supersedes": supersedes, "promoter": promoter, "approver": approver, "approved_at": approvedAt,
		"evidence": evidence, "change_type": changeType, "serving_before": before, "serving_after": after,
		"registry_url": "https://mlflow.example.com/#/models/x/versions/" + after,
	}
}

func production(model, modelID string, at time.Time, before, after []string) ledger.Entry {
	last := func(p []string) string {
		if len(p) == 0 {
			return ""
		}
		return p[len(p)-1]
	}
	return registrywatch("production.changed", model, modelID, "", at, map[string]any{
		"before": before, "after": after, "serving_before": last(before), "serving_after": last(after),
	})
}

// WriteStory appends the story of each model to l (the models' stories
// interleave, a minute apart), with one config.applied first and one
// source-wide coverage gap on day 7. It returns the story of each model.
func WriteStory(ctx context.Context, l *ledger.Ledger, models []string) ([]Story, error) {
	w := &writer{ctx: ctx, l: l, seq: map[string]int64{}}
	b := &batch{}
	b.add(ConfigFirst, ledger.Entry{Kind: "config.applied", SourceType: "registrywatch", Actor: "registrywatch", ObservedAt: Day(0, 8),
		Payload: map[string]any{"config": map[string]any{"sources": []any{Source}}, "digest": digest("config-1")}})
	if err := w.append(b); err != nil {
		return nil, err
	}
	stories := make([]Story, len(models))
	for i, m := range models {
		stories[i] = Story{Model: m, ModelID: m + "@2026-03-01T00:00:00.000Z", Seq: map[string]int64{}}
	}
	// Each step runs for every model before the next step.
	steps := []func(s *Story, off time.Duration) error{
		func(s *Story, off time.Duration) error { // day 0: model and two versions
			at := Day(0, 9).Add(off)
			b := &batch{}
			b.add("", change("model.created", s.Model, s.ModelID, "", at, map[string]any{"name": s.Model}))
			for _, v := range []string{"1", "2"} {
				b.add("", change("version.created", s.Model, s.ModelID, v, at, versionState(v)))
			}
			b.snapshot(at, s.Model)
			return w.append(b)
		},
		func(s *Story, off time.Duration) error { // day 1: v1 to production without approval
			at := Day(1, 10).Add(off)
			b := &batch{}
			trig := b.add("", change("stage.changed", s.Model, s.ModelID, "1", at, map[string]any{"from": "Staging", "to": "Production"}))
			b.add(s.Model+PCFirst, production(s.Model, s.ModelID, at, []string{}, []string{"1"}))
			b.add(s.Model+Missing, registrywatch("promotion", s.Model, s.ModelID, "1", at,
				finding(ledger.InBatch(trig), "danger", "missing", "no_evidence", "", "", "carol@example.com", "", "", nil, "standard", "", "1")))
			return w.append(b)
		},
		func(s *Story, off time.Duration) error { // day 2: approval of v1 arrives late
			at := Day(2, 10).Add(off)
			b := &batch{}
			ev := b.add(s.Model+Evidence1, change("tag.set", s.Model, s.ModelID, "1", at, map[string]any{"key": "approved_by", "value": "alice@example.com", "previous": ""}))
			late := registrywatch("promotion", s.Model, s.ModelID, "1", at,
				finding(ledger.InBatch(ev), "warning", "late", "", "", ledger.Seq(w.seq[s.Model+Missing]), "carol@example.com", "alice@example.com",
					interval(at.Add(-time.Minute), at), []any{map[string]any{"kind": "tag.set", "seq": ledger.InBatch(ev)}}, "standard", "", "1"))
			// A superseding finding keeps the time of the promotion it judges.
			late.OccurredFrom, late.OccurredTo = Day(1, 10).Add(off-time.Minute), Day(1, 10).Add(off)
			b.add(s.Model+Late, late)
			return w.append(b)
		},
		func(s *Story, off time.Duration) error { // day 3: approval of v2 in advance
			at := Day(3, 10).Add(off)
			b := &batch{}
			b.add(s.Model+Evidence2, change("tag.set", s.Model, s.ModelID, "2", at, map[string]any{"key": "approved_by", "value": "bob@example.com", "previous": ""}))
			return w.append(b)
		},
		func(s *Story, off time.Duration) error { // day 4: v2 replaces v1, approved before
			at := Day(4, 10).Add(off)
			b := &batch{}
			b.add("", change("stage.changed", s.Model, s.ModelID, "1", at, map[string]any{"from": "Production", "to": "Archived"}))
			trig := b.add("", change("stage.changed", s.Model, s.ModelID, "2", at, map[string]any{"from": "Staging", "to": "Production"}))
			b.add(s.Model+PCSecond, production(s.Model, s.ModelID, at, []string{"1"}, []string{"2"}))
			ev := w.seq[s.Model+Evidence2]
			b.add(s.Model+Approved, registrywatch("promotion", s.Model, s.ModelID, "2", at,
				finding(ledger.InBatch(trig), "", "approved", "", "", "", "carol@example.com", "bob@example.com",
					interval(Day(3, 10).Add(off-time.Minute), Day(3, 10).Add(off)), []any{map[string]any{"kind": "tag.set", "seq": ledger.Seq(ev)}}, "standard", "1", "2")))
			return w.append(b)
		},
		func(s *Story, off time.Duration) error { // day 5: vacancy, overdue, rollback overran
			at := Day(5, 10).Add(off)
			b := &batch{}
			b.add("", change("stage.changed", s.Model, s.ModelID, "2", at, map[string]any{"from": "Production", "to": "Archived"}))
			b.add(s.Model+PCVacancy, production(s.Model, s.ModelID, at, []string{"2"}, []string{}))
			if err := w.append(b); err != nil {
				return err
			}
			vacancy := w.seq[s.Model+PCVacancy]
			due := at.Add(40 * time.Minute)
			b = &batch{}
			over := finding(ledger.Seq(vacancy), "danger", "", "", "", "", "", "", "", nil, "rollback", "2", "")
			over["registry_url"] = ""
			over["start"] = interval(at.Add(-time.Minute), at)
			over["objective_ms"] = Objective
			b.add(s.Model+Overdue, registrywatch("rollback.overdue", s.Model, s.ModelID, "2", due, over))
			if err := w.append(b); err != nil {
				return err
			}
			back := Day(5, 11).Add(off)
			b = &batch{}
			trig := b.add("", change("stage.changed", s.Model, s.ModelID, "1", back, map[string]any{"from": "Archived", "to": "Production"}))
			b.add(s.Model+PCRollback, production(s.Model, s.ModelID, back, []string{}, []string{"1"}))
			rb := finding(ledger.InBatch(trig), "danger", "approved", "", "", "", "carol@example.com", "alice@example.com",
				interval(Day(2, 10).Add(off-time.Minute), Day(2, 10).Add(off)), []any{map[string]any{"kind": "promotion", "seq": ledger.Seq(w.seq[s.Model+Late])}}, "rollback", "", "1")
			rb["start"] = interval(at.Add(-time.Minute), at)
			rb["completed"] = interval(back.Add(-time.Minute), back)
			rb["duration_ms"] = []int64{int64(59 * time.Minute / time.Millisecond), int64(61 * time.Minute / time.Millisecond)}
			rb["objective_ms"] = Objective
			rb["result"] = "overrun"
			b.add(s.Model+Rollback, registrywatch("rollback", s.Model, s.ModelID, "1", back, rb))
			return w.append(b)
		},
		func(s *Story, off time.Duration) error { // day 6: v3, self-approved, stays open
			at := Day(6, 10).Add(off)
			b := &batch{}
			b.add("", change("version.created", s.Model, s.ModelID, "3", at.Add(-time.Hour), versionState("3")))
			b.add(s.Model+Evidence3, change("tag.set", s.Model, s.ModelID, "3", at.Add(-time.Hour), map[string]any{"key": "approved_by", "value": "dave@example.com", "previous": ""}))
			if err := w.append(b); err != nil {
				return err
			}
			evSeq := w.seq[s.Model+Evidence3]
			b = &batch{}
			b.add("", change("stage.changed", s.Model, s.ModelID, "1", at, map[string]any{"from": "Production", "to": "Archived"}))
			trig := b.add("", change("stage.changed", s.Model, s.ModelID, "3", at, map[string]any{"from": "Staging", "to": "Production"}))
			b.add(s.Model+PCThird, production(s.Model, s.ModelID, at, []string{"1"}, []string{"3"}))
			b.add(s.Model+SelfApproved, registrywatch("promotion", s.Model, s.ModelID, "3", at,
				finding(ledger.InBatch(trig), "danger", "self_approved", "", "", "", "dave@example.com", "dave@example.com",
					interval(at.Add(-time.Hour-time.Minute), at.Add(-time.Hour)), []any{map[string]any{"kind": "tag.set", "seq": ledger.Seq(evSeq)}}, "standard", "1", "3")))
			return w.append(b)
		},
	}
	for _, step := range steps {
		for i := range stories {
			if err := step(&stories[i], time.Duration(i)*time.Minute); err != nil {
				return nil, fmt.Errorf("story of %q: %w", stories[i].Model, err)
			}
		}
	}
	// Day 7: a source-wide coverage gap, reported late, then closed; and an
	// hourly coverage entry.
	gapFrom := Day(7, 2)
	b = &batch{}
	b.add(CoverageLate, ledger.Entry{Kind: "coverage.late", Source: Source, SourceType: "mlflow", Actor: "registrywatch",
		ObservedAt: Day(7, 3), OccurredFrom: gapFrom, OccurredTo: Day(7, 3),
		Payload: map[string]any{"from": ledger.FormatTime(gapFrom), "missed_ticks": 60, "cause": "source_error", "severity": "danger"}})
	if err := w.append(b); err != nil {
		return nil, err
	}
	b = &batch{}
	b.add(CoverageGap, ledger.Entry{Kind: "coverage.gap", Source: Source, SourceType: "mlflow", Actor: "registrywatch",
		ObservedAt: Day(7, 4), OccurredFrom: gapFrom, OccurredTo: Day(7, 4),
		Payload: map[string]any{"from": ledger.FormatTime(gapFrom), "to": ledger.FormatTime(Day(7, 4)), "missed_ticks": 119, "cause": "source_error"}})
	b.add("", ledger.Entry{Kind: "coverage", Source: Source, SourceType: "mlflow", Actor: "registrywatch",
		ObservedAt: Day(7, 4), OccurredFrom: Day(7, 3), OccurredTo: Day(7, 4),
		Payload: map[string]any{"window": interval(Day(7, 3), Day(7, 4)), "polls": 60, "failures": 58, "last_snapshot_digest": digest("state")}})
	if err := w.append(b); err != nil {
		return nil, err
	}
	for i := range stories {
		for name, seq := range w.seq {
			if len(name) > len(stories[i].Model) && name[:len(stories[i].Model)] == stories[i].Model {
				if k := name[len(stories[i].Model):]; isStoryName(k) {
					stories[i].Seq[k] = seq
				}
			}
		}
		for _, k := range []string{ConfigFirst, CoverageLate, CoverageGap} {
			stories[i].Seq[k] = w.seq[k]
		}
	}
	return stories, nil
}

func isStoryName(k string) bool {
	switch k {
	case PCFirst, Missing, Late, PCSecond, Approved, PCVacancy, Overdue, PCRollback, Rollback, PCThird, SelfApproved, Evidence1, Evidence2, Evidence3:
		return true
	}
	return false
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func versionState(v string) map[string]any {
	return map[string]any{
		"aliases": []string{}, "creator": "svc-train@example.com", "description": "retrained on the weekly window",
		"source": "s3://models/fraud/" + v + "/artifacts", "stage": "None", "status": "READY",
		"tags": []any{map[string]any{"key": "git_sha", "value": digest(v)[:7]}, map[string]any{"key": "team", "value": "risk"}},
		"url":  "https://mlflow.example.com/#/models/fraud/versions/" + v,
	}
}

// snapshot adds a snapshot entry and the state row whose digest it records.
func (b *batch) snapshot(at time.Time, seed string) {
	state := []byte(`{"models":[{"id":"` + seed + `","versions":[]}],"at":"` + ledger.FormatTime(at) + `"}`)
	sum := sha256.Sum256(state)
	b.add("", ledger.Entry{Kind: "snapshot", Source: Source, SourceType: "mlflow", Actor: "registrywatch", ObservedAt: at,
		Payload: map[string]any{"digest": hex.EncodeToString(sum[:]), "models": 1, "versions": 2}})
	b.states = []ledger.State{{Source: Source, Bytes: state}}
}

// FillModels is the number of models Fill spreads its entries over.
const FillModels = 200

// Fill appends batches number from..to-1 of perBatch entries each, as a busy
// registry would fill a ledger: batch n is observed at Start + n minutes;
// most entries are version creations, tag and stage changes and snapshots;
// every batch also holds two production changes with their findings (in
// every tenth batch one of them misses its approval, which arrives late in
// the next batch), and an hourly coverage entry. About 0.4% of the entries
// are findings or production changes.
func Fill(ctx context.Context, l *ledger.Ledger, from, to, perBatch int) error {
	w := &writer{ctx: ctx, l: l, seq: map[string]int64{}}
	for n := from; n < to; n++ {
		if err := w.append(fillBatch(n, perBatch, w.seq)); err != nil {
			return fmt.Errorf("batch %d: %w", n, err)
		}
	}
	return nil
}

func fillBatch(n, perBatch int, seq map[string]int64) *batch {
	at := Start.Add(time.Duration(n) * time.Minute)
	b := &batch{}
	model := func(k int) (string, string) {
		m := "fraud-model-" + strconv.Itoa(k%FillModels)
		return m, m + "@2025-01-01T00:00:00.000Z"
	}
	// Two promotions; in every tenth batch the second one has no approval.
	for k := 0; k < 2; k++ {
		m, id := model(2*n + k)
		v := strconv.Itoa(n + 1)
		prev := strconv.Itoa(n)
		trig := b.add("", change("stage.changed", m, id, v, at, map[string]any{"from": "Staging", "to": "Production"}))
		b.add("", production(m, id, at, []string{prev}, []string{v}))
		if k == 0 || n%10 != 0 {
			b.add("", registrywatch("promotion", m, id, v, at, finding(ledger.InBatch(trig), "", "approved", "", "", "",
				"carol@example.com", "bob@example.com", interval(at.Add(-time.Hour), at.Add(-time.Hour)), []any{}, "standard", prev, v)))
		} else {
			b.add(m+"/"+v, registrywatch("promotion", m, id, v, at, finding(ledger.InBatch(trig), "danger", "missing", "no_evidence", "", "",
				"carol@example.com", "", "", nil, "standard", prev, v)))
		}
	}
	// The late approval of the previous batch's missing promotion.
	if n > 0 {
		m, id := model(2*(n-1) + 1)
		v := strconv.Itoa(n)
		if missing, ok := seq[m+"/"+v]; ok {
			ev := b.add("", change("tag.set", m, id, v, at, map[string]any{"key": "approved_by", "value": "alice@example.com", "previous": ""}))
			b.add("", registrywatch("promotion", m, id, v, at, finding(ledger.InBatch(ev), "warning", "late", "", "", ledger.Seq(missing),
				"carol@example.com", "alice@example.com", interval(at.Add(-time.Minute), at), []any{map[string]any{"kind": "tag.set", "seq": ledger.InBatch(ev)}}, "standard", strconv.Itoa(n-1), v)))
			delete(seq, m+"/"+v)
		}
	}
	if n%60 == 0 {
		b.add("", ledger.Entry{Kind: "coverage", Source: Source, SourceType: "mlflow", Actor: "registrywatch", ObservedAt: at,
			Payload: map[string]any{"window": interval(at.Add(-time.Hour), at), "polls": 60, "failures": 0, "last_snapshot_digest": digest(at.String())}})
	}
	for i := len(b.entries); i < perBatch-1; i++ {
		m, id := model(n*perBatch + i)
		v := strconv.Itoa(n*perBatch + i)
		switch i % 3 {
		case 0:
			b.add("", change("version.created", m, id, v, at, versionState(v)))
		case 1:
			b.add("", change("tag.set", m, id, v, at, map[string]any{"key": "git_sha", "value": digest(v)[:7], "previous": ""}))
		default:
			b.add("", change("stage.changed", m, id, v, at, map[string]any{"from": "None", "to": "Staging"}))
		}
	}
	b.snapshot(at, strconv.Itoa(n))
	return b
}
