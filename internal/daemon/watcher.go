package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// Retry policy of a failing source. After the n-th consecutive failed poll
// the next attempt is at the earlier of the next scheduled tick and
// RetryBase*2^(n-1) (at most RetryMax) from now: a source on a long schedule
// (@hourly, @daily) is retried within minutes, one on a short schedule simply
// keeps its ticks, and a source never polls more often than after RetryBase.
const (
	RetryBase = 5 * time.Second
	RetryMax  = 5 * time.Minute
)

// PollTimeoutFactor bounds one poll as a whole at this many times the
// source's timeout (which bounds each registry request).
const PollTimeoutFactor = 10

// maintenanceRetry is how long a failed append of the daemon's own entries
// (rollback.overdue, coverage.late, coverage.gap) waits before it is retried.
const maintenanceRetry = 30 * time.Second

// watcher runs one source: its polls on schedule, its rollback deadlines and
// its coverage gap. Its fields are owned by its loop goroutine, except gap,
// which readers get through gapSnapshot.
type watcher struct {
	d     *Daemon
	cfg   config.Source
	name  string
	typ   string
	src   *trackedSource
	p     *Poller
	sched config.Schedule
	log   *slog.Logger

	nextTick  time.Time // the next scheduled tick
	retryAt   time.Time // an earlier retry after a failure, or zero
	failures  int       // consecutive failed polls
	holdUntil time.Time // maintenance appends wait until then after a failure
	// overdueAt is the time Overdue last ran successfully: deadlines up to
	// it were handled.
	overdueAt time.Time

	mu  sync.Mutex
	gap gapState
}

func (w *watcher) loopName() string { return "source:" + w.name }

// trackedSource records whether a poll reached the registry and how the
// snapshot ended, so a failed poll is classified as source_error or
// ledger_error.
type trackedSource struct {
	sources.Source
	mu     sync.Mutex
	called bool
	err    error
}

// Snapshot calls the source and records the outcome.
func (t *trackedSource) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	r, err := t.Source.Snapshot(ctx, prev)
	t.mu.Lock()
	t.called, t.err = true, err
	t.mu.Unlock()
	return r, err
}

func (t *trackedSource) reset() {
	t.mu.Lock()
	t.called, t.err = false, nil
	t.mu.Unlock()
}

func (t *trackedSource) outcome() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.called, t.err
}

// pollTimeout is the bound of one poll of the source.
func (w *watcher) pollTimeout() time.Duration {
	t := w.cfg.Timeout.D()
	if t <= 0 {
		t = sources.DefaultTimeout
	}
	return PollTimeoutFactor * t
}

// firstPoll returns when the source is polled first: now when it was never
// polled or a tick passed since its last attempt, else that next tick.
func (w *watcher) firstPoll(ctx context.Context, now time.Time) time.Time {
	cov, err := readCoverage(ctx, w.d.led, w.name)
	if err != nil || cov.LastAttemptAt.IsZero() {
		return now
	}
	if next := w.sched.Next(cov.LastAttemptAt); next.After(now) {
		return next
	}
	return now
}

// run is the source's loop until ctx is done. A poll in flight when ctx ends
// finishes (bounded by the daemon's shutdown timeout).
func (w *watcher) run(ctx context.Context) {
	defer w.d.act.done(w.loopName())
	w.nextTick = w.firstPoll(w.d.work, w.d.clk.Now())
	for {
		wake := w.nextPoll()
		if at, ok := w.nextDeadline(); ok && at.Before(wake) {
			wake = at
		}
		if !w.d.act.sleepUntil(ctx, w.loopName(), wake) {
			return
		}
		if now := w.d.clk.Now(); !now.Before(w.nextPoll()) {
			w.poll(w.d.work, true)
		}
		w.maintain(w.d.work)
	}
}

// nextPoll is when the next poll is due.
func (w *watcher) nextPoll() time.Time {
	if !w.retryAt.IsZero() && w.retryAt.Before(w.nextTick) {
		return w.retryAt
	}
	return w.nextTick
}

// nextDeadline returns the earliest rollback deadline or coverage.late time
// still to handle.
func (w *watcher) nextDeadline() (time.Time, bool) {
	var at time.Time
	for _, dl := range w.p.State().Deadlines() {
		if dl.At.After(w.overdueAt) {
			at = dl.At
			break
		}
	}
	if l, ok := w.lateAt(); ok && (at.IsZero() || l.Before(at)) {
		at = l
	}
	if !w.gap.closeTo.IsZero() && (at.IsZero() || w.holdUntil.Before(at)) {
		at = w.holdUntil
	}
	if at.IsZero() {
		return at, false
	}
	if at.Before(w.holdUntil) {
		at = w.holdUntil
	}
	return at, true
}

