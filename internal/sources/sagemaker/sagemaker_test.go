package sagemaker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	fk "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
)

func TestIdentityKey(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		source, profile, arn, w string
	}{
		{"source identity first", "alice", "alice-profile", "arn:aws:sts::1:assumed-role/R/SageMaker", "alice"},
		{"studio profile", "", "dave", "arn:aws:sts::1:assumed-role/Exec/SageMaker", "dave"},
		{"named session", "", "", "arn:aws:sts::1:assumed-role/MLReviewer/bob@example.com", "arn:aws:sts::1:assumed-role/MLReviewer/bob@example.com"},
		{"iam user", "", "", "arn:aws:iam::1:user/carol", "arn:aws:iam::1:user/carol"},
		{"shared studio session", "", "", "arn:aws:sts::1:assumed-role/Exec/SageMaker", Unknown},
		{"shared session, other case", "", "", "arn:aws:sts::1:assumed-role/Exec/sagemaker", Unknown},
		{"role named SageMaker", "", "", "arn:aws:sts::1:assumed-role/SageMaker/pipeline", "arn:aws:sts::1:assumed-role/SageMaker/pipeline"},
		{"nothing", "", "", "", Unknown},
		{"blank source identity", " ", "", "arn:aws:iam::1:user/carol", "arn:aws:iam::1:user/carol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IdentityKey(tc.source, tc.profile, tc.arn); got != tc.w {
				t.Errorf("IdentityKey(%q, %q, %q) = %q, want %q", tc.source, tc.profile, tc.arn, got, tc.w)
			}
		})
	}
	// Two Studio users behind one execution role share one CloudTrail ARN:
	// the key is unknown, never a shared name that would make them equal.
	shared := "arn:aws:sts::111122223333:assumed-role/AmazonSageMaker-ExecutionRole-Shared/SageMaker"
	if IdentityKey("", "", shared) != Unknown {
		t.Errorf("shared session ARN is not unknown")
	}
	// UserContext and CloudTrail give the same key for the same caller.
	uc := &types.UserContext{IamIdentity: &types.IamIdentity{
		Arn: ptr("arn:aws:sts::1:assumed-role/MLReviewer/bob@example.com"), SourceIdentity: ptr("bob@example.com")}}
	if got := userContextKey(uc); got != "bob@example.com" {
		t.Errorf("userContextKey = %q", got)
	}
	if got := userContextKey(nil); got != Unknown {
		t.Errorf("userContextKey(nil) = %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestEventFacts(t *testing.T) {
	c := &Client{log: discardLogger()}
	arn := "arn:aws:sagemaker:us-east-1:1:model-package/Fraud/4"
	event := func(name, rec string) cttypes.Event {
		return cttypes.Event{EventId: ptr("ev-1"), EventName: ptr(name), EventTime: ptr(epoch0), CloudTrailEvent: ptr(rec)}
	}
	for _, tc := range []struct {
		name, event, rec string
		want             []pendingFact
	}{
		{"approval and lifecycle", EventUpdateModelPackage,
			`{"userIdentity":{"arn":"arn:aws:iam::1:user/carol"},"requestParameters":{"modelPackageArn":"` + arn + `","modelApprovalStatus":"Approved","modelLifeCycle":{"stage":"Production","stageStatus":"Approved"}}}`,
			[]pendingFact{
				{ARN: strings.ToLower(arn), Actor: sources.Actor{Actor: "arn:aws:iam::1:user/carol", At: sources.FormatTime(epoch0), Change: ChangeApprovalChanged, Evidence: "ev-1", Key: "Approved", Raw: EventUpdateModelPackage}},
				{ARN: strings.ToLower(arn), Actor: sources.Actor{Actor: "arn:aws:iam::1:user/carol", At: sources.FormatTime(epoch0), Change: ChangeLifecycleChanged, Evidence: "ev-1", Key: "Production", Raw: EventUpdateModelPackage}},
			}},
		{"failed call", EventUpdateModelPackage,
			`{"errorCode":"AccessDenied","userIdentity":{"arn":"arn:aws:iam::1:user/mallory"},"requestParameters":{"modelPackageArn":"` + arn + `","modelApprovalStatus":"Approved"}}`,
			nil},
		{"metadata-only update", EventUpdateModelPackage,
			`{"userIdentity":{"arn":"arn:aws:iam::1:user/carol"},"requestParameters":{"modelPackageArn":"` + arn + `","customerMetadataProperties":{"a":"b"}}}`,
			nil},
		{"unversioned package", EventCreateModelPackage,
			`{"userIdentity":{"arn":"arn:aws:iam::1:user/carol"},"requestParameters":{"modelPackageName":"p"},"responseElements":{"modelPackageArn":"arn:aws:sagemaker:us-east-1:1:model-package/p"}}`,
			nil},
		{"creation by an AWS service", EventCreateModelPackage,
			`{"userIdentity":{"type":"AWSService","invokedBy":"sagemaker.amazonaws.com"},"requestParameters":{"modelPackageGroupName":"Fraud"},"responseElements":{"modelPackageArn":"` + arn + `"}}`,
			[]pendingFact{{ARN: strings.ToLower(arn), Actor: sources.Actor{Actor: Unknown, At: sources.FormatTime(epoch0), Change: ChangeVersionCreated, Evidence: "ev-1", Raw: EventCreateModelPackage}}}},
		{"null members", EventUpdateModelPackage, `{"userIdentity":null,"requestParameters":null,"responseElements":null}`, nil},
		{"unreadable record", EventUpdateModelPackage, `{"userIdentity":`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, c.eventFacts(event(tc.event, tc.rec))); d != "" {
				t.Errorf("facts (-want +got):\n%s", d)
			}
		})
	}
}

