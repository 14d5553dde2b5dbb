package watch

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/registrywatch/registrywatch/internal/sources"
)

var (
	t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func snap(models ...sources.Model) *sources.Snapshot {
	s := &sources.Snapshot{Models: models}
	s.Sort()
	return s
}

func ver(id, stage string, aliases ...string) sources.Version {
	n, _ := VersionOrder(id)
	return sources.Version{ID: id, Order: n, Stage: stage, Aliases: aliases, CreatedAt: "2026-01-01T09:00:00.000Z", UpdatedAt: "2026-01-01T09:00:00.000Z"}
}

func model(name string, vs ...sources.Version) sources.Model {
	return sources.Model{Name: name, ID: name + "@2026-01-01T08:00:00.000Z", CreatedAt: "2026-01-01T08:00:00.000Z", Versions: vs}
}

type brief struct {
	Kind, Model, Version string
	Payload              map[string]any
}

func briefs(cs []Change) []brief {
	out := make([]brief, len(cs))
	for i, c := range cs {
		out[i] = brief{c.Kind, c.Model, c.Version, c.Payload}
	}
	return out
}

func diff(prev, next *sources.Snapshot) Output {
	return Diff(Input{SourceType: sources.TypeMLflow, Prev: prev, Next: next, PrevPollStart: t0, PollEnd: t1})
}

func TestBaselineOnlyAtFirstPoll(t *testing.T) {
	next := snap(model("m", ver("1", "Production")))
	out := diff(nil, next)
	want := []brief{
		{KindBaseline, "m", "", map[string]any{"name": "m"}},
		{KindBaseline, "m", "1", map[string]any{"stage": "Production", "tags": []any{}, "aliases": []string{}, "created": "2026-01-01T09:00:00.000Z"}},
	}
	if d := cmp.Diff(want, briefs(out.Changes)); d != "" {
		t.Fatalf("baseline (-want +got):\n%s", d)
	}
	if got := diff(next, snap(model("m", ver("1", "Production")))).Changes; len(got) != 0 {
		t.Fatalf("unchanged registry gave %v", briefs(got))
	}
}

func TestStageAliasTagChanges(t *testing.T) {
	v1 := ver("1", "Staging", "challenger")
	v1.Tags = []sources.KV{{Key: "a", Value: "1"}, {Key: "gone", Value: "x"}}
	prev := snap(model("m", v1, ver("2", "None", "champion")))
	n1 := ver("1", "Production", "champion")
	n1.UpdatedAt = "2026-01-01T10:00:30.000Z"
	n1.Tags = []sources.KV{{Key: "a", Value: "2"}, {Key: "new", Value: "y"}}
	next := snap(model("m", n1, ver("2", "None")))
	out := diff(prev, next)
	want := []brief{
		{KindAliasRemoved, "m", "1", map[string]any{"alias": "challenger", "version": "1"}},
		{KindAliasSet, "m", "1", map[string]any{"alias": "champion", "previous_version": "2"}},
		{KindStageChanged, "m", "1", map[string]any{"from": "Staging", "to": "Production"}},
		{KindTagRemoved, "m", "1", map[string]any{"key": "gone", "previous": "x"}},
		{KindTagSet, "m", "1", map[string]any{"key": "a", "value": "2", "previous": "1"}},
		{KindTagSet, "m", "1", map[string]any{"key": "new", "value": "y", "previous": ""}},
	}
	if d := cmp.Diff(want, briefs(out.Changes)); d != "" {
		t.Fatalf("changes (-want +got):\n%s", d)
	}
	for _, c := range out.Changes {
		exact := c.Kind == KindStageChanged
		if c.Exact != exact {
			t.Errorf("%s exact = %v", c.Kind, c.Exact)
		}
		if exact && !c.From.Equal(time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)) {
			t.Errorf("stage change at %v", c.From)
		}
		if !exact && (!c.From.Equal(t0) || !c.To.Equal(t1)) {
			t.Errorf("%s interval %v..%v", c.Kind, c.From, c.To)
		}
	}
}

