package sagemaker

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	fk "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
)

// fixtureDir is ../shared/fixtures/sagemaker relative to the repository root.
var fixtureDir = filepath.Join("..", "..", "..", "..", "shared", "fixtures", "sagemaker")

func fixtures(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(fixtureDir); err != nil {
		t.Skipf("SageMaker fixtures not found at %s (the shared fixtures folder beside the repository): %v", fixtureDir, err)
	}
	return fixtureDir
}

// TestRecordedSnapshot takes a snapshot from the recorded answers served
// verbatim and checks every field it derives, and the requests it sends
// against the recorded requests.
func TestRecordedSnapshot(t *testing.T) {
	rec := fk.NewRecorded(fixtures(t))
	srv := httptest.NewServer(rec)
	defer srv.Close()
	clk := clock.NewFake(time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC))
	cfg := config.Source{
		Name: "sm-test", Type: sources.TypeSageMaker, Region: "us-east-1", Endpoint: srv.URL,
		ModelPackageGroups: []string{"fraud-*"},
		CloudTrail:         config.CloudTrail{Lookback: config.Duration(90 * 24 * time.Hour)},
	}
	e := &env{t: t, clk: clk, cfg: cfg, logs: &syncBuffer{}}
	e.client = e.newClient()
	res := e.mustPoll()

	q := func(s string) string { return jsonText(s) }
	const (
		acct     = "111122223333"
		group    = "arn:aws:sagemaker:us-east-1:" + acct + ":model-package-group/fraud-detector"
		pkg      = "arn:aws:sagemaker:us-east-1:" + acct + ":model-package/fraud-detector/"
		console  = "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/model-registry/model-package-groups/fraud-detector"
		image    = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
		digest   = "sha256:3b2f6ad3e6c1c0d4b5f0f1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9"
		data     = "s3://ml-artifacts-" + acct + "/fraud-detector/v"
		pipeline = `{"IamIdentity":{"Arn":"arn:aws:sts::111122223333:assumed-role/mlops-pipeline-exec/SageMaker","PrincipalId":"AROAEXAMPLEPIPELINE01:SageMaker"}}`
	)
	raw := func(kv ...string) []sources.KV {
		var out []sources.KV
		for i := 0; i < len(kv); i += 2 {
			out = append(out, sources.KV{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	want := &sources.Snapshot{Models: []sources.Model{{
		CreatedAt:   "2024-10-01T09:00:00.000Z",
		Description: sources.Str("Card-not-present fraud classifier"),
		ID:          group,
		Name:        "fraud-detector",
		Raw: raw("CreationTime", "1727773200",
			"ModelPackageGroupArn", q(group),
			"ModelPackageGroupDescription", q("Card-not-present fraud classifier"),
			"ModelPackageGroupName", q("fraud-detector"),
			"ModelPackageGroupStatus", q("Completed")),
		URL: console,
		Versions: []sources.Version{{
			Actors: []sources.Actor{{Actor: "bob@example.com", At: "2024-10-21T08:00:05.000Z", Change: ChangeApprovalChanged,
				Evidence: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", Key: "Rejected", Raw: EventUpdateModelPackage}},
			Aliases:        []string{},
			ApprovalStatus: "Rejected",
			CreatedAt:      "2024-10-20T10:15:30.123Z",
			Creator:        Unknown,
			Description:    sources.Str("xgboost 2.0 baseline"),
			ID:             "1",
			Order:          1,
			Raw: raw("ApprovalDescription", q("Rejected: recall@1%FPR below threshold (0.61 < 0.70)"),
				"CreatedBy", pipeline,
				"CreationTime", "1729419330.123",
				"Image", q(image),
				"ImageDigest", q(digest),
				"LastModifiedBy", `{"IamIdentity":{"Arn":"arn:aws:sts::111122223333:assumed-role/MLReviewer/bob@example.com","PrincipalId":"AROAEXAMPLEREVIEWER1:bob@example.com","SourceIdentity":"bob@example.com"}}`,
				"LastModifiedTime", "1729497605.417",
				"ModelApprovalStatus", q("Rejected"),
				"ModelDataUrl", q(data+"1/model.tar.gz"),
				"ModelPackageArn", q(pkg+"1"),
				"ModelPackageDescription", q("xgboost 2.0 baseline"),
				"ModelPackageStatus", q("Completed")),
			Source:    data + "1/model.tar.gz",
			Status:    "Completed",
			UpdatedAt: "2024-10-21T08:00:05.417Z",
			URL:       console + "/versions/1",
		}, {
			Actors: []sources.Actor{{Actor: "alice", At: "2024-11-14T16:02:11.000Z", Change: ChangeApprovalChanged,
				Evidence: "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", Key: "Approved", Raw: EventUpdateModelPackage}},
			Aliases:        []string{},
			ApprovalStatus: "Approved",
			CreatedAt:      "2024-11-12T14:05:42.517Z",
			Creator:        Unknown,
			Description:    sources.Str("xgboost 2.1, retrained on 2024-10 data"),
			ID:             "2",
			LifecycleStage: "Production",
			Order:          2,
			Raw: raw("ApprovalDescription", q("Approved per CHG-1234: eval AUC 0.947 >= 0.92 gate, bias report reviewed"),
				"CreatedBy", pipeline,
				"CreationTime", "1731420342.517",
				"Image", q(image),
				"ImageDigest", q(digest),
				"LastModifiedBy", `{"DomainId":"d-abc123xyz456","IamIdentity":{"Arn":"arn:aws:sts::111122223333:assumed-role/AmazonSageMaker-ExecutionRole-Approvers/SageMaker","PrincipalId":"AROAEXAMPLEAPPROVER1:SageMaker","SourceIdentity":"alice"},"UserProfileArn":"arn:aws:sagemaker:us-east-1:111122223333:user-profile/d-abc123xyz456/alice","UserProfileName":"alice"}`,
				"LastModifiedTime", "1731600131.204",
				"ModelApprovalStatus", q("Approved"),
				"ModelDataUrl", q(data+"2/model.tar.gz"),
				"ModelLifeCycle", `{"Stage":"Production","StageDescription":"Promoted under change CHG-1234","StageStatus":"Approved"}`,
				"ModelPackageArn", q(pkg+"2"),
				"ModelPackageDescription", q("xgboost 2.1, retrained on 2024-10 data"),
				"ModelPackageStatus", q("Completed")),
			Source:    data + "2/model.tar.gz",
			Status:    "Completed",
			UpdatedAt: "2024-11-14T16:02:11.204Z",
			URL:       console + "/versions/2",
		}, {
			Aliases:        []string{},
			ApprovalStatus: "PendingManualApproval",
			CreatedAt:      "2024-11-20T09:31:07.880Z",
			Creator:        Unknown,
			Description:    sources.Str("xgboost 2.1, retrained on 2024-11 data"),
			ID:             "3",
			LifecycleStage: "Staging",
			Order:          3,
			Raw: raw("CreatedBy", pipeline,
				"CreationTime", "1732095067.88",
				"Image", q(image),
				"ImageDigest", q(digest),
				"LastModifiedBy", pipeline,
				"LastModifiedTime", "1732095067.88",
				"ModelApprovalStatus", q("PendingManualApproval"),
				"ModelDataUrl", q(data+"3/model.tar.gz"),
				"ModelLifeCycle", `{"Stage":"Staging","StageStatus":"PendingApproval"}`,
				"ModelPackageArn", q(pkg+"3"),
				"ModelPackageDescription", q("xgboost 2.1, retrained on 2024-11 data"),
				"ModelPackageStatus", q("Completed")),
			Source:    data + "3/model.tar.gz",
			Status:    "Completed",
			UpdatedAt: "2024-11-20T09:31:07.880Z",
			URL:       console + "/versions/3",
		}},
	}}}
	if d := cmp.Diff(want, res.Snapshot); d != "" {
		t.Errorf("snapshot of the recorded answers (-want +got):\n%s", d)
	}
	if res.Requests != 1+2+3+2 {
		t.Errorf("Requests = %d, want 8 (groups, 2 package pages, 3 describes, 2 lookups)", res.Requests)
	}

	// The requests have the recorded shape.
	sent := func(target string) []map[string]any {
		var out []map[string]any
		for _, b := range rec.Sent(target) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s body %q: %v", target, b, err)
			}
			out = append(out, m)
		}
		return out
	}
	recorded := func(file string) map[string]any {
		b, err := os.ReadFile(filepath.Join(fixtureDir, file))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if got, w := sent("SageMaker.ListModelPackageGroups"), recorded("list-model-package-groups.request.json"); len(got) != 1 || !reflect.DeepEqual(got[0], w) {
		t.Errorf("ListModelPackageGroups sent %v, recorded %v", got, w)
	}
	pages := sent("SageMaker.ListModelPackages")
	for i, file := range []string{"list-model-packages.page1.request.json", "list-model-packages.page2.request.json"} {
		w := recorded(file)
		// Our requests take every version (no creation-time filter), in
		// pages of 100, oldest first; the rest is as recorded.
		delete(w, "CreationTimeAfter")
		w["MaxResults"], w["SortOrder"] = float64(100), "Ascending"
		if len(pages) != 2 || !reflect.DeepEqual(pages[i], w) {
			t.Errorf("ListModelPackages page %d sent %v, recorded (adjusted) %v", i+1, pages, w)
		}
	}
	describes := sent("SageMaker.DescribeModelPackage")
	if w := recorded("describe-model-package.request.json"); len(describes) != 3 || !slices.ContainsFunc(describes, func(m map[string]any) bool { return reflect.DeepEqual(m, w) }) {
		t.Errorf("DescribeModelPackage sent %v, want 3 including %v", describes, w)
	}
	lookups := sent("CloudTrail_20131101.LookupEvents")
	w := recorded("cloudtrail-lookup-events.request.json")
	if len(lookups) != 2 {
		t.Fatalf("%d LookupEvents requests, want 2", len(lookups))
	}
	for i, name := range eventNames {
		got := lookups[i]
		if !sameKeys(got, w) || got["MaxResults"] != w["MaxResults"] {
			t.Errorf("LookupEvents %s sent %v, recorded %v", name, got, w)
		}
		attrs := []any{map[string]any{"AttributeKey": "EventName", "AttributeValue": name}}
		if !reflect.DeepEqual(got["LookupAttributes"], attrs) {
			t.Errorf("LookupEvents attributes %v, want %v", got["LookupAttributes"], attrs)
		}
		end, start := got["EndTime"].(float64), got["StartTime"].(float64)
		if want := float64(clk.Now().Add(-90 * 24 * time.Hour).Unix()); start > want+1 || end-start < 90*24*3600-1 {
			t.Errorf("LookupEvents window [%v, %v], want the 90-day lookback ending now", start, end)
		}
	}
}

func sameKeys(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
