package e2e

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/registrywatch/registrywatch/internal/export"
)

// Check compares the bundle's population.csv, exceptions.csv,
// production_history.csv and coverage.csv with rec. Rows are matched on
// their identifying columns as multisets: every expected item MUST appear
// exactly as many times as recorded, and no other row may appear. Where a
// time is known only as an interval, the matched row's interval MUST contain
// the true time the record gives. It returns every difference found.
func Check(bundle string, rec *Record) error {
	var errs []error
	for _, c := range []struct {
		file  string
		check func([]row) []error
	}{
		{export.FilePopulation, rec.checkPopulation},
		{export.FileExceptions, rec.checkExceptions},
		{export.FileHistory, rec.checkHistory},
		{export.FileCoverage, rec.checkCoverage},
	} {
		rows, err := readCSV(filepath.Join(bundle, c.file))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range c.check(rows) {
			errs = append(errs, fmt.Errorf("%s: %w", c.file, e))
		}
	}
	return errors.Join(errs...)
}

// row is one line of a CSV file, by column name.
type row map[string]string

func (r row) time(col string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, r[col])
	if err != nil {
		return t, fmt.Errorf("seq %s: %s: %w", r.seq(), col, err)
	}
	return t, nil
}

// seq names the row by its ledger seq.
func (r row) seq() string { return r["ledger_seq"] }

func readCSV(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no header", filepath.Base(path))
	}
	var rows []row
	for _, l := range lines[1:] {
		r := row{}
		for i, col := range lines[0] {
			r[col] = l[i]
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// group is the expected items and the bundle's rows sharing one key.
type group[T any] struct {
	want []T
	got  []row
}

// match groups items and rows by key, reports every key whose counts
// differ, and calls pair for each group of equal counts.
func match[T any](items []T, rows []row, itemKey func(T) string, rowKey func(row) string, pair func(want []T, got []row) []error) []error {
	groups := map[string]*group[T]{}
	get := func(k string) *group[T] {
		g := groups[k]
		if g == nil {
			g = &group[T]{}
			groups[k] = g
		}
		return g
	}
	for _, it := range items {
		g := get(itemKey(it))
		g.want = append(g.want, it)
	}
	for _, r := range rows {
		g := get(rowKey(r))
		g.got = append(g.got, r)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		g := groups[k]
		if len(g.want) != len(g.got) {
			seqs := make([]string, len(g.got))
			for i, r := range g.got {
				seqs[i] = r.seq()
			}
			errs = append(errs, fmt.Errorf("%s: the script expects %d, the bundle has %d (seqs %s)", k, len(g.want), len(g.got), strings.Join(seqs, " ")))
			continue
		}
		if pair != nil {
			errs = append(errs, pair(g.want, g.got)...)
		}
	}
	return errs
}

// byTime sorts rows by the time in col (rows of one key are paired with the
// expected items in time order).
func byTime(rows []row, col string) {
	slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a[col], b[col]) })
}

func cols(r row, names ...string) string {
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = r[n]
	}
	return strings.Join(vals, "|")
}

func (rec *Record) checkPopulation(rows []row) []error {
	return match(rec.Population, rows, (*Population).key,
		func(r row) string {
			return cols(r, "source", "model", "version", "change_type", "promoter", "approver",
				"approved_before", "approver_is_promoter", "verdict", "result")
		},
		func(want []*Population, got []row) []error {
			slices.SortStableFunc(want, func(a, b *Population) int { return a.At.Compare(b.At) })
			byTime(got, "from")
			var errs []error
			for i, p := range want {
				iv, err := interval(got[i], "from", "to")
				if err != nil {
					errs = append(errs, err)
				} else if !iv.Contains(p.At) {
					errs = append(errs, fmt.Errorf("%s: seq %s entered production over %s, but the registry changed at %s", p.key(), got[i].seq(), iv, fmtTime(p.At)))
				}
			}
			return errs
		})
}

