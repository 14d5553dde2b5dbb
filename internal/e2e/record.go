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

// overlapsWindow reports whether i and the half-open window [o.From, o.To)
// share an instant.
func (i Interval) overlapsWindow(o Interval) bool { return i.From.Before(o.To) && !i.To.Before(o.From) }

// String formats the interval as ISO 8601 "from/to".
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
	items = appendItems(items, r, "population", func(r *Record) *[]*Population { return &r.Population }, (*Population).key)
	items = appendItems(items, r, "exception", func(r *Record) *[]*Exception { return &r.Exceptions }, (*Exception).key)
	items = appendItems(items, r, "production state", func(r *Record) *[]*State { return &r.States }, (*State).key)
	items = appendItems(items, r, "coverage gap", func(r *Record) *[]*Gap { return &r.Gaps }, (*Gap).key)
	return items
}

// appendItems appends an Item for each element of the list field of r.
func appendItems[T any](items []Item, r *Record, kind string, field func(*Record) *[]T, key func(T) string) []Item {
	for i, x := range *field(r) {
		items = append(items, Item{
			Name: fmt.Sprintf("%s %d %s", kind, i, key(x)),
			Without: func() *Record {
				c := r.clone()
				*field(c) = slices.Delete(slices.Clone(*field(c)), i, i+1)
				return c
			},
			Twice: func() *Record {
				c := r.clone()
				*field(c) = append(slices.Clone(*field(c)), x)
				return c
			},
		})
	}
	return items
}

func (r *Record) clone() *Record {
	return &Record{Population: slices.Clone(r.Population), Exceptions: slices.Clone(r.Exceptions),
		States: slices.Clone(r.States), Gaps: slices.Clone(r.Gaps), Events: r.Events}
}

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