func TestStageAndDescriptionInOnePollAreIntervals(t *testing.T) {
	prev := snap(model("m", ver("1", "Staging")))
	n := ver("1", "Production")
	n.Description = sources.Str("new")
	n.UpdatedAt = "2026-01-01T10:00:30.000Z"
	out := diff(prev, snap(model("m", n)))
	if len(out.Changes) != 2 {
		t.Fatalf("changes: %v", briefs(out.Changes))
	}
	for _, c := range out.Changes {
		if c.Exact {
			t.Errorf("%s is exact although two timestamp-bumping changes happened", c.Kind)
		}
	}
}

func TestRenameKeepsModelID(t *testing.T) {
	prev := snap(model("old", ver("1", "Production")))
	renamed := model("new", ver("1", "Production"))
	renamed.ID = "new@2026-01-01T08:00:00.000Z"
	out := diff(prev, snap(renamed))
	want := []brief{{KindModelRenamed, "new", "", map[string]any{"from": "old", "to": "new"}}}
	if d := cmp.Diff(want, briefs(out.Changes)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if out.Changes[0].ModelID != "old@2026-01-01T08:00:00.000Z" || out.Snapshot.Models[0].ID != "old@2026-01-01T08:00:00.000Z" {
		t.Fatalf("model id not kept: %q / %q", out.Changes[0].ModelID, out.Snapshot.Models[0].ID)
	}
	// Renaming back matches by the kept id.
	back := model("old", ver("1", "Production"))
	out2 := diff(out.Snapshot, snap(back))
	if len(out2.Changes) != 1 || out2.Changes[0].Kind != KindModelRenamed || out2.Changes[0].ModelID != "old@2026-01-01T08:00:00.000Z" {
		t.Fatalf("rename back: %v", briefs(out2.Changes))
	}
}

func TestRenameNeedsSameVersions(t *testing.T) {
	prev := snap(model("old", ver("1", "None"), ver("2", "None")))
	out := diff(prev, snap(model("new", ver("1", "None"))))
	kinds := map[string]int{}
	for _, c := range out.Changes {
		kinds[c.Kind]++
	}
	if kinds[KindModelRenamed] != 0 || kinds[KindModelDeleted] != 1 || kinds[KindModelCreated] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
}

func TestCreatedAndDeletedVersions(t *testing.T) {
	prev := snap(model("m", ver("1", "None", "champion")))
	next := snap(model("m", ver("2", "None", "champion", "fresh")))
	out := diff(prev, next)
	got := briefs(out.Changes)
	if len(got) != 3 {
		t.Fatalf("changes: %v", got)
	}
	// The moved alias is recorded as a set with its previous version; the new
	// alias is part of version.created.
	if got[0].Kind != KindVersionDeleted || got[1].Kind != KindAliasSet || got[2].Kind != KindVersionCreated {
		t.Fatalf("order: %v", got)
	}
	if got[1].Payload["previous_version"] != "1" {
		t.Fatalf("alias move: %v", got[1].Payload)
	}
	if !out.Changes[2].Exact {
		t.Fatal("version.created is not exact at its creation time")
	}
}

func TestScopeEntryGivesBaseline(t *testing.T) {
	prev := snap(model("a"))
	next := snap(model("a"), model("b", ver("1", "None")))
	out := Diff(Input{Prev: prev, Next: next, PrevPollStart: t0, PollEnd: t1, WasInScope: func(n string) bool { return n == "a" }})
	for _, c := range out.Changes {
		if c.Kind != KindBaseline {
			t.Fatalf("model entering scope gave %s", c.Kind)
		}
	}
	if len(out.Changes) != 2 {
		t.Fatalf("changes %v", briefs(out.Changes))
	}
}

func TestActorFactsAndAttribution(t *testing.T) {
	prev := snap(model("g", sources.Version{ID: "1", Order: 1, ApprovalStatus: "PendingManualApproval", Aliases: []string{}}))
	approved := sources.Version{ID: "1", Order: 1, ApprovalStatus: "Approved", Aliases: []string{}}
	out := diff(prev, snap(model("g", approved)))
	if len(out.Changes) != 1 || out.Changes[0].Actor != Unknown || out.Changes[0].Exact {
		t.Fatalf("approval without a fact: %+v", out.Changes)
	}
	withFact := approved
	withFact.Actors = []sources.Actor{{Change: KindApprovalChanged, Key: "Approved", Actor: "bob", At: "2026-01-01T10:00:10.000Z", Evidence: "ev-1"}}
	out2 := diff(out.Snapshot, snap(model("g", withFact)))
	if len(out2.Changes) != 1 || out2.Changes[0].Kind != KindAttribution {
		t.Fatalf("late fact: %v", briefs(out2.Changes))
	}
	c := out2.Changes[0]
	if c.Actor != "bob" || c.Target == nil || c.Target.Kind != KindApprovalChanged || c.Target.Key != "Approved" {
		t.Fatalf("attribution: %+v", c)
	}
	// A fact already known produces nothing more.
	if again := diff(snap(model("g", withFact)), snap(model("g", withFact))).Changes; len(again) != 0 {
		t.Fatalf("repeated fact: %v", briefs(again))
	}
	// A fact that arrives with the change is used directly.
	out3 := diff(prev, snap(model("g", withFact)))
	if len(out3.Changes) != 1 || out3.Changes[0].Actor != "bob" || !out3.Changes[0].Exact {
		t.Fatalf("fact with change: %+v", out3.Changes)
	}
}

func TestRequests(t *testing.T) {
	v := ver("2", "Staging")
	v.Requests = []sources.Request{{ID: "r1", Requester: "carol", ToStage: "Production", CreatedAt: "2026-01-01T10:00:05.000Z"}}
	prev := snap(model("m", ver("2", "Staging")))
	out := diff(prev, snap(model("m", v)))
	if len(out.Changes) != 1 || out.Changes[0].Kind != KindRequestOpened || out.Changes[0].Actor != "carol" || !out.Changes[0].Exact {
		t.Fatalf("opened: %+v", out.Changes)
	}
	closed := diff(snap(model("m", v)), prev)
	if len(closed.Changes) != 1 || closed.Changes[0].Kind != KindRequestClosed {
		t.Fatalf("closed: %+v", closed.Changes)
	}
}

func TestSortOrder(t *testing.T) {
	cs := []Change{
		{Kind: KindTagSet, Model: "b", Version: "1"},
		{Kind: KindStageChanged, Model: "a", Version: "10"},
		{Kind: KindAliasSet, Model: "a", Version: "9"},
		{Kind: KindModelUpdated, Model: "a"},
		{Kind: KindAliasSet, Model: "a", Version: "10"},
	}
	Sort(cs)
	var got []string
	for _, c := range cs {
		got = append(got, c.Model+"/"+c.Version+"/"+c.Kind)
	}
	want := []string{"a//model.updated", "a/9/alias.set", "a/10/alias.set", "a/10/stage.changed", "b/1/tag.set"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func BenchmarkDiff100k(b *testing.B) {
	build := func(stage string) *sources.Snapshot {
		s := &sources.Snapshot{}
		for m := 0; m < 10000; m++ {
			mod := sources.Model{Name: "model-" + sources.Itoa(int64(m)), CreatedAt: "2026-01-01T08:00:00.000Z"}
			mod.ID = mod.Name + "@x"
			for v := 1; v <= 10; v++ {
				st := "None"
				if v == 10 {
					st = stage
				}
				mod.Versions = append(mod.Versions, sources.Version{
					ID: sources.Itoa(int64(v)), Order: int64(v), Stage: st, Aliases: []string{},
					Tags: []sources.KV{{Key: "git_sha", Value: "abc"}}, CreatedAt: "2026-01-01T09:00:00.000Z",
				})
			}
			s.Models = append(s.Models, mod)
		}
		return s
	}
	prev := build("Staging")
	next := build("Staging")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out := Diff(Input{Prev: prev, Next: next, PrevPollStart: t0, PollEnd: t1})
		if len(out.Changes) != 0 {
			b.Fatal("unexpected changes")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/diff")
}
