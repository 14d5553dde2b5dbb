package alerts

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// Outbox is what the Dispatcher needs of the ledger; *ledger.Ledger
// implements it.
type Outbox interface {
	// Outbox returns the undelivered alerts in seq order, each with its
	// finding read back from the ledger.
	Outbox(ctx context.Context) ([]ledger.OutboxItem, error)
	// Append commits a batch in one transaction.
	Append(ctx context.Context, b ledger.Batch) (ledger.Result, error)
	// Find calls fn for each entry matching q, in seq order (descending when
	// q.Desc); an error returned by fn stops the scan and is returned.
	Find(ctx context.Context, q ledger.Query, fn func(ledger.Record) error) error
	// Record returns the entry with sequence number seq.
	Record(ctx context.Context, seq int64) (ledger.Record, error)
}

// Defaults of Options.
const (
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultInterval    = time.Minute
)

// maxErrorLen bounds the error text recorded in an alert.failed entry.
const maxErrorLen = 500

// Options configures a Dispatcher.
type Options struct {
	// Clock drives backoff, the idle re-check and Drain's deadline; default
	// clock.Real.
	Clock clock.Clock
	// Logger receives delivery outcomes; default slog.Default().
	Logger *slog.Logger
	// BaseBackoff is the first retry delay (default 1s); each further
	// attempt doubles it, with jitter, up to MaxBackoff (default 5m).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Interval is how often an idle Run re-reads the outbox without being
	// kicked (default 1m).
	Interval time.Duration
	// Hooks are optional callbacks, e.g. for metrics.
	Hooks Hooks
}

// Hooks are optional callbacks of a Dispatcher, called from its goroutine.
// They MUST NOT block.
type Hooks struct {
	// OnDelivered is called once an alert.delivered entry is committed.
	OnDelivered func(a Alert, d Delivery)
	// OnFailed is called once an alert.failed entry is committed.
	OnFailed func(a Alert, err error)
	// OnRetry is called when a delivery will be retried after wait.
	OnRetry func(a Alert, err error, wait time.Duration)
}

// Dispatcher drains the ledger's outbox to a Sink, one alert at a time in seq
// order. A retryable failure blocks the queue behind it (order is kept) and is
// retried with exponential backoff, forever; a non-retryable failure is
// recorded as alert.failed and the queue moves on. Every outcome is appended
// to the ledger in the same batch that removes the alert from the outbox, so
// undelivered alerts survive restarts.
type Dispatcher struct {
	ledger   Outbox
	sink     Sink
	clock    clock.Clock
	log      *slog.Logger
	base     time.Duration
	max      time.Duration
	interval time.Duration
	hooks    Hooks

	kick    chan struct{}
	pending atomic.Int64

	mu      sync.Mutex // serializes delivery between Run and Drain
	head    string     // finding_id of the alert backing off at the head
	attempt int        // failed attempts of head
	retryAt time.Time  // head is not retried before this
	// unrecorded holds an outcome the sink reported but the ledger has not
	// committed yet, so the alert is recorded without being sent twice.
	unrecorded map[string]outcome

	// park, when set (tests), is called each time Run starts waiting.
	park func(wait time.Duration, idle bool)
}

type outcome struct {
	entry    ledger.Entry
	delivery Delivery
	err      error // nil when delivered
}

// New returns a Dispatcher draining outbox to sink.
func New(outbox Outbox, sink Sink, opts Options) *Dispatcher {
	d := &Dispatcher{
		ledger:     outbox,
		sink:       sink,
		clock:      opts.Clock,
		log:        opts.Logger,
		base:       opts.BaseBackoff,
		max:        opts.MaxBackoff,
		interval:   opts.Interval,
		hooks:      opts.Hooks,
		kick:       make(chan struct{}, 1),
		unrecorded: map[string]outcome{},
	}
	if d.clock == nil {
		d.clock = clock.Real{}
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.base <= 0 {
		d.base = DefaultBaseBackoff
	}
	if d.max <= 0 {
		d.max = DefaultMaxBackoff
	}
	if d.interval <= 0 {
		d.interval = DefaultInterval
	}
	return d
}

// Kick wakes an idle Run to read the outbox now; call it after each Append
// that added outbox rows. It never blocks, and does not cut a backoff short.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Pending returns the number of undelivered alerts at the last outbox read.
func (d *Dispatcher) Pending() int { return int(d.pending.Load()) }

// Run drains the outbox until ctx is done, waking on Kick, on a retry's
// backoff and every Interval. It returns nil when ctx is done.
func (d *Dispatcher) Run(ctx context.Context) error {
	timer := d.clock.NewTimer(d.interval)
	defer timer.Stop()
	for {
		wait, idle := d.deliver(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if idle {
			wait = d.interval
		}
		timer.Stop()
		timer.Reset(wait)
		if d.park != nil {
			d.park(wait, idle)
		}
	waiting:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C():
				break waiting
			case <-d.kick:
				if idle {
					break waiting
				}
			}
		}
	}
}

