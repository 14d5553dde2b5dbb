package watch

import (
	"slices"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// RawApprovalDescription is the Version.Raw key whose value is the registry's
// approval description (SageMaker ApprovalDescription); it is the description
// of an approval.changed entry.
const RawApprovalDescription = "ApprovalDescription"

type differ struct {
	in  Input
	out []Change
	// used holds the evidence ids of actor facts given to a change of this poll.
	used map[string]bool
	// bufs are reused by model for its version lists.
	bufs [4][]*sources.Version
}

// interval is the poll interval [start of the previous successful poll, end
// of this poll].
func (d *differ) interval() (time.Time, time.Time) { return d.in.PrevPollStart, d.in.PollEnd }

// add appends a change placed exactly at the registry time at when it parses,
// otherwise within the poll interval.
func (d *differ) add(kind string, m *sources.Model, version string, payload map[string]any, at string) *Change {
	c := Change{Kind: kind, Model: m.Name, ModelID: m.ID, Version: version, Actor: Unknown, Payload: payload}
	if t, ok := sources.ParseTime(at); ok && at != "" {
		c.From, c.To, c.Exact = t, t, true
	} else {
		c.From, c.To = d.interval()
	}
	d.out = append(d.out, c)
	return &d.out[len(d.out)-1]
}

func (d *differ) baseline(m *sources.Model) {
	d.add(KindBaseline, m, "", modelState(m), d.in.PollEnd.Format(sources.TimeLayout))
	for i := range m.Versions {
		v := &m.Versions[i]
		d.add(KindBaseline, m, v.ID, versionState(v), d.in.PollEnd.Format(sources.TimeLayout))
	}
}

func (d *differ) created(m *sources.Model) {
	d.add(KindModelCreated, m, "", modelState(m), m.CreatedAt)
	for i := range m.Versions {
		d.versionCreated(m, &m.Versions[i], nil)
	}
}

func (d *differ) versionCreated(m *sources.Model, v *sources.Version, prevFacts []sources.Actor) {
	c := d.add(KindVersionCreated, m, v.ID, versionState(v), v.CreatedAt)
	if v.Creator != "" {
		c.Actor = v.Creator
	}
	d.attribute(c, v, prevFacts, "")
}

func (d *differ) deleted(m *sources.Model) {
	d.add(KindModelDeleted, m, "", modelState(m), "")
	for i := range m.Versions {
		d.add(KindVersionDeleted, m, m.Versions[i].ID, versionState(&m.Versions[i]), "")
	}
}

// model diffs a matched pair of models.
func (d *differ) model(prev, next *sources.Model) {
	renamed := prev.Name != next.Name
	if renamed {
		d.add(KindModelRenamed, next, "", map[string]any{"from": prev.Name, "to": next.Name}, "")
	}
	descChanged := !sameOpt(prev.Description, next.Description)
	d.tags(next, "", prev.Tags, next.Tags)

	// Versions are sorted by ordering key on both sides: walk them together.
	created, stayed, stayedPrev, deletedVersions := d.bufs[0][:0], d.bufs[1][:0], d.bufs[2][:0], d.bufs[3][:0]
	defer func() { d.bufs = [4][]*sources.Version{created, stayed, stayedPrev, deletedVersions} }()
	i, j := 0, 0
	for i < len(prev.Versions) || j < len(next.Versions) {
		switch {
		case j == len(next.Versions) || (i < len(prev.Versions) && prev.Versions[i].Order < next.Versions[j].Order):
			deletedVersions = append(deletedVersions, &prev.Versions[i])
			i++
		case i == len(prev.Versions) || next.Versions[j].Order < prev.Versions[i].Order:
			created = append(created, &next.Versions[j])
			j++
		default:
			stayedPrev = append(stayedPrev, &prev.Versions[i])
			stayed = append(stayed, &next.Versions[j])
			i++
			j++
		}
	}
	if hasAliases(prev) || hasAliases(next) {
		d.aliases(next, prev, created, stayed, stayedPrev)
	}
	modelBumps := len(created) + len(deletedVersions)
	for _, v := range created {
		d.versionCreated(next, v, nil)
	}
	for k, v := range stayed {
		if stayedPrev[k].Stage != v.Stage {
			modelBumps++
		}
		d.version(next, stayedPrev[k], v, renamed)
	}
	for _, pv := range deletedVersions {
		d.add(KindVersionDeleted, next, pv.ID, versionState(pv), "")
	}
	if descChanged {
		at := ""
		if modelBumps == 0 && !renamed && next.UpdatedAt != prev.UpdatedAt {
			at = next.UpdatedAt
		}
		d.add(KindModelUpdated, next, "", map[string]any{"field": "description", "from": deref(prev.Description), "to": deref(next.Description)}, at)
	}
	for k, v := range stayed {
		if len(v.Actors) > 0 {
			d.attributions(next, stayedPrev[k], v)
		}
	}
}

// version diffs a matched pair of versions. Stage and description changes
// are exact at the version's new last-updated time when they are its only
// timestamp-bumping change in the poll (and the model was not renamed, which
// bumps every version).
func (d *differ) version(m *sources.Model, prev, next *sources.Version, renamed bool) {
	type upd struct{ field, from, to string }
	var updates []upd
	if !sameOpt(prev.Description, next.Description) {
		updates = append(updates, upd{"description", deref(prev.Description), deref(next.Description)})
	}
	if prev.Source != next.Source {
		updates = append(updates, upd{"source", prev.Source, next.Source})
	}
	if prev.Status != next.Status {
		updates = append(updates, upd{"status", prev.Status, next.Status})
	}
	if prev.Digest != next.Digest {
		updates = append(updates, upd{"digest", prev.Digest, next.Digest})
	}
	stageChanged := prev.Stage != next.Stage
	bumps := len(updates)
	if stageChanged {
		bumps++
	}
	exactAt := ""
	if bumps == 1 && !renamed && next.UpdatedAt != prev.UpdatedAt {
		exactAt = next.UpdatedAt
	}
	if stageChanged {
		c := d.add(KindStageChanged, m, next.ID, map[string]any{"from": prev.Stage, "to": next.Stage}, exactAt)
		d.attribute(c, next, prev.Actors, next.Stage)
	}
	for _, u := range updates {
		d.add(KindVersionUpdated, m, next.ID, map[string]any{"field": u.field, "from": u.from, "to": u.to}, exactAt)
	}
	if prev.ApprovalStatus != next.ApprovalStatus {
		c := d.add(KindApprovalChanged, m, next.ID, map[string]any{
			"from": prev.ApprovalStatus, "to": next.ApprovalStatus, "description": rawValue(next.Raw, RawApprovalDescription),
		}, "")
		d.attribute(c, next, prev.Actors, next.ApprovalStatus)
	}
	if prev.LifecycleStage != next.LifecycleStage {
		c := d.add(KindLifecycle, m, next.ID, map[string]any{"from": prev.LifecycleStage, "to": next.LifecycleStage}, "")
		d.attribute(c, next, prev.Actors, next.LifecycleStage)
	}
	d.tags(m, next.ID, prev.Tags, next.Tags)
	d.requests(m, next.ID, prev.Requests, next.Requests)
}

// tags appends tag.set and tag.removed for one model ("" version) or version.
func (d *differ) tags(m *sources.Model, version string, prev, next []sources.KV) {
	if slices.Equal(prev, next) {
		return
	}
	old := make(map[string]string, len(prev))
	for _, t := range prev {
		old[t.Key] = t.Value
	}
	seen := make(map[string]bool, len(next))
	for _, t := range next {
		seen[t.Key] = true
		was, ok := old[t.Key]
		if ok && was == t.Value {
			continue
		}
		d.add(KindTagSet, m, version, map[string]any{"key": t.Key, "value": t.Value, "previous": was}, "")
	}
	for _, t := range prev {
		if !seen[t.Key] {
			d.add(KindTagRemoved, m, version, map[string]any{"key": t.Key, "previous": t.Value}, "")
		}
	}
}

// aliases compares alias -> version maps of a model. An alias that appears
// on a version created in this poll is part of that version.created entry,
// unless it moved there from another version (then it is an alias.set with
// the previous version, so every move is on record). stayed and stayedPrev
// are the versions present in both snapshots, pairwise.
func (d *differ) aliases(m, prev *sources.Model, created, stayed, stayedPrev []*sources.Version) {
	old := aliasMap(prev)
	cur := aliasMap(m)
	set := func(v *sources.Version, prevV *sources.Version, isNew bool) {
		for _, a := range v.Aliases {
			was, existed := old[a]
			if existed && was == v.ID || isNew && !existed {
				continue
			}
			c := d.add(KindAliasSet, m, v.ID, map[string]any{"alias": a, "previous_version": was}, "")
			d.attribute(c, v, prevActors(prevV), a)
		}
	}
	for _, v := range created {
		set(v, nil, true)
	}
	for k, v := range stayed {
		set(v, stayedPrev[k], false)
	}
	next := make(map[string]*sources.Version, len(stayed))
	for _, v := range stayed {
		next[v.ID] = v
	}
	for _, v := range prev.Versions {
		for _, a := range v.Aliases {
			if _, ok := cur[a]; ok {
				continue
			}
			c := d.add(KindAliasRemoved, m, v.ID, map[string]any{"alias": a, "version": v.ID}, "")
			if nv, ok := next[v.ID]; ok {
				d.attribute(c, nv, v.Actors, a)
			}
		}
	}
}

func hasAliases(m *sources.Model) bool {
	for i := range m.Versions {
		if len(m.Versions[i].Aliases) > 0 {
			return true
		}
	}
	return false
}

func prevActors(v *sources.Version) []sources.Actor {
	if v == nil {
		return nil
	}
	return v.Actors
}

func aliasMap(m *sources.Model) map[string]string {
	out := make(map[string]string)
	for _, v := range m.Versions {
		for _, a := range v.Aliases {
			out[a] = v.ID
		}
	}
	return out
}

// requests appends request.opened / request.closed for open approval requests.
func (d *differ) requests(m *sources.Model, version string, prev, next []sources.Request) {
	old := make(map[string]bool, len(prev))
	for _, r := range prev {
		old[r.ID] = true
	}
	cur := make(map[string]bool, len(next))
	for _, r := range next {
		cur[r.ID] = true
		if !old[r.ID] {
			c := d.add(KindRequestOpened, m, version, requestPayload(r), r.CreatedAt)
			if r.Requester != "" {
				c.Actor = r.Requester
			}
		}
	}
	for _, r := range prev {
		if !cur[r.ID] {
			d.add(KindRequestClosed, m, version, requestPayload(r), "")
		}
	}
}

func requestPayload(r sources.Request) map[string]any {
	return map[string]any{"id": r.ID, "requester": r.Requester, "to_stage": r.ToStage}
}

// attribute gives change c the actor and exact time of a matching actor fact
// of v: same change kind and key, new since prev (by evidence) or dated
// within the change's interval. The latest such fact wins.
func (d *differ) attribute(c *Change, v *sources.Version, prev []sources.Actor, key string) {
	if v == nil {
		return
	}
	var best *sources.Actor
	var bestAt time.Time
	for i := range v.Actors {
		f := &v.Actors[i]
		if f.Change != c.Kind || (f.Key != "" && key != "" && f.Key != key) {
			continue
		}
		at, ok := sources.ParseTime(f.At)
		if !ok {
			continue
		}
		if hasEvidence(prev, f.Evidence) && (at.Before(c.From) || at.After(c.To)) {
			continue
		}
		if best == nil || at.After(bestAt) {
			best, bestAt = f, at
		}
	}
	if best == nil {
		return
	}
	if best.Actor != "" {
		c.Actor = best.Actor // may itself be "unknown": a shared session names nobody
	}
	c.From, c.To, c.Exact = bestAt, bestAt, true
	c.Payload["evidence"] = best.Evidence
	if best.Raw != "" {
		c.Payload["action"] = best.Raw
	}
	if d.used == nil {
		d.used = make(map[string]bool)
	}
	d.used[best.Evidence] = true
}

// attributions appends an attribution for every actor fact that is new in
// this poll, names a known actor, and was not used by a change of this poll:
// the actor of a change recorded earlier with actor unknown.
func (d *differ) attributions(m *sources.Model, prev, next *sources.Version) {
	for _, f := range next.Actors {
		if d.used[f.Evidence] || hasEvidence(prev.Actors, f.Evidence) || f.Actor == "" || f.Actor == Unknown {
			continue // an unknown actor attributes nothing
		}
		at, ok := sources.ParseTime(f.At)
		if !ok {
			continue
		}
		c := d.add(KindAttribution, m, next.ID, map[string]any{"actor": f.Actor, "evidence": f.Evidence}, f.At)
		c.Actor = f.Actor
		c.Target = &Target{ModelID: m.ID, Version: next.ID, Kind: f.Change, Key: f.Key, At: at}
	}
}

func hasEvidence(facts []sources.Actor, id string) bool {
	for _, f := range facts {
		if f.Evidence == id {
			return true
		}
	}
	return false
}

// modelState is the payload of model.created, model.deleted and a model's
// baseline: the name, and the description and tags when the registry gives them.
func modelState(m *sources.Model) map[string]any {
	p := map[string]any{"name": m.Name}
	if m.Description != nil {
		p["description"] = *m.Description
	}
	if len(m.Tags) > 0 {
		p["tags"] = KVs(m.Tags)
	}
	return p
}

// versionState is the full state of a version: the payload of version.created,
// version.deleted and a version's baseline. Fields the registry does not give
// are omitted; tags and aliases are always present.
func versionState(v *sources.Version) map[string]any {
	p := map[string]any{"tags": KVs(v.Tags), "aliases": append([]string{}, v.Aliases...)}
	set := func(k, s string) {
		if s != "" {
			p[k] = s
		}
	}
	set("stage", v.Stage)
	if v.Description != nil {
		p["description"] = *v.Description
	}
	set("source", v.Source)
	if v.RunID != nil {
		p["run_id"] = *v.RunID
	}
	set("status", v.Status)
	set("created", v.CreatedAt)
	set("approval_status", v.ApprovalStatus)
	set("lifecycle_stage", v.LifecycleStage)
	set("creator", v.Creator)
	set("digest", v.Digest)
	if len(v.Metadata) > 0 {
		p["metadata"] = KVs(v.Metadata)
	}
	if len(v.Requests) > 0 {
		rs := make([]any, len(v.Requests))
		for i, r := range v.Requests {
			rs[i] = requestPayload(r)
		}
		p["requests"] = rs
	}
	return p
}

// KVs turns registry key/value pairs into the payload form: an array of
// {key, value} objects in the given (sorted) order.
func KVs(kv []sources.KV) []any {
	out := make([]any, len(kv))
	for i, t := range kv {
		out[i] = map[string]any{"key": t.Key, "value": t.Value}
	}
	return out
}

func rawValue(raw []sources.KV, key string) string {
	for _, kv := range raw {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

func sameOpt(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
