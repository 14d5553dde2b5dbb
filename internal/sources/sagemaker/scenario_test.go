package sagemaker

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/sources"
	fk "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
)

// versionView is what the scenario checks of each version.
type versionView struct {
	Approval        string
	Lifecycle       string
	Creator         string
	CreatedApproved bool
	Actors          []sources.Actor
}

// view maps "group/version" to its view.
func view(s *sources.Snapshot) map[string]versionView {
	out := map[string]versionView{}
	for _, m := range s.Models {
		for _, v := range m.Versions {
			out[m.Name+"/"+v.ID] = versionView{
				Approval:        v.ApprovalStatus,
				Lifecycle:       v.LifecycleStage,
				Creator:         v.Creator,
				CreatedApproved: rawValue(v.Raw, RawCreatedApproved) == "true",
				Actors:          v.Actors,
			}
		}
	}
	return out
}

// Callers of the scenario.
var (
	pipeline = fk.AssumedRole("mlops-pipeline-exec", fk.SharedSession)
	bob      = fk.AssumedRole("MLReviewer", "bob@example.com").WithSourceIdentity("bob@example.com")
	carol    = fk.IAMUser("carol")
	dave     = fk.StudioUser("dave", "AmazonSageMaker-ExecutionRole-Shared")
	erin     = fk.StudioUser("erin", "AmazonSageMaker-ExecutionRole-Shared")
)

const carolKey = "arn:aws:iam::111122223333:user/carol"

