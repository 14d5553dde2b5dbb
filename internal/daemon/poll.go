// Package daemon runs registrywatch: PollOnce (one poll of one source into
// one ledger batch) and Run (schedules, alerts, coverage, HTTP, lifecycle).
package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/watch"
)

// Aux keys of a source (ledger aux table).
const (
	auxSource   = "source"   // the source's own opaque state (cursors, caches)
	auxPoll     = "poll"     // pollMeta
	auxCoverage = "coverage" // coverage counters
)

// ErrStateMismatch is returned when a source's stored state does not match
// the digest of its latest snapshot entry: the ledger's state row was edited
// or deleted outside registrywatch.
var ErrStateMismatch = errors.New("stored state does not match the latest snapshot entry")

// pollMeta is what PollOnce keeps between polls of a source.
type pollMeta struct {
	// LastSuccessStart and LastSuccessEnd bound the last successful poll.
	LastSuccessStart time.Time `json:"last_success_start"`
	LastSuccessEnd   time.Time `json:"last_success_end"`
	// Scope is the models filter in force at the last successful poll.
	Scope []string `json:"scope"`
}

// Poller polls one source into the ledger. Create it with NewPoller; it is
// not safe for concurrent PollOnce calls (the daemon never overlaps polls
// of one source).
type Poller struct {
	src   sources.Source
	led   *ledger.Ledger
	clk   clock.Clock
	cfg   *policy.Config
	scope []string
	log   *slog.Logger
	state *policy.State
	ready bool
	// OnCommit, when set, is called after each committed batch with the
	// number of alerts it queued.
	OnCommit func(alerts int)
}

// PollerOptions configures a Poller.
type PollerOptions struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// Policy is the source's policy config.
	Policy *policy.Config
	// Models is the source's models filter (globs; empty = every model).
	Models []string
}

// NewPoller returns a Poller of src writing into led.
func NewPoller(src sources.Source, led *ledger.Ledger, opts PollerOptions) *Poller {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{
		src: src, led: led, clk: opts.Clock, cfg: opts.Policy, scope: opts.Models,
		log: opts.Logger.With("source", src.Name()), state: policy.NewState(opts.Policy),
	}
}

// Name returns the source's name.
func (p *Poller) Name() string { return p.src.Name() }

// State returns the policy state folded from the source's history.
func (p *Poller) State() *policy.State { return p.state }

