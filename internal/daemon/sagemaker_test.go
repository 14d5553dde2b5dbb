package daemon

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker"
	fk "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
)

// TestSageMakerScenario plays the SageMaker story on the fake SageMaker and
// CloudTrail and checks the exact entries and findings: an approval whose
// CloudTrail event arrives two polls later, a package created Approved, a
// self-approval, two Studio users behind the shared execution role, and a
// newer package Rejected while an older one stays Approved.
func TestSageMakerScenario(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	f := fk.New(clk, fk.Options{})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := config.Source{
		Name: "sm", Type: sources.TypeSageMaker, Region: fk.DefaultRegion, Endpoint: srv.URL, Concurrency: 4,
		Timeout:    config.Duration(time.Hour),
		CloudTrail: config.CloudTrail{Lookback: config.Duration(30 * time.Minute)},
		Production: config.Production{ApprovalStatus: "Approved"},
	}
	client, err := sagemaker.New(t.Context(), cfg, sagemaker.Options{Clock: clk,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "not-a-secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	r := newPollRig(t, clk, client, cfg)
	r.driven = true // CloudTrail calls wait on the clock (2 requests/s)
	keys := []string{"from", "to", "verdict", "reason", "order", "approver", "promoter", "actor", "result"}
	var (
		pipeline = fk.AssumedRole("mlops-pipeline-exec", "build-42")
		bob      = fk.AssumedRole("MLReviewer", "bob").WithSourceIdentity("bob@example.com")
		alice    = fk.AssumedRole("MLEngineer", "alice").WithSourceIdentity("alice@example.com")
		carol    = fk.StudioUser("carol", "AmazonSageMaker-ExecutionRole-Shared")
		dave     = fk.StudioUser("dave", "AmazonSageMaker-ExecutionRole-Shared")
	)
	const pipelineKey = "arn:aws:sts::111122223333:assumed-role/mlops-pipeline-exec/build-42"
	_, err = f.CreateGroup("fraud", "")
	r.must(err)
	sameLines(t, "baseline", r.poll(keys...), []string{"baseline fraud@ unknown"})

	// The pipeline registers fraud/1, pending approval.
	v1, err := f.CreatePackage("fraud", fk.PendingManualApproval, pipeline)
	r.must(err)
	sameLines(t, "created pending", r.poll(keys...), []string{"version.created fraud@1 " + pipelineKey})

	// bob approves it; CloudTrail delivers the event two polls later.
	f.SetCloudTrailDelay(150 * time.Second)
	r.must(f.UpdateApproval(v1, fk.Approved, "reviewed", bob))
	sameLines(t, "approved, approver not known yet", r.poll(keys...), []string{
		"approval.changed fraud@1 unknown from=PendingManualApproval to=Approved",
		"production.changed fraud@ registrywatch",
		"promotion fraud@1 registrywatch verdict=approved reason= order= approver=unknown promoter=unknown",
	})
	sameLines(t, "one poll later", r.poll(keys...), nil)
	approvalSeq := r.seqOf("approval.changed", "fraud", "1")
	sameLines(t, "CloudTrail catches up", r.poll(append(keys, "entry_seq")...), []string{
		"attribution fraud@1 bob@example.com actor=bob@example.com entry_seq=" + itoa(approvalSeq),
		// The approval is the promotion: bob is both approver and promoter.
		"promotion fraud@1 registrywatch verdict=approved reason= order= approver=bob@example.com promoter=bob@example.com",
	})
	f.SetCloudTrailDelay(0)

	// fraud/2 is registered already Approved: the manual step was skipped.
	_, err = f.CreatePackage("fraud", fk.Approved, pipeline)
	r.must(err)
	sameLines(t, "created approved", r.poll(keys...), []string{
		"version.created fraud@2 " + pipelineKey,
		"production.changed fraud@ registrywatch",
		"promotion fraud@2 registrywatch verdict=missing reason=created_approved order= approver= promoter=" + pipelineKey,
	})

	// alice registers fraud/3 and approves it herself.
	v3, err := f.CreatePackage("fraud", fk.PendingManualApproval, alice)
	r.must(err)
	r.poll()
	r.must(f.UpdateApproval(v3, fk.Approved, "lgtm", alice))
	sameLines(t, "self-approved", r.poll(keys...), []string{
		"approval.changed fraud@3 alice@example.com from=PendingManualApproval to=Approved",
		"production.changed fraud@ registrywatch",
		"promotion fraud@3 registrywatch verdict=self_approved reason= order= approver=alice@example.com promoter=alice@example.com",
	})

	// carol and dave both work through the shared execution role: CloudTrail
	// names nobody, so neither is equal to the other.
	v4, err := f.CreatePackage("fraud", fk.PendingManualApproval, carol)
	r.must(err)
	sameLines(t, "studio user creates", r.poll(keys...), []string{"version.created fraud@4 unknown"})
	r.must(f.UpdateApproval(v4, fk.Approved, "", dave))
	sameLines(t, "studio user approves", r.poll(keys...), []string{
		"approval.changed fraud@4 unknown from=PendingManualApproval to=Approved",
		"production.changed fraud@ registrywatch",
		"promotion fraud@4 registrywatch verdict=approved reason= order= approver=unknown promoter=unknown",
	})

	// The newest package is rejected while the older ones stay Approved:
	// the serving version goes back to 3.
	r.must(f.UpdateApproval(v4, fk.Rejected, "drift", bob))
	sameLines(t, "newer rejected", r.poll(keys...), []string{
		"approval.changed fraud@4 bob@example.com from=Approved to=Rejected",
		"production.changed fraud@ registrywatch",
		"rollback fraud@3 registrywatch verdict=n/a reason= order= approver= promoter=bob@example.com result=met",
	})
	if _, err := ledger.Verify(t.Context(), r.path, ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return sources.Itoa(n) }