// TestPollUnchangedRequests checks that a poll of an unchanged registry
// sends list calls and LookupEvents only.
func TestPollUnchangedRequests(t *testing.T) {
	e := newEnv(t, nil)
	seed(t, e, 10, 5)
	e.mustPoll()
	e.clk.Advance(time.Hour)
	e.fake.ResetRequests()
	res := e.mustPoll()
	want := map[string]int{"ListModelPackageGroups": 1, "ListModelPackages": 10, "LookupEvents": 2}
	if d := cmp.Diff(want, e.fake.Requests()); d != "" {
		t.Errorf("requests of an unchanged poll (-want +got):\n%s", d)
	}
	if res.Requests != 13 {
		t.Errorf("Result.Requests = %d, want 13", res.Requests)
	}
}

// seed creates groups × packages, half of them approved, each by its own
// named session, and moves the clock past them.
func seed(t testing.TB, e *env, groups, packages int) {
	t.Helper()
	for g := range groups {
		name := fmt.Sprintf("model-%03d", g)
		if _, err := e.fake.CreateGroup(name, ""); err != nil {
			t.Fatal(err)
		}
		for p := range packages {
			status := fk.PendingManualApproval
			if p%2 == 1 {
				status = fk.Approved
			}
			if _, err := e.fake.CreatePackage(name, status, fk.AssumedRole("trainer", fmt.Sprintf("run-%d", p))); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clk.Advance(time.Minute)
}

// hidingAPI hides one package from ListModelPackages, as a listing taken
// just before the package was created would.
type hidingAPI struct {
	API
	hide string
}

func (h *hidingAPI) ListModelPackages(ctx context.Context, in *sm.ListModelPackagesInput, opts ...func(*sm.Options)) (*sm.ListModelPackagesOutput, error) {
	out, err := h.API.ListModelPackages(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	var kept []types.ModelPackageSummary
	for _, s := range out.ModelPackageSummaryList {
		if !strings.EqualFold(*s.ModelPackageArn, h.hide) {
			kept = append(kept, s)
		}
	}
	out.ModelPackageSummaryList = kept
	return out, nil
}

// TestPendingFacts checks that a fact whose package is not listed yet waits
// in aux state, attaches once the package appears, and expires.
func TestPendingFacts(t *testing.T) {
	e := newEnv(t, func(c *config.Source) { c.CloudTrail.Lookback = config.Duration(time.Minute) })
	if _, err := e.fake.CreateGroup("g", ""); err != nil {
		t.Fatal(err)
	}
	arn, err := e.fake.CreatePackage("g", fk.Approved, carol)
	if err != nil {
		t.Fatal(err)
	}
	ev := e.fake.LastEventID()
	hiding := &hidingAPI{API: e.client.api, hide: arn}
	e.client.api = hiding
	e.clk.Advance(10 * time.Second)
	res := e.mustPoll()
	if _, n := res.Snapshot.Counts(); n != 0 {
		t.Fatalf("hidden package listed")
	}
	var aux auxState
	if err := json.Unmarshal(res.Aux, &aux); err != nil {
		t.Fatal(err)
	}
	if len(aux.Pending) != 1 || aux.Pending[0].ARN != strings.ToLower(arn) || aux.Pending[0].Actor.Evidence != ev {
		t.Fatalf("pending = %+v, want the creation of %s", aux.Pending, arn)
	}
	// Another hidden poll moves the cursor on; the next window then starts
	// after the event, so only the pending fact can attribute the version.
	e.clk.Advance(10 * time.Minute)
	res = e.mustPoll()
	if err := json.Unmarshal(res.Aux, &aux); err != nil || len(aux.Pending) != 1 {
		t.Fatalf("pending after a second hidden poll = %+v (%v), want the same single fact", aux.Pending, err)
	}
	e.clk.Advance(10 * time.Minute)
	hiding.hide = ""
	res = e.mustPoll()
	v := res.Snapshot.Models[0].Versions[0]
	if len(v.Actors) != 1 || v.Actors[0].Evidence != ev || v.Actors[0].Actor != carolKey || rawValue(v.Raw, RawCreatedApproved) != "true" {
		t.Errorf("version = actors %+v created_approved %q; want carol's creation, created approved", v.Actors, rawValue(v.Raw, RawCreatedApproved))
	}
	if strings.Contains(string(res.Aux), "pending") {
		t.Errorf("aux still has pending facts: %s", res.Aux)
	}

	// A fact whose package never shows up is dropped after pendingTTL.
	arn2, err := e.fake.CreatePackage("g", fk.PendingManualApproval, carol)
	if err != nil {
		t.Fatal(err)
	}
	hiding.hide = arn2
	e.clk.Advance(10 * time.Second)
	if res = e.mustPoll(); !strings.Contains(string(res.Aux), strings.ToLower(arn2)) {
		t.Fatalf("aux does not hold the pending fact of %s: %s", arn2, res.Aux)
	}
	e.clk.Advance(pendingTTL + time.Minute)
	if res = e.mustPoll(); strings.Contains(string(res.Aux), "pending") {
		t.Errorf("expired pending fact kept: %s", res.Aux)
	}
}

// TestUnreadableAux checks that a damaged cursor restarts attribution
// instead of failing polls.
func TestUnreadableAux(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.fake.CreateGroup("g", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CreatePackage("g", "", carol); err != nil {
		t.Fatal(err)
	}
	e.prev.Aux = []byte("{not json")
	v := e.mustPoll().Snapshot.Models[0].Versions[0]
	if len(v.Actors) != 1 || !strings.Contains(e.logs.String(), "unreadable CloudTrail cursor") {
		t.Errorf("actors %+v; logs:\n%s", v.Actors, e.logs)
	}
}

func TestConsoleURL(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":     "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/model-registry/x",
		"cn-north-1":    "https://cn-north-1.console.amazonaws.cn/sagemaker/home?region=cn-north-1#/model-registry/x",
		"us-gov-west-1": "https://console.amazonaws-us-gov.com/sagemaker/home?region=us-gov-west-1#/model-registry/x",
	} {
		if got := (&Client{region: region}).consoleURL("x"); got != want {
			t.Errorf("%s: %s, want %s", region, got, want)
		}
	}
}

func TestNewNeedsRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	_, err := New(t.Context(), config.Source{Name: "sm", Type: sources.TypeSageMaker}, Options{})
	if err == nil || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), `source "sm"`) {
		t.Errorf("New without a region: %v", err)
	}
}
