package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/watch"
)

// harness plays snapshots through watch.Diff and Evaluate and commits the
// results as a ledger would (seqs, references, finding_id de-duplication),
// folding them into the State. It lets policy tests run without SQLite.
type harness struct {
	t         *testing.T
	cfg       *Config
	st        *State
	prev      *sources.Snapshot
	now       time.Time
	prevStart time.Time
	records   []Record
	findings  map[string]int64
}

var h0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// pollGap separates polls: registry changes made between two polls happen
// at the end of the previous poll plus pollGap/2 (registry.at).
const pollGap = 10 * time.Second

func newHarness(t *testing.T, cfg *Config) *harness {
	if cfg.Source == "" {
		cfg.Source = "src"
	}
	return &harness{t: t, cfg: cfg, st: NewState(cfg), now: h0, findings: map[string]int64{}}
}

// poll runs one poll that takes d and sees next; it returns the entries the
// poll committed.
func (h *harness) poll(d time.Duration, next *sources.Snapshot) []Record {
	h.t.Helper()
	start := h.now.Add(pollGap)
	h.now = start
	h.now = h.now.Add(d)
	next.Sort()
	prevStart := h.prevStart
	if prevStart.IsZero() {
		prevStart = start
	}
	out := watch.Diff(watch.Input{Prev: h.prev, Next: next, PrevPollStart: prevStart, PollEnd: h.now})
	var changes []watch.Change
	for _, c := range out.Changes {
		if c.Kind == watch.KindAttribution {
			seq := h.find(c.Target)
			if seq < 0 {
				continue
			}
			c.Payload["entry_seq"] = seq
		}
		changes = append(changes, c)
	}
	outs := Evaluate(h.st, Poll{Prev: h.prev, Next: out.Snapshot, Changes: changes, PrevPollStart: prevStart, PollEnd: h.now})
	h.prev, h.prevStart = out.Snapshot, start
	return h.commit(changes, outs)
}

// tick runs the deadline path (no poll) at now+d.
func (h *harness) tick(d time.Duration) []Record {
	h.now = h.now.Add(d)
	return h.commit(nil, Overdue(h.st, h.now))
}

func (h *harness) find(t *watch.Target) int64 {
	for i := len(h.records) - 1; i >= 0; i-- {
		r := h.records[i]
		if r.ModelID == t.ModelID && r.Version == t.Version && r.Kind == t.Kind && r.Actor == watch.Unknown &&
			!t.At.Before(r.From) && !t.At.After(r.To) {
			return r.Seq
		}
	}
	return -1
}

func (h *harness) commit(changes []watch.Change, outs []Output) []Record {
	h.t.Helper()
	base := int64(len(h.records))
	seqs := make([]int64, len(changes)+len(outs))
	var batch []Record
	next := base
	for i, c := range changes {
		seqs[i] = next
		batch = append(batch, Record{Seq: next, Kind: c.Kind, Model: c.Model, ModelID: c.ModelID, Version: c.Version, Actor: c.Actor, ObservedAt: h.now, From: c.From, To: c.To, Payload: c.Payload})
		next++
	}
	resolve := func(r Ref) int64 {
		switch {
		case r.Change >= 0:
			return seqs[r.Change]
		case r.Output >= 0:
			return seqs[len(changes)+r.Output]
		}
		return r.Seq
	}
	for j, o := range outs {
		p := resolveRefs(o.Payload, resolve).(map[string]any)
		if o.Kind != KindProductionChanged {
			key := fmt.Sprint(h.cfg.Source, o.ModelID, o.Kind, o.Version, p["triggering_seq"])
			sum := sha256.Sum256([]byte(key))
			id := hex.EncodeToString(sum[:])
			if old, dup := h.findings[id]; dup {
				seqs[len(changes)+j] = old
				continue
			}
			h.findings[id] = next
			p["finding_id"] = id
			p["alert"] = o.Alert
		}
		seqs[len(changes)+j] = next
		batch = append(batch, Record{Seq: next, Kind: o.Kind, Model: o.Model, ModelID: o.ModelID, Version: o.Version, Actor: Actor, ObservedAt: h.now, From: o.From, To: o.To, Payload: p})
		next++
	}
	for _, r := range batch {
		h.st.Apply(r)
	}
	h.records = append(h.records, batch...)
	return batch
}