// maintain fires due rollback deadlines and coverage.late, and retries a
// gap close that failed to commit.
func (w *watcher) maintain(ctx context.Context) {
	now := w.d.clk.Now()
	if now.Before(w.holdUntil) {
		return
	}
	if !w.gap.closeTo.IsZero() {
		if err := w.closeGap(ctx); err != nil {
			w.log.Error("record coverage gap", "error", err)
			w.hold()
			return
		}
	}
	if dls := w.p.State().Deadlines(); len(dls) > 0 && !dls[0].At.After(now) {
		n, err := w.p.Overdue(ctx)
		if err != nil {
			w.d.appendFailed(w.name, err)
			w.log.Error("append rollback.overdue", "error", err)
			w.hold()
			return
		}
		w.overdueAt = now
		if n > 0 {
			w.d.m.findings.WithLabelValues(w.name, ledger.KindRollbackOverdue).Add(float64(n))
			w.log.Warn("rollback overdue", "findings", n)
		}
	}
	if err := w.late(ctx, now); err != nil {
		w.log.Error("append coverage.late", "error", err)
		w.hold()
	}
}

func (w *watcher) hold() { w.holdUntil = w.d.clk.Now().Add(maintenanceRetry) }

// poll runs one poll under the poll timeout, records its outcome in
// metrics, health and the coverage gap (opening gaps when open is set), and
// schedules the next one.
func (w *watcher) poll(ctx context.Context, open bool) (Summary, error) {
	start := w.d.clk.Now()
	pctx, cancel := withClockTimeout(ctx, w.d.clk, w.pollTimeout(), errPollTimeout)
	w.src.reset()
	sum, err := w.p.PollOnce(pctx)
	cancel()
	cause := ""
	if err != nil {
		cause = CauseLedgerError
		if called, serr := w.src.outcome(); called && serr != nil {
			cause = CauseSourceError
			if err != serr { // the coverage counters failed to commit too
				w.d.appendFailed(w.name, err)
			}
		} else {
			w.d.appendFailed(w.name, err)
		}
	} else {
		w.d.appendOK(w.name)
	}
	w.record(sum, err, cause)
	w.afterPoll(ctx, err == nil, cause, start, open)
	w.schedule(err == nil)
	return sum, err
}

var errPollTimeout = errors.New("poll timed out")

// record updates the metrics and logs of one poll.
func (w *watcher) record(sum Summary, err error, cause string) {
	m := w.d.m
	m.polls.WithLabelValues(w.name).Inc()
	m.pollDuration.WithLabelValues(w.name).Observe(sum.Duration.Seconds())
	if err != nil {
		m.pollErrors.WithLabelValues(w.name, cause).Inc()
		w.log.Warn("poll failed", "cause", cause, "failures", w.failures+1, "error", err)
		return
	}
	changes, findings := 0, 0
	for k, n := range sum.Changes {
		m.changes.WithLabelValues(w.name, k).Add(float64(n))
		changes += n
	}
	for k, n := range sum.Findings {
		m.findings.WithLabelValues(w.name, k).Add(float64(n))
		findings += n
	}
	lvl := slog.LevelDebug
	if changes > 0 || findings > 0 || w.failures > 0 {
		lvl = slog.LevelInfo
	}
	w.log.Log(context.Background(), lvl, "poll", "models", sum.Models, "versions", sum.Versions,
		"changes", changes, "findings", findings, "alerts", sum.Alerts, "duration", sum.Duration)
}

// schedule sets the next tick and, after a failure, the retry.
func (w *watcher) schedule(ok bool) {
	now := w.d.clk.Now()
	if !w.nextTick.After(now) {
		next := w.sched.Next(w.nextTick)
		if !next.After(now) {
			next = w.sched.Next(now)
		}
		w.nextTick = next
	}
	w.retryAt = time.Time{}
	if ok {
		w.failures = 0
		return
	}
	w.failures++
	if r := now.Add(retryDelay(w.failures)); r.Before(w.nextTick) {
		w.retryAt = r
	}
}

// retryDelay is the wait after the n-th consecutive failure.
func retryDelay(n int) time.Duration {
	d := RetryBase
	for i := 1; i < n && d < RetryMax; i++ {
		d *= 2
	}
	return min(d, RetryMax)
}