// Init checks the source's stored state against its latest snapshot entry
// and folds the source's history into the policy state. PollOnce calls it
// on first use; the daemon calls it at start so a tampered state refuses to
// run before any poll.
func (p *Poller) Init(ctx context.Context) error {
	if p.ready {
		return nil
	}
	if err := CheckState(ctx, p.led, p.src.Name()); err != nil {
		return err
	}
	st := policy.NewState(p.cfg)
	err := p.led.Find(ctx, ledger.Query{Source: p.src.Name()}, func(r ledger.Record) error {
		st.Apply(policyRecord(r))
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: read history: %w", p.src.Name(), err)
	}
	p.state, p.ready = st, true
	return nil
}

// CheckState verifies that the state row of source hashes to the digest of
// its latest snapshot entry (a source with no snapshot entry passes).
func CheckState(ctx context.Context, led *ledger.Ledger, source string) error {
	var digest string
	var found bool
	err := led.Find(ctx, ledger.Query{Kind: "snapshot", Source: source, Desc: true, Limit: 1}, func(r ledger.Record) error {
		digest, _ = r.Payload["digest"].(string)
		found = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: read snapshot entries: %w", source, err)
	}
	if !found {
		return nil
	}
	b, ok, err := led.State(ctx, source)
	if err != nil {
		return fmt.Errorf("source %s: read state: %w", source, err)
	}
	if !ok {
		return fmt.Errorf("source %s: %w (the state row is missing)", source, ErrStateMismatch)
	}
	if got := sources.DigestBytes(b); got != digest {
		return fmt.Errorf("source %s: %w (state %s, snapshot entry %s)", source, ErrStateMismatch, got[:12], digest[:min(12, len(digest))])
	}
	return nil
}

// Summary reports one poll.
type Summary struct {
	Source   string
	Versions int
	Models   int
	// Changes counts the change entries by kind; Findings counts the
	// production.changed entries and findings by kind.
	Changes  map[string]int
	Findings map[string]int
	Alerts   int
	Requests int
	Duration time.Duration
	Err      error
}

// PollOnce takes one snapshot of the source, diffs it against the stored
// state, runs the policy and appends everything in one ledger batch. A
// failed snapshot appends no change, snapshot or finding entry.
func (p *Poller) PollOnce(ctx context.Context) (sum Summary, err error) {
	sum = Summary{Source: p.src.Name(), Changes: map[string]int{}, Findings: map[string]int{}}
	start := p.clk.Now()
	defer func() { sum.Duration, sum.Err = p.clk.Now().Sub(start), err }()
	if err := p.Init(ctx); err != nil {
		return sum, err
	}
	name := p.src.Name()
	prevBytes, hasPrev, err := p.led.State(ctx, name)
	if err != nil {
		return sum, fmt.Errorf("source %s: read state: %w", name, err)
	}
	var prev *sources.Snapshot
	if hasPrev {
		if prev, err = sources.ParseSnapshot(prevBytes); err != nil {
			return sum, fmt.Errorf("source %s: stored state: %w", name, err)
		}
	}
	var meta pollMeta
	if b, ok, err := p.led.Aux(ctx, name, auxPoll); err != nil {
		return sum, fmt.Errorf("source %s: read poll state: %w", name, err)
	} else if ok {
		if err := json.Unmarshal(b, &meta); err != nil {
			return sum, fmt.Errorf("source %s: poll state: %w", name, err)
		}
	}
	srcAux, _, err := p.led.Aux(ctx, name, auxSource)
	if err != nil {
		return sum, fmt.Errorf("source %s: read source state: %w", name, err)
	}

	res, snapErr := p.src.Snapshot(ctx, sources.Previous{Snapshot: prev, Aux: srcAux})
	end := p.clk.Now()
	cov, covEntries, err := p.coverage(ctx, start, end, snapErr == nil)
	if err != nil {
		return sum, err
	}
	if snapErr != nil {
		// Only the coverage counters move, in their own transaction.
		if _, err := p.led.Append(ctx, ledger.Batch{Entries: covEntries, Aux: []ledger.Aux{cov}}); err != nil {
			return sum, errors.Join(snapErr, fmt.Errorf("source %s: record coverage: %w", name, err))
		}
		return sum, snapErr
	}
	sum.Requests = res.Requests
	next := res.Snapshot
	next.Sort()

	prevStart := meta.LastSuccessStart
	if prevStart.IsZero() {
		prevStart = start
	}
	in := watch.Input{SourceType: p.src.Type(), Prev: prev, Next: next, PrevPollStart: prevStart, PollEnd: end}
	if prev != nil && !slices.Equal(meta.Scope, p.scope) {
		old := meta.Scope
		in.WasInScope = func(name string) bool { return inScope(old, name) }
	}
	out := watch.Diff(in)
	changes, err := p.resolveAttributions(ctx, out.Changes)
	if err != nil {
		return sum, err
	}
	outputs := policy.Evaluate(p.state, policy.Poll{
		Prev: prev, Next: out.Snapshot, Changes: changes, PrevPollStart: prevStart, PollEnd: end,
	})

	canonical, err := out.Snapshot.Canonical()
	if err != nil {
		return sum, fmt.Errorf("source %s: %w", name, err)
	}
	sum.Models, sum.Versions = out.Snapshot.Counts()
	batch := ledger.Batch{Entries: covEntries}
	base := len(batch.Entries)
	for _, c := range changes {
		batch.Entries = append(batch.Entries, p.changeEntry(c, end))
		sum.Changes[c.Kind]++
	}
	for _, o := range outputs {
		e := p.outputEntry(o, end, base, len(changes))
		batch.Entries = append(batch.Entries, e)
		sum.Findings[o.Kind]++
		if o.Alert {
			sum.Alerts++
		}
	}
	if !hasPrev || !bytes.Equal(canonical, prevBytes) {
		digest := sources.DigestBytes(canonical)
		batch.Entries = append(batch.Entries, ledger.Entry{
			Kind: "snapshot", Source: name, SourceType: p.src.Type(), Actor: policy.Actor,
			ObservedAt: end, OccurredFrom: end, OccurredTo: end,
			Payload: map[string]any{"digest": digest, "models": int64(sum.Models), "versions": int64(sum.Versions)},
		})
		batch.States = []ledger.State{{Source: name, Bytes: canonical}}
	}
	meta = pollMeta{LastSuccessStart: start, LastSuccessEnd: end, Scope: p.scope}
	metaBytes, _ := json.Marshal(meta)
	batch.Aux = []ledger.Aux{cov, {Source: name, Key: auxPoll, Value: metaBytes}}
	if res.Aux != nil {
		batch.Aux = append(batch.Aux, ledger.Aux{Source: name, Key: auxSource, Value: res.Aux})
	}
	result, err := p.led.Append(ctx, batch)
	if err != nil {
		return sum, fmt.Errorf("source %s: append: %w", name, err)
	}
	if err := p.fold(ctx, result); err != nil {
		return sum, err
	}
	if p.OnCommit != nil {
		p.OnCommit(sum.Alerts)
	}
	return sum, nil
}

// Overdue appends the rollback.overdue findings whose deadline passed at
// now, without polling (the daemon's deadline timers call it, so the finding
// fires while the source is failing).
func (p *Poller) Overdue(ctx context.Context) (int, error) {
	if err := p.Init(ctx); err != nil {
		return 0, err
	}
	now := p.clk.Now()
	outs := policy.Overdue(p.state, now)
	if len(outs) == 0 {
		return 0, nil
	}
	var batch ledger.Batch
	for _, o := range outs {
		batch.Entries = append(batch.Entries, p.outputEntry(o, now, 0, 0))
	}
	result, err := p.led.Append(ctx, batch)
	if err != nil {
		return 0, fmt.Errorf("source %s: append overdue: %w", p.src.Name(), err)
	}
	if err := p.fold(ctx, result); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range result.Dropped {
		if !d {
			n++
		}
	}
	if p.OnCommit != nil && n > 0 {
		p.OnCommit(n)
	}
	return n, nil
}

// fold applies the entries a batch committed to the policy state, in seq order.
func (p *Poller) fold(ctx context.Context, result ledger.Result) error {
	for i, seq := range result.Seqs {
		if result.Dropped[i] {
			continue
		}
		r, err := p.led.Record(ctx, seq)
		if err != nil {
			p.ready = false // rebuild from the ledger on the next poll
			return fmt.Errorf("source %s: read back seq %d: %w", p.src.Name(), seq, err)
		}
		if r.Source == p.src.Name() {
			p.state.Apply(policyRecord(r))
		}
	}
	return nil
}

// resolveAttributions sets entry_seq on attribution changes: the latest
// entry of the attributed change kind of that version, recorded with actor
// unknown, whose time interval holds the actor fact's time. Attributions
// whose change cannot be found are dropped.
func (p *Poller) resolveAttributions(ctx context.Context, changes []watch.Change) ([]watch.Change, error) {
	out := changes[:0:0]
	for _, c := range changes {
		if c.Kind != watch.KindAttribution || c.Target == nil {
			out = append(out, c)
			continue
		}
		t := c.Target
		var seq int64 = -1
		err := p.led.Find(ctx, ledger.Query{Source: p.src.Name(), ModelID: t.ModelID, Version: t.Version, Kind: t.Kind, Desc: true}, func(r ledger.Record) error {
			if r.Actor != watch.Unknown || !matchesKey(r, t.Key) {
				return nil
			}
			if t.At.Before(r.OccurredFrom.Add(-time.Millisecond)) || t.At.After(r.OccurredTo.Add(time.Millisecond)) {
				return nil
			}
			seq = r.Seq
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, fmt.Errorf("source %s: find attributed change: %w", p.src.Name(), err)
		}
		if seq < 0 {
			p.log.Debug("attribution without a matching change", "model_id", t.ModelID, "version", t.Version, "kind", t.Kind)
			continue
		}
		c.Payload["entry_seq"] = seq
		out = append(out, c)
	}
	return out, nil
}

var errStop = errors.New("stop")

// matchesKey reports whether an entry matches an actor fact's key: the alias
// of an alias entry, the new value of a status, stage or lifecycle change.
func matchesKey(r ledger.Record, key string) bool {
	if key == "" {
		return true
	}
	for _, k := range []string{"alias", "to", "approval_status"} {
		if v, ok := r.Payload[k].(string); ok {
			return v == key
		}
	}
	return true
}

func (p *Poller) changeEntry(c watch.Change, observed time.Time) ledger.Entry {
	payload := c.Payload
	if c.Kind == watch.KindAttribution {
		payload = map[string]any{"entry_seq": ledger.Seq(c.Payload["entry_seq"].(int64)), "actor": c.Payload["actor"], "evidence": c.Payload["evidence"]}
	}
	return ledger.Entry{
		Kind: c.Kind, Source: p.src.Name(), SourceType: p.src.Type(),
		Model: c.Model, ModelID: c.ModelID, Version: c.Version, Actor: c.Actor,
		ObservedAt: observed, OccurredFrom: c.From, OccurredTo: c.To, Payload: payload,
	}
}

// outputEntry converts a policy output; base is the batch position of the
// first change and nChanges their number (outputs follow the changes).
func (p *Poller) outputEntry(o policy.Output, observed time.Time, base, nChanges int) ledger.Entry {
	conv := func(r policy.Ref) ledger.Ref {
		switch {
		case r.Change >= 0:
			return ledger.InBatch(base + r.Change)
		case r.Output >= 0:
			return ledger.InBatch(base + nChanges + r.Output)
		}
		return ledger.Seq(r.Seq)
	}
	return ledger.Entry{
		Kind: o.Kind, Source: p.src.Name(), SourceType: p.src.Type(),
		Model: o.Model, ModelID: o.ModelID, Version: o.Version, Actor: policy.Actor,
		ObservedAt: observed, OccurredFrom: o.From, OccurredTo: o.To,
		Payload: convertRefs(o.Payload, conv).(map[string]any), Alert: o.Alert,
	}
}

func convertRefs(v any, conv func(policy.Ref) ledger.Ref) any {
	switch x := v.(type) {
	case policy.Ref:
		return conv(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = convertRefs(val, conv)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = convertRefs(val, conv)
		}
		return out
	}
	return v
}

// policyRecord converts a committed ledger record for the policy fold.
func policyRecord(r ledger.Record) policy.Record {
	return policy.Record{
		Seq: r.Seq, Kind: r.Kind, Model: r.Model, ModelID: r.ModelID, Version: r.Version, Actor: r.Actor,
		ObservedAt: r.ObservedAt, From: r.OccurredFrom, To: r.OccurredTo, Payload: r.Payload,
	}
}

func inScope(globs []string, name string) bool { return config.Source{Models: globs}.Matches(name) }
