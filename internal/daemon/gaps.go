package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// Coverage gap kinds and causes (DESIGN.md sections 3 and 8).
const (
	KindCoverageGap  = "coverage.gap"
	KindCoverageLate = ledger.KindCoverageLate

	CauseSourceError = "source_error"
	CauseLedgerError = "ledger_error"
	CauseDaemonDown  = "daemon_down"
)

// auxGap is the aux key of a source's coverage gap state.
const auxGap = "gap"

// maxTickCount bounds the ticks counted one by one in a gap; beyond it the
// count is extrapolated (a gap of weeks on a one-second schedule).
const maxTickCount = 1 << 20

// gapState is a source's coverage gap (aux "gap").
//
// A gap opens when the second scheduled tick after the reference (the last
// successful poll, else Since) passes without a successful poll, or when the
// daemon finds at start that two ticks passed since the last attempt while it
// was down. Its From is the reference: nothing was observed after it. It
// closes at the end of the next successful poll, which appends coverage.gap
// {from, to, missed_ticks, cause}. While it is open and From is at least
// alerts.coverage_gap ago, coverage.late is appended once (Late).
type gapState struct {
	// Since is when registrywatch began watching the source: the reference
	// before any successful poll.
	Since time.Time `json:"since"`
	Open  bool      `json:"open,omitempty"`
	From  time.Time `json:"from,omitzero"`
	Cause string    `json:"cause,omitempty"`
	Late  bool      `json:"late,omitempty"`

	// closeTo and closeStart, when set, are the end and start of the poll
	// that closed the gap, kept while its coverage.gap entry is not
	// committed yet.
	closeTo, closeStart time.Time
}

// open reports whether the gap is open and not being closed.
func (g gapState) open() bool { return g.Open && g.closeTo.IsZero() }

func readGap(ctx context.Context, led *ledger.Ledger, source string) (gapState, error) {
	var g gapState
	b, ok, err := led.Aux(ctx, source, auxGap)
	if err != nil {
		return g, fmt.Errorf("source %s: read coverage gap: %w", source, err)
	}
	if ok {
		if err := json.Unmarshal(b, &g); err != nil {
			return g, fmt.Errorf("source %s: coverage gap state: %w", source, err)
		}
	}
	return g, nil
}

func (w *watcher) gapAux(g gapState) ledger.Aux {
	b, _ := json.Marshal(g)
	return ledger.Aux{Source: w.name, Key: auxGap, Value: b}
}

// gapSnapshot returns the gap state for readers outside the loop.
func (w *watcher) gapSnapshot() gapState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gap
}

// setGap replaces the gap state. Only the source's loop writes it, always
// through setGap; the loop reads w.gap without the lock.
func (w *watcher) setGap(g gapState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gap = g
}

// reference is the time after which nothing was observed of the source.
func (w *watcher) reference(cov coverageState) time.Time {
	if !cov.LastSuccessAt.IsZero() {
		return cov.LastSuccessAt
	}
	return w.gap.Since
}

// secondTick returns the second scheduled tick after t.
func (w *watcher) secondTick(t time.Time) time.Time { return w.sched.Next(w.sched.Next(t)) }

// countTicks counts the scheduled ticks t with from < t < to (t <= to when
// inclusive).
func (w *watcher) countTicks(from, to time.Time, inclusive bool) int64 {
	var n int64
	t := w.sched.Next(from)
	for t.Before(to) || inclusive && t.Equal(to) {
		n++
		if n == maxTickCount {
			elapsed := t.Sub(from)
			if elapsed <= 0 {
				return n
			}
			return int64(float64(n) * float64(to.Sub(from)) / float64(elapsed))
		}
		next := w.sched.Next(t)
		if !next.After(t) {
			break
		}
		t = next
	}
	return n
}

// startGaps runs at daemon start: it records when watching began, closes a
// gap whose closing poll committed before a crash, and opens a daemon_down
// gap when two ticks passed since the last attempt while the daemon was down.
func (w *watcher) startGaps(ctx context.Context, now time.Time, detectDown bool) error {
	g, err := readGap(ctx, w.d.led, w.name)
	if err != nil {
		return err
	}
	cov, err := readCoverage(ctx, w.d.led, w.name)
	if err != nil {
		return err
	}
	fresh := g.Since.IsZero()
	if fresh {
		g.Since = now
	}
	w.setGap(g)
	switch {
	case g.Open && cov.LastSuccessAt.After(g.From):
		// The poll that closed the gap committed; its coverage.gap did not.
		g.closeTo, g.closeStart = cov.LastSuccessAt, cov.LastSuccessAt
		w.setGap(g)
		return w.closeGap(ctx)
	case !g.Open && detectDown:
		last := cov.LastAttemptAt
		if last.IsZero() && !fresh {
			last = g.Since
		}
		if !last.IsZero() && !w.secondTick(last).After(now) {
			g.Open, g.From, g.Cause, g.Late = true, w.reference(cov), CauseDaemonDown, false
			w.setGap(g)
			w.log.Warn("the daemon was down for two scheduled ticks or more: coverage gap open",
				"from", ledger.FormatTime(g.From), "last_attempt", ledger.FormatTime(last))
		}
	}
	if fresh || g.Open {
		if _, err := w.d.append(ctx, ledger.Batch{Aux: []ledger.Aux{w.gapAux(g)}}); err != nil {
			return fmt.Errorf("source %s: record coverage gap: %w", w.name, err)
		}
	}
	// A downtime longer than alerts.coverage_gap is late already: say so
	// now, before the first poll closes the gap.
	return w.late(ctx, now)
}