// TestScenario plays a registry story on the fake and checks, poll by poll,
// the versions and the actor facts the source reports.
func TestScenario(t *testing.T) {
	e := newEnv(t, nil)
	f := e.fake
	at := func(min, sec int) time.Time {
		return epoch0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
	}
	fact := func(change, key, actor string, when time.Time, evidence string, raw string) sources.Actor {
		return sources.Actor{Change: change, Key: key, Actor: actor, At: sources.FormatTime(when), Evidence: evidence, Raw: raw}
	}
	created := func(key, actor string, when time.Time, ev string) sources.Actor {
		return fact(ChangeVersionCreated, key, actor, when, ev, EventCreateModelPackage)
	}
	approval := func(key, actor string, when time.Time, ev string) sources.Actor {
		return fact(ChangeApprovalChanged, key, actor, when, ev, EventUpdateModelPackage)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustARN := func(arn string, err error) string {
		t.Helper()
		must(err)
		return arn
	}
	describes := 0
	pollAt := func(min int) map[string]versionView {
		t.Helper()
		e.clk.Set(at(min, 30))
		before := f.Requests()["DescribeModelPackage"]
		res := e.mustPoll()
		describes = f.Requests()["DescribeModelPackage"] - before
		return view(res.Snapshot)
	}
	check := func(poll int, got, want map[string]versionView, wantDescribes int) {
		t.Helper()
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("poll %d (-want +got):\n%s", poll, d)
		}
		if describes != wantDescribes {
			t.Errorf("poll %d: %d DescribeModelPackage requests, want %d", poll, describes, wantDescribes)
		}
	}

	mustARN(f.CreateGroup("fraud-detector", "card fraud"))
	mustARN(f.CreateGroup("churn-model", ""))

	// Poll 0: fraud/1 created pending by the pipeline; churn/1 created
	// already Approved by carol.
	e.clk.Set(at(0, 10))
	fraud1 := mustARN(f.CreatePackage("fraud-detector", fk.PendingManualApproval, pipeline))
	evFraud1 := f.LastEventID()
	mustARN(f.CreatePackage("churn-model", fk.Approved, carol))
	evChurn1 := f.LastEventID()
	want := map[string]versionView{
		"fraud-detector/1": {Approval: "PendingManualApproval", Creator: Unknown,
			Actors: []sources.Actor{created("PendingManualApproval", Unknown, at(0, 10), evFraud1)}},
		"churn-model/1": {Approval: "Approved", Creator: carolKey, CreatedApproved: true,
			Actors: []sources.Actor{created("Approved", carolKey, at(0, 10), evChurn1)}},
	}
	check(0, pollAt(0), want, 2)

	// Poll 1: bob approves fraud/1; CloudTrail delivers his event only
	// after two more polls, so the version is Approved without an approver.
	e.clk.Set(at(1, 10))
	f.SetCloudTrailDelay(2 * time.Minute)
	must(f.UpdateApproval(fraud1, fk.Approved, "reviewed", bob))
	evBob := f.LastEventID()
	f.SetCloudTrailDelay(0)
	v := want["fraud-detector/1"]
	v.Approval = "Approved"
	want["fraud-detector/1"] = v
	check(1, pollAt(1), want, 1)

	// Poll 2: carol creates fraud/2 and approves it herself.
	e.clk.Set(at(2, 10))
	fraud2 := mustARN(f.CreatePackage("fraud-detector", fk.PendingManualApproval, carol))
	evFraud2 := f.LastEventID()
	e.clk.Set(at(2, 20))
	must(f.UpdateApproval(fraud2, fk.Approved, "", carol))
	evFraud2Approve := f.LastEventID()
	want["fraud-detector/2"] = versionView{Approval: "Approved", Creator: carolKey, Actors: []sources.Actor{
		created("PendingManualApproval", carolKey, at(2, 10), evFraud2),
		approval("Approved", carolKey, at(2, 20), evFraud2Approve),
	}}
	got := pollAt(2)
	check(2, got, want, 1)
	if c, a := got["fraud-detector/2"].Creator, got["fraud-detector/2"].Actors[1].Actor; c != a {
		t.Errorf("self-approval: creator %q, approver %q; want equal", c, a)
	}

	// Poll 3: bob's event arrives (fraud/1 gains its approver); Studio users
	// dave and erin, behind one shared execution role, create and approve
	// churn/2: CloudTrail names neither.
	e.clk.Set(at(3, 10))
	churn2 := mustARN(f.CreatePackage("churn-model", fk.PendingManualApproval, dave))
	evChurn2 := f.LastEventID()
	e.clk.Set(at(3, 20))
	must(f.UpdateApproval(churn2, fk.Approved, "", erin))
	evChurn2Approve := f.LastEventID()
	v = want["fraud-detector/1"]
	v.Actors = append(v.Actors, approval("Approved", "bob@example.com", at(1, 10), evBob))
	want["fraud-detector/1"] = v
	want["churn-model/2"] = versionView{Approval: "Approved", Creator: "dave", Actors: []sources.Actor{
		created("PendingManualApproval", Unknown, at(3, 10), evChurn2),
		approval("Approved", Unknown, at(3, 20), evChurn2Approve),
	}}
	check(3, pollAt(3), want, 1)

	// Poll 4 and 5: fraud/3 is created, then rejected by bob, while fraud/2
	// stays Approved.
	e.clk.Set(at(4, 10))
	fraud3 := mustARN(f.CreatePackage("fraud-detector", fk.PendingManualApproval, pipeline))
	evFraud3 := f.LastEventID()
	want["fraud-detector/3"] = versionView{Approval: "PendingManualApproval", Creator: Unknown, Actors: []sources.Actor{
		created("PendingManualApproval", Unknown, at(4, 10), evFraud3),
	}}
	check(4, pollAt(4), want, 1)
	e.clk.Set(at(5, 10))
	must(f.UpdateApproval(fraud3, fk.Rejected, "recall too low", bob))
	evReject := f.LastEventID()
	v = want["fraud-detector/3"]
	v.Approval = "Rejected"
	v.Actors = append(v.Actors, approval("Rejected", "bob@example.com", at(5, 10), evReject))
	want["fraud-detector/3"] = v
	check(5, pollAt(5), want, 1)
	last := e.prev

	// Poll 6: nothing changed: the same snapshot, no describe.
	check(6, pollAt(6), want, 0)
	assertSameSnapshot(t, last.Snapshot, e.prev.Snapshot)

	// A restarted daemon, whose previous snapshot comes from the ledger,
	// describes nothing either.
	e.client = e.newClient()
	check(7, pollAt(7), want, 0)
	assertSameSnapshot(t, last.Snapshot, e.prev.Snapshot)
}

func assertSameSnapshot(t *testing.T, want, got *sources.Snapshot) {
	t.Helper()
	w, err := want.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	g, err := got.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if string(w) != string(g) {
		t.Errorf("snapshot changed:\n%s", cmp.Diff(want, got))
	}
}
