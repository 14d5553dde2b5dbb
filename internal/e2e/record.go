// Package e2e plays a quarter of scripted registry history against the whole
// product and checks the evidence bundle against what the script did.
//
// The quarter (script.go) is data: each step says what a person or pipeline
// does in which registry, or what happens to registrywatch itself (an outage
// of a registry or of Slack, a restart of the daemon), at what time. The
// daemon runs in-process on a fake clock against fakes of MLflow, a
// Databricks workspace registry, SageMaker with CloudTrail, Weights & Biases
// and Slack (world.go). As each step acts, it writes into a Record what the
// evidence bundle MUST then show, derived from what the step did and never
// from the ledger. Check (check.go) compares a bundle's population.csv,
// exceptions.csv, production_history.csv and coverage.csv with that Record.
package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Population is a row population.csv MUST hold: a version entering
// production (or a serving version going down), judged by its latest
// verdict. At is when the registry changed; the row's occurred interval
// [from, to] MUST contain it.
type Population struct {
	Source, Model, Version string
	// ChangeType is standard, emergency or rollback.
	ChangeType string
	Promoter   string
	Approver   string
	// ApprovedBefore and ApproverIsPromoter are yes, no or unknown.
	ApprovedBefore     string
	ApproverIsPromoter string
	// Verdict is the latest verdict of the finding's supersedes chain.
	Verdict string
	// Result is met or overrun for rollbacks, "" otherwise.
	Result string
	At     time.Time
}

func (p Population) key() string {
	return strings.Join([]string{p.Source, p.Model, p.Version, p.ChangeType, p.Promoter, p.Approver,
		p.ApprovedBefore, p.ApproverIsPromoter, p.Verdict, p.Result}, "|")
}

// Exception is a row exceptions.csv MUST hold: a finding that needed action
// and what ended it.
type Exception struct {
	Source, Model, Version string
	// Kind is promotion, rollback, rollback.overdue or coverage.late.
	Kind, Verdict, Reason, Result string
	// Ended is late_approval, left_production, rollback_completed,
	// gap_closed or open_at_period_end.
	Ended string
}

func (e Exception) key() string {
	return strings.Join([]string{e.Source, e.Model, e.Version, e.Kind, e.Verdict, e.Reason, e.Result, e.Ended}, "|")
}

// State is a row production_history.csv MUST hold: from At on, Versions
// are in production for Model and Serving serves. A Baseline state is what
// the registry held when registrywatch first looked: its row is observed at
// At, the first poll; any other row's occurred interval MUST contain At and
// it is observed at or after At, by ObservedBy.
type State struct {
	Source, Model string
	Versions      []string
	Serving       string
	At            time.Time
	ObservedBy    time.Time
	Baseline      bool
}

func (s State) key() string {
	return strings.Join([]string{s.Source, s.Model, strings.Join(s.Versions, " "), s.Serving}, "|")
}

// Gap is a coverage.gap row coverage.csv MUST hold: no successful poll of
// Source from a time within From to a time within To, for Cause. Down is
// when the registry (source_error) or the daemon (daemon_down) was really
// unavailable: every coverage window with failed polls MUST overlap the Down
// of a source_error gap of its source, and each such gap MUST have one.
type Gap struct {
	Source, Cause string
	From, To      Interval
	Down          Interval
}

func (g Gap) key() string { return g.Source + "|" + g.Cause }

// Interval is a closed interval of time.
type Interval struct{ From, To time.Time }

// Contains reports whether t lies in [From, To].
func (i Interval) Contains(t time.Time) bool { return !t.Before(i.From) && !t.After(i.To) }

// Overlaps reports whether i and o share an instant, o being half-open
// [o.From, o.To).
func (i Interval) overlapsWindow(o Interval) bool { return i.From.Before(o.To) && !i.To.Before(o.From) }

func (i Interval) String() string { return fmtTime(i.From) + "/" + fmtTime(i.To) }

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Record is the script's record of truth: what the bundle of the quarter
// MUST show, and counts of what the script did.
type Record struct {
	Population []*Population
	Exceptions []*Exception
	States     []*State
	Gaps       []*Gap
	// Events counts the script's steps by kind of event ("mlflow-prod
	// registry action", "daemon restart", ...).
	Events map[string]int
}

// Item is one expected item of a Record, for tests that remove or duplicate
// items one at a time.
type Item struct {
	// Name describes the item.
	Name string
	// Without returns a copy of the record without the item, Twice one
	// holding it twice.
	Without, Twice func() *Record
}

// Items lists every expected item of the record.
func (r *Record) Items() []Item {
	var items []Item
	add := func(name string, n int, without, twice func(i int) *Record) {
		for i := range n {
			items = append(items, Item{Name: fmt.Sprintf("%s %d", name, i), Without: func() *Record { return without(i) }, Twice: func() *Record { return twice(i) }})
		}
	}
	add("population", len(r.Population),
		func(i int) *Record { c := r.clone(); c.Population = remove(c.Population, i); return c },
		func(i int) *Record { c := r.clone(); c.Population = append(c.Population, c.Population[i]); return c })
	add("exception", len(r.Exceptions),
		func(i int) *Record { c := r.clone(); c.Exceptions = remove(c.Exceptions, i); return c },
		func(i int) *Record { c := r.clone(); c.Exceptions = append(c.Exceptions, c.Exceptions[i]); return c })
	add("state", len(r.States),
		func(i int) *Record { c := r.clone(); c.States = remove(c.States, i); return c },
		func(i int) *Record { c := r.clone(); c.States = append(c.States, c.States[i]); return c })
	add("gap", len(r.Gaps),
		func(i int) *Record { c := r.clone(); c.Gaps = remove(c.Gaps, i); return c },
		func(i int) *Record { c := r.clone(); c.Gaps = append(c.Gaps, c.Gaps[i]); return c })
	return items
}

// Describe names item i of kind ("population", ...) as the script recorded it.
func (r *Record) describe(kind string, i int) string {
	switch kind {
	case "population":
		return r.Population[i].key()
	case "exception":
		return r.Exceptions[i].key()
	case "state":
		return r.States[i].key()
	}
	return r.Gaps[i].key()
}

func (r *Record) clone() *Record {
	return &Record{Population: slices.Clone(r.Population), Exceptions: slices.Clone(r.Exceptions),
		States: slices.Clone(r.States), Gaps: slices.Clone(r.Gaps), Events: r.Events}
}

func remove[T any](s []T, i int) []T { return slices.Delete(slices.Clone(s), i, i+1) }

// Summary returns the counts of the quarter: the script's events, then the
// expected rows by kind, verdict and how exceptions ended.
func (r *Record) Summary() string {
	counts := map[string]int{}
	for k, n := range r.Events {
		counts["event: "+k] += n
	}
	for _, p := range r.Population {
		counts["population: "+p.ChangeType+" "+p.Verdict]++
	}
	for _, e := range r.Exceptions {
		counts["exception: "+e.Kind+" ended "+e.Ended]++
	}
	counts["production states"] = len(r.States)
	for _, g := range r.Gaps {
		counts["coverage gap: "+g.Cause]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%4d  %s\n", counts[k], k)
	}
	return b.String()
}