// Drain delivers what it can within deadline on the Clock (for one-shot
// commands such as poll) and returns how many alerts remain pending. A retry
// due after the deadline is not waited for; a deadline <= 0 only counts. The
// error is ctx's, or the ledger's when the outbox cannot be read at the end.
func (d *Dispatcher) Drain(ctx context.Context, deadline time.Duration) (pending int, err error) {
	if deadline > 0 {
		dctx, cancel := d.withClockDeadline(ctx, deadline)
		end := d.clock.Now().Add(deadline)
		for {
			wait, idle := d.deliver(dctx)
			if idle || dctx.Err() != nil || d.clock.Now().Add(wait).After(end) {
				break
			}
			if !clock.Sleep(d.clock, wait, dctx.Done()) {
				break
			}
		}
		cancel()
	}
	if err := ctx.Err(); err != nil {
		return d.Pending(), err
	}
	items, err := d.ledger.Outbox(ctx)
	if err != nil {
		return d.Pending(), err
	}
	d.pending.Store(int64(len(items)))
	return len(items), nil
}

// withClockDeadline returns a context cancelled after d on the Clock (the
// context package's deadlines run on the wall clock).
func (d *Dispatcher) withClockDeadline(ctx context.Context, after time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	t := d.clock.NewTimer(after)
	go func() {
		defer t.Stop()
		select {
		case <-t.C():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// deliver delivers pending alerts in order until the outbox is empty (idle)
// or the head must wait (wait > 0), or ctx is done.
func (d *Dispatcher) deliver(ctx context.Context) (wait time.Duration, idle bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return 0, false
		}
		if w := d.retryAt.Sub(d.clock.Now()); w > 0 {
			return w, false
		}
		items, err := d.ledger.Outbox(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return 0, false
			}
			d.log.Error("alerts: read outbox", "error", err)
			return d.retry(Alert{}, err, 0), false
		}
		d.pending.Store(int64(len(items)))
		if len(items) == 0 {
			d.head, d.attempt, d.retryAt = "", 0, time.Time{}
			return 0, true
		}
		for _, it := range items {
			if w := d.deliverOne(ctx, it); w > 0 || ctx.Err() != nil {
				return w, false
			}
			d.pending.Add(-1)
		}
	}
}

// deliverOne sends one alert and records the outcome; it returns how long to
// wait before retrying it (0 when the outcome is committed).
func (d *Dispatcher) deliverOne(ctx context.Context, it ledger.OutboxItem) time.Duration {
	a := d.alertFor(ctx, it)
	out, ok := d.unrecorded[it.FindingID]
	if !ok {
		dl, err := d.sink.Send(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			if retryable, after := Classify(err); retryable {
				d.log.Warn("alerts: delivery failed, will retry", "finding_id", a.FindingID, "seq", a.Seq,
					"kind", a.Record.Kind, "attempt", d.attempt+1, "error", err)
				return d.retry(a, err, after)
			}
			out = outcome{entry: d.entry(KindFailed, map[string]any{
				"finding_id": a.FindingID,
				"error":      truncate(err.Error(), maxErrorLen),
			}), err: err}
		} else {
			out = outcome{entry: d.entry(KindDelivered, map[string]any{
				"finding_id": a.FindingID,
				"channel":    dl.Channel,
				"ts":         dl.TS,
			}), delivery: dl}
		}
	}
	// The outcome happened: record it even if ctx ends now.
	_, err := d.ledger.Append(context.WithoutCancel(ctx), ledger.Batch{
		Entries:    []ledger.Entry{out.entry},
		OutboxDone: []string{a.FindingID},
	})
	if err != nil {
		d.unrecorded[a.FindingID] = out
		d.log.Error("alerts: record delivery outcome", "finding_id", a.FindingID, "seq", a.Seq, "error", err)
		return d.retry(a, err, 0)
	}
	delete(d.unrecorded, a.FindingID)
	d.head, d.attempt, d.retryAt = "", 0, time.Time{}
	if out.err != nil {
		d.log.Error("alerts: delivery failed permanently", "finding_id", a.FindingID, "seq", a.Seq,
			"kind", a.Record.Kind, "error", out.err)
		if d.hooks.OnFailed != nil {
			d.hooks.OnFailed(a, out.err)
		}
	} else {
		d.log.Info("alerts: delivered", "finding_id", a.FindingID, "seq", a.Seq, "kind", a.Record.Kind,
			"severity", a.Severity, "channel", out.delivery.Channel)
		if d.hooks.OnDelivered != nil {
			d.hooks.OnDelivered(a, out.delivery)
		}
	}
	return 0
}