func (rec *Record) checkExceptions(rows []row) []error {
	return match(rec.Exceptions, rows, (*Exception).key,
		func(r row) string {
			return cols(r, "source", "model", "version", "kind", "verdict", "reason", "result", "ended")
		},
		nil)
}

func (rec *Record) checkHistory(rows []row) []error {
	return match(rec.States, rows, (*State).key,
		func(r row) string { return cols(r, "source", "model", "versions_in_production", "serving_version") },
		func(want []*State, got []row) []error {
			slices.SortStableFunc(want, func(a, b *State) int { return a.At.Compare(b.At) })
			byTime(got, "from")
			var errs []error
			for i, s := range want {
				observed, err := got[i].time("from")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if s.Baseline {
					if !observed.Equal(s.At) {
						errs = append(errs, fmt.Errorf("%s: baseline seq %s observed at %s, want the first poll at %s", s.key(), got[i].seq(), fmtTime(observed), fmtTime(s.At)))
					}
					continue
				}
				iv, err := interval(got[i], "occurred_from", "occurred_to")
				switch {
				case err != nil:
					errs = append(errs, err)
				case !iv.Contains(s.At):
					errs = append(errs, fmt.Errorf("%s: seq %s occurred over %s, but the registry changed at %s", s.key(), got[i].seq(), iv, fmtTime(s.At)))
				case !(Interval{s.At, s.ObservedBy}).Contains(observed):
					errs = append(errs, fmt.Errorf("%s: seq %s observed at %s, want within %s", s.key(), got[i].seq(), fmtTime(observed), Interval{s.At, s.ObservedBy}))
				}
			}
			return errs
		})
}

func (rec *Record) checkCoverage(rows []row) []error {
	var gaps, windows []row
	for _, r := range rows {
		switch r["kind"] {
		case "coverage.gap":
			gaps = append(gaps, r)
		case "coverage":
			windows = append(windows, r)
		default:
			return []error{fmt.Errorf("seq %s: unknown kind %q", r.seq(), r["kind"])}
		}
	}
	errs := match(rec.Gaps, gaps, (*Gap).key,
		func(r row) string { return cols(r, "source", "cause") },
		func(want []*Gap, got []row) []error {
			slices.SortStableFunc(want, func(a, b *Gap) int { return a.From.From.Compare(b.From.From) })
			byTime(got, "from")
			var errs []error
			for i, g := range want {
				iv, err := interval(got[i], "from", "to")
				switch {
				case err != nil:
					errs = append(errs, err)
				case !g.From.Contains(iv.From) || !g.To.Contains(iv.To):
					errs = append(errs, fmt.Errorf("%s: seq %s is a gap over %s, want from within %s and to within %s", g.key(), got[i].seq(), iv, g.From, g.To))
				}
			}
			return errs
		})

	// Failed polls happen only while a registry is down, and every outage
	// has some.
	explained := make([]bool, len(rec.Gaps))
	for _, w := range windows {
		failures, err := strconv.Atoi(w["failures"])
		if err != nil {
			errs = append(errs, fmt.Errorf("seq %s: failures: %w", w.seq(), err))
			continue
		}
		if failures == 0 {
			continue
		}
		win, err := interval(w, "from", "to")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found := false
		for i, g := range rec.Gaps {
			if g.Cause == "source_error" && g.Source == w["source"] && g.Down.overlapsWindow(win) {
				explained[i], found = true, true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("%s: seq %s counts %d failed polls over %s, when the script had the registry up", w["source"], w.seq(), failures, win))
		}
	}
	for i, g := range rec.Gaps {
		if g.Cause == "source_error" && !explained[i] {
			errs = append(errs, fmt.Errorf("%s: no coverage window counts a failed poll during the outage %s", g.Source, g.Down))
		}
	}
	return errs
}

// interval reads two time columns of a row.
func interval(r row, from, to string) (Interval, error) {
	f, err := r.time(from)
	if err != nil {
		return Interval{}, err
	}
	t, err := r.time(to)
	if err != nil {
		return Interval{}, err
	}
	return Interval{f, t}, nil
}