// afterPoll updates the gap after a poll that started at start: a success
// closes an open gap; a failure opens one (when open is set) once the second
// tick after the reference has passed.
func (w *watcher) afterPoll(ctx context.Context, ok bool, cause string, start time.Time, open bool) {
	g := w.gap
	if ok {
		if !g.Open {
			return
		}
		cov, err := readCoverage(ctx, w.d.led, w.name)
		if err != nil {
			w.log.Error("read coverage to close the gap", "error", err)
			cov.LastSuccessAt = w.d.clk.Now()
		}
		g.closeTo, g.closeStart = cov.LastSuccessAt, start
		w.setGap(g)
		if err := w.closeGap(ctx); err != nil {
			w.log.Error("record coverage gap", "error", err)
			w.hold()
		}
		return
	}
	if !open || g.Open {
		return
	}
	cov, err := readCoverage(ctx, w.d.led, w.name)
	if err != nil {
		w.log.Error("read coverage", "error", err)
		return
	}
	now := w.d.clk.Now()
	ref := w.reference(cov)
	if w.secondTick(ref).After(now) {
		return
	}
	g.Open, g.From, g.Cause, g.Late = true, ref, cause, false
	w.setGap(g)
	w.log.Warn("coverage gap open: no successful poll for two scheduled ticks", "from", ledger.FormatTime(ref), "cause", cause)
	if _, err := w.d.append(ctx, ledger.Batch{Aux: []ledger.Aux{w.gapAux(g)}}); err != nil {
		// Kept in memory; written with coverage.late or when the gap closes.
		w.log.Error("record coverage gap", "error", err)
	}
}

// closeGap appends coverage.gap for the gap being closed and clears it.
func (w *watcher) closeGap(ctx context.Context) error {
	g := w.gap
	now := w.d.clk.Now()
	missed := w.countTicks(g.From, g.closeStart, false)
	e := ledger.Entry{
		Kind: KindCoverageGap, Source: w.name, SourceType: w.typ, Actor: policy.Actor,
		ObservedAt: now, OccurredFrom: g.From, OccurredTo: g.closeTo,
		Payload: map[string]any{
			"from":         ledger.FormatTime(g.From),
			"to":           ledger.FormatTime(g.closeTo),
			"missed_ticks": missed,
			"cause":        g.Cause,
		},
	}
	closed := gapState{Since: g.Since}
	if _, err := w.d.append(ctx, ledger.Batch{Entries: []ledger.Entry{e}, Aux: []ledger.Aux{w.gapAux(closed)}}); err != nil {
		return fmt.Errorf("source %s: append coverage.gap: %w", w.name, err)
	}
	w.setGap(closed)
	w.log.Info("coverage gap closed", "from", ledger.FormatTime(g.From), "to", ledger.FormatTime(g.closeTo),
		"missed_ticks", missed, "cause", g.Cause)
	return nil
}

// lateAt returns when the open gap becomes late, and false when no
// coverage.late is due.
func (w *watcher) lateAt() (time.Time, bool) {
	if !w.gap.open() || w.gap.Late {
		return time.Time{}, false
	}
	return w.gap.From.Add(w.d.cfg.Alerts.CoverageGap.D()), true
}

// late appends coverage.late once the open gap is older than the bound.
func (w *watcher) late(ctx context.Context, now time.Time) error {
	at, due := w.lateAt()
	if !due || now.Before(at) {
		return nil
	}
	g := w.gap
	g.Late = true
	e := ledger.Entry{
		Kind: KindCoverageLate, Source: w.name, SourceType: w.typ, Actor: policy.Actor,
		ObservedAt: now, OccurredFrom: g.From, OccurredTo: now,
		Payload: map[string]any{
			"from":         ledger.FormatTime(g.From),
			"missed_ticks": w.countTicks(g.From, now, true),
			"cause":        g.Cause,
			"severity":     alerts.SeverityDanger,
		},
		Alert: true,
	}
	res, err := w.d.append(ctx, ledger.Batch{Entries: []ledger.Entry{e}, Aux: []ledger.Aux{w.gapAux(g)}})
	if err != nil {
		return fmt.Errorf("source %s: append coverage.late: %w", w.name, err)
	}
	w.setGap(g)
	if !res.Dropped[0] {
		w.d.m.findings.WithLabelValues(w.name, KindCoverageLate).Inc()
		w.d.queued()
		w.log.Warn("coverage late: no successful poll within alerts.coverage_gap",
			"from", ledger.FormatTime(g.From), "bound", w.d.cfg.Alerts.CoverageGap.D(), "cause", g.Cause)
	}
	return nil
}