// retry schedules the next attempt of a (the head of the queue) and returns
// the wait: retryAfter when the receiver gave one, else exponential backoff
// with jitter.
func (d *Dispatcher) retry(a Alert, err error, retryAfter time.Duration) time.Duration {
	if d.head != a.FindingID {
		d.head, d.attempt = a.FindingID, 0
	}
	d.attempt++
	wait := retryAfter
	if wait <= 0 {
		wait = d.backoff(d.attempt)
	}
	wait = max(wait, time.Millisecond) // a zero wait would let the queue skip its head
	d.retryAt = d.clock.Now().Add(wait)
	if d.hooks.OnRetry != nil && a.FindingID != "" {
		d.hooks.OnRetry(a, err, wait)
	}
	return wait
}

// backoff returns the delay before attempt n+1: base*2^(n-1), capped at max,
// with "equal jitter" (uniform in [d/2, d]).
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.base
	for i := 1; i < n && w < d.max; i++ {
		w *= 2
	}
	w = min(w, d.max)
	half := w / 2
	return half + time.Duration(rand.Int64N(int64(w-half)+1))
}

// entry returns an operation entry about no source (DESIGN.md section 3).
func (d *Dispatcher) entry(kind string, payload map[string]any) ledger.Entry {
	now := d.clock.Now()
	return ledger.Entry{
		Kind:         kind,
		SourceType:   "registrywatch",
		Actor:        "registrywatch",
		ObservedAt:   now,
		OccurredFrom: now,
		OccurredTo:   now,
		Payload:      payload,
	}
}

// alertFor builds the Alert of an outbox item, with its follow-up context.
// When the earlier finding cannot be looked up the alert goes out as a
// normal message: threading never blocks the queue.
func (d *Dispatcher) alertFor(ctx context.Context, it ledger.OutboxItem) Alert {
	rec := it.Record
	a := Alert{
		FindingID: it.FindingID,
		Seq:       it.Seq,
		LeafHash:  it.LeafHash,
		Record:    rec,
		Severity:  Severity(rec.Payload),
	}
	fu, err := d.followUp(ctx, rec)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("alerts: cannot find the finding this alert follows up; posting it unthreaded",
			"finding_id", it.FindingID, "seq", it.Seq, "error", err)
	}
	a.FollowUp = fu
	return a
}

// errStop ends a Find scan early.
var errStop = errors.New("stop")

// maxChain bounds the walk along a supersedes chain.
const maxChain = 64

// followUp finds the earlier finding rec follows up: the one it supersedes
// (walking the chain back to the oldest alert delivered with a ts, so a
// follow-up lands in the original thread), or, for a rollback or restore,
// the rollback.overdue raised for the same model since its last judged
// finding.
func (d *Dispatcher) followUp(ctx context.Context, rec ledger.Record) (*FollowUp, error) {
	if s, ok := PayloadInt(rec.Payload, "supersedes"); ok && s >= 0 && s < rec.Seq {
		var fu *FollowUp
		for cur, n := s, 0; n < maxChain; n++ {
			orig, err := d.ledger.Record(ctx, cur)
			if err != nil {
				return nil, err
			}
			c, err := d.original(ctx, FollowUpSupersedes, orig)
			if err != nil {
				return nil, err
			}
			if fu == nil || c.ThreadTS != "" {
				fu = c
			}
			next, ok := PayloadInt(orig.Payload, "supersedes")
			if !ok || next < 0 || next >= cur {
				break
			}
			cur = next
		}
		return fu, nil
	}
	if rec.Kind != ledger.KindRollback && rec.Kind != ledger.KindRestored {
		return nil, nil
	}
	var prev *ledger.Record
	err := d.ledger.Find(ctx, ledger.Query{
		Source:  rec.Source,
		ModelID: rec.ModelID,
		Kinds: []string{ledger.KindPromotion, ledger.KindRollback, ledger.KindRestored,
			ledger.KindRollbackOverdue},
		ToSeq: rec.Seq,
		Desc:  true,
	}, func(r ledger.Record) error {
		if r.Seq >= rec.Seq || r.Source != rec.Source || r.ModelID != rec.ModelID {
			return nil
		}
		prev = &r
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if prev == nil || prev.Kind != ledger.KindRollbackOverdue {
		return nil, nil
	}
	return d.original(ctx, FollowUpRollbackCompleted, *prev)
}

// original describes orig as the finding followed up, with the channel and
// ts of its alert.delivered entry when there is one.
func (d *Dispatcher) original(ctx context.Context, reason string, orig ledger.Record) (*FollowUp, error) {
	fu := &FollowUp{
		Reason:    reason,
		Seq:       orig.Seq,
		FindingID: PayloadString(orig.Payload, "finding_id"),
		Kind:      orig.Kind,
	}
	if fu.FindingID == "" {
		return fu, nil
	}
	err := d.ledger.Find(ctx, ledger.Query{Kind: KindDelivered, FromSeq: orig.Seq + 1},
		func(r ledger.Record) error {
			if r.Kind != KindDelivered || r.Seq <= orig.Seq || PayloadString(r.Payload, "finding_id") != fu.FindingID {
				return nil
			}
			fu.ThreadChannel = PayloadString(r.Payload, "channel")
			fu.ThreadTS = PayloadString(r.Payload, "ts")
			return errStop
		})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return fu, nil
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