func resolveRefs(v any, f func(Ref) int64) any {
	switch x := v.(type) {
	case Ref:
		return f(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = resolveRefs(val, f)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = resolveRefs(val, f)
		}
		return out
	}
	return v
}

// findings returns the records of a poll that are findings (not changes,
// not production.changed).
func findingsOf(rs []Record) []Record {
	var out []Record
	for _, r := range rs {
		switch r.Kind {
		case KindPromotion, KindRollback, KindRestored, KindRollbackOverdue:
			out = append(out, r)
		}
	}
	return out
}

func kindsOf(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Kind)
	}
	return out
}

// one asserts exactly one finding and returns it.
func one(t *testing.T, rs []Record) Record {
	t.Helper()
	fs := findingsOf(rs)
	if len(fs) != 1 {
		t.Fatalf("want one finding, got %d: %v", len(fs), kindsOf(rs))
	}
	return fs[0]
}

func none(t *testing.T, rs []Record) {
	t.Helper()
	if fs := findingsOf(rs); len(fs) != 0 {
		var desc []string
		for _, f := range fs {
			desc = append(desc, fmt.Sprintf("%s v%s %v/%v", f.Kind, f.Version, f.Payload["verdict"], f.Payload["reason"]))
		}
		t.Fatalf("want no finding, got %v", desc)
	}
}

func expect(t *testing.T, r Record, kv ...any) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if got := fmt.Sprint(r.Payload[k]); got != fmt.Sprint(kv[i+1]) {
			t.Errorf("%s v%s: %s = %q, want %q", r.Kind, r.Version, k, got, fmt.Sprint(kv[i+1]))
		}
	}
}

// registry is a tiny in-memory model registry for building snapshots.
type registry struct {
	models map[string]*sources.Model
	// at returns the registry's clock: the time of a change made now.
	at func() time.Time
}

func newRegistry() *registry {
	return &registry{models: map[string]*sources.Model{}, at: func() time.Time { return h0 }}
}

// on binds the registry clock to a harness: changes happen between polls.
func (r *registry) on(h *harness) *registry {
	r.at = func() time.Time { return h.now.Add(pollGap / 2) }
	return r
}

func (r *registry) model(name string) *sources.Model {
	m := r.models[name]
	if m == nil {
		m = &sources.Model{Name: name, ID: name + "@id", CreatedAt: "2026-03-01T00:00:00.000Z"}
		r.models[name] = m
	}
	return m
}

func (r *registry) version(name, id string) *sources.Version {
	m := r.model(name)
	for i := range m.Versions {
		if m.Versions[i].ID == id {
			return &m.Versions[i]
		}
	}
	n, _ := watch.VersionOrder(id)
	m.Versions = append(m.Versions, sources.Version{ID: id, Order: n, Stage: "None", Aliases: []string{}, CreatedAt: "2026-03-01T00:00:00.000Z"})
	sources.SortKV(nil)
	m.Versions = sortedVersions(m.Versions)
	for i := range m.Versions {
		if m.Versions[i].ID == id {
			return &m.Versions[i]
		}
	}
	return nil
}

func sortedVersions(vs []sources.Version) []sources.Version {
	s := &sources.Snapshot{Models: []sources.Model{{Versions: vs}}}
	s.Sort()
	return s.Models[0].Versions
}

// stage moves a version to a stage, bumping its last-updated time as MLflow does.
func (r *registry) stage(name, id, stage string) {
	v := r.version(name, id)
	v.Stage = stage
	v.UpdatedAt = sources.FormatTime(r.at())
}

func (r *registry) tag(name, id, key, value string) {
	v := r.version(name, id)
	for i := range v.Tags {
		if v.Tags[i].Key == key {
			v.Tags[i].Value = value
			return
		}
	}
	v.Tags = append(v.Tags, sources.KV{Key: key, Value: value})
}

func (r *registry) remove(name string) { delete(r.models, name) }

// snapshot returns a deep copy of the registry as a snapshot.
func (r *registry) snapshot() *sources.Snapshot {
	s := &sources.Snapshot{}
	for _, m := range r.models {
		c := *m
		c.Versions = nil
		for _, v := range m.Versions {
			v.Tags = append([]sources.KV(nil), v.Tags...)
			v.Aliases = append([]string{}, v.Aliases...)
			v.Actors = append([]sources.Actor(nil), v.Actors...)
			c.Versions = append(c.Versions, v)
		}
		s.Models = append(s.Models, c)
	}
	s.Sort()
	return s
}
