// Package watch turns two successive snapshots of one source into the ordered
// list of changes between them (DESIGN.md section 3). It is pure: no I/O, no
// clock; the caller passes the poll times.
package watch

import (
	"sort"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// Change kinds produced by Diff.
const (
	KindBaseline        = "baseline"
	KindModelCreated    = "model.created"
	KindModelUpdated    = "model.updated"
	KindModelDeleted    = "model.deleted"
	KindModelRenamed    = "model.renamed"
	KindVersionCreated  = "version.created"
	KindVersionUpdated  = "version.updated"
	KindVersionDeleted  = "version.deleted"
	KindStageChanged    = "stage.changed"
	KindAliasSet        = "alias.set"
	KindAliasRemoved    = "alias.removed"
	KindTagSet          = "tag.set"
	KindTagRemoved      = "tag.removed"
	KindApprovalChanged = "approval.changed"
	KindLifecycle       = "lifecycle.changed"
	KindRequestOpened   = "request.opened"
	KindRequestClosed   = "request.closed"
	KindAttribution     = "attribution"
)

// Unknown is the actor of a change when the registry cannot say who acted.
const Unknown = "unknown"

// Change is one change entry before the ledger encodes it.
type Change struct {
	Kind    string
	Model   string
	ModelID string
	Version string
	// Actor is the registry actor, or Unknown.
	Actor string
	// From and To bound when the change happened (equal when exact).
	From, To time.Time
	// Exact reports whether the registry placed the change exactly.
	Exact   bool
	Payload map[string]any
	// Target, on an attribution, names the change being attributed; the
	// caller resolves it to the entry's seq and sets payload entry_seq.
	Target *Target
}

// Target identifies an earlier change entry that an attribution refers to.
type Target struct {
	ModelID string
	Version string
	// Kind is the attributed change's kind.
	Kind string
	// Key narrows the match: the alias name, or the status changed to.
	Key string
	// At is the time the actor fact gives for the change.
	At time.Time
}

// Input is what one Diff call compares.
type Input struct {
	// SourceType is the source's type (sources.Type*).
	SourceType string
	// Prev is the last stored snapshot, nil at the source's first successful poll.
	Prev *sources.Snapshot
	// Next is the snapshot just taken.
	Next *sources.Snapshot
	// PrevPollStart is the start of the previous successful poll; PollEnd is
	// the end of this one. Changes the registry does not place exactly
	// occurred within [PrevPollStart, PollEnd].
	PrevPollStart time.Time
	PollEnd       time.Time
	// WasInScope reports whether a model name was in scope under the config
	// of the previous poll; nil means the scope did not change. A model that
	// enters scope through a config change gets baseline entries, not
	// model.created.
	WasInScope func(name string) bool
}

// Output is the result of Diff.
type Output struct {
	// Changes are in the deterministic order of Sort.
	Changes []Change
	// Snapshot is Next with model identities carried over from Prev (renamed
	// MLflow models keep the model_id of their first-seen name). It is what
	// the caller stores as the source's state.
	Snapshot *sources.Snapshot
}

// Diff compares in.Prev with in.Next.
func Diff(in Input) Output {
	next := in.Next
	d := differ{in: in}
	if in.Prev == nil {
		for i := range next.Models {
			d.baseline(&next.Models[i])
		}
		Sort(d.out)
		return Output{Changes: d.out, Snapshot: next}
	}
	pairs, gone, added := match(in.Prev, next)
	for _, p := range pairs {
		d.model(p.prev, p.next)
	}
	for _, m := range added {
		if in.WasInScope != nil && !in.WasInScope(m.Name) {
			d.baseline(m)
			continue
		}
		d.created(m)
	}
	for _, m := range gone {
		d.deleted(m)
	}
	Sort(d.out)
	return Output{Changes: d.out, Snapshot: next}
}

type pair struct{ prev, next *sources.Model }

// match pairs the models of prev and next: by model id, then by name and
// creation time (MLflow ids embed the first-seen name), then by the rename
// rule of DESIGN.md section 2 (a model that vanished and one that appeared
// with the same creation time and the same set of (version, creation time)).
// Matched next models take the prev model's id.
func match(prev, next *sources.Snapshot) (pairs []pair, gone, added []*sources.Model) {
	usedPrev := make([]bool, len(prev.Models))
	usedNext := make([]bool, len(next.Models))
	byID := make(map[string]int, len(prev.Models))
	type nameKey struct{ name, created string }
	byName := make(map[nameKey]int, len(prev.Models))
	for i, m := range prev.Models {
		byID[m.ID] = i
		byName[nameKey{m.Name, m.CreatedAt}] = i
	}
	link := func(pi, ni int) {
		usedPrev[pi], usedNext[ni] = true, true
		next.Models[ni].ID = prev.Models[pi].ID
		pairs = append(pairs, pair{&prev.Models[pi], &next.Models[ni]})
	}
	for ni, m := range next.Models {
		if pi, ok := byID[m.ID]; ok && !usedPrev[pi] {
			link(pi, ni)
		}
	}
	for ni, m := range next.Models {
		if usedNext[ni] {
			continue
		}
		if pi, ok := byName[nameKey{m.Name, m.CreatedAt}]; ok && !usedPrev[pi] && m.CreatedAt != "" {
			link(pi, ni)
		}
	}
	for ni := range next.Models {
		if usedNext[ni] || next.Models[ni].CreatedAt == "" {
			continue
		}
		for pi := range prev.Models {
			if !usedPrev[pi] && sameLineage(&prev.Models[pi], &next.Models[ni]) {
				link(pi, ni)
				break
			}
		}
	}
	for i := range prev.Models {
		if !usedPrev[i] {
			gone = append(gone, &prev.Models[i])
		}
	}
	for i := range next.Models {
		if !usedNext[i] {
			added = append(added, &next.Models[i])
		}
	}
	return pairs, gone, added
}

// sameLineage is the rename rule: same creation time and the same set of
// (version, creation time).
func sameLineage(a, b *sources.Model) bool {
	if a.CreatedAt != b.CreatedAt || len(a.Versions) != len(b.Versions) {
		return false
	}
	for i := range a.Versions { // both sorted by ordering key
		if a.Versions[i].ID != b.Versions[i].ID || a.Versions[i].CreatedAt != b.Versions[i].CreatedAt {
			return false
		}
	}
	return true
}

// Sort puts changes in the deterministic order: by model name (bytes), then
// model-level entries (version "") first, then versions by ordering key
// (numeric when the ids are numbers, W&B "v<N>" by N), then kind, then the
// payload's key, alias or id.
func Sort(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := &cs[i], &cs[j]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if a.Version != b.Version {
			return versionLess(a.Version, b.Version)
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return sortKey(a) < sortKey(b)
	})
}

func sortKey(c *Change) string {
	for _, k := range []string{"key", "alias", "id", "field"} {
		if s, ok := c.Payload[k].(string); ok {
			return s
		}
	}
	return ""
}

// versionLess orders version ids: "" first, then by their number (a "v"
// prefix is ignored), then as strings.
func versionLess(a, b string) bool {
	if a == "" || b == "" {
		return a == ""
	}
	na, oka := VersionOrder(a)
	nb, okb := VersionOrder(b)
	if oka && okb && na != nb {
		return na < nb
	}
	if oka != okb {
		return oka
	}
	return a < b
}

// VersionOrder returns the ordering key a version id encodes: the number of
// "3" (MLflow, SageMaker) or of "v3" (W&B), and false for any other id.
func VersionOrder(s string) (int64, bool) {
	if len(s) > 1 && s[0] == 'v' {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
