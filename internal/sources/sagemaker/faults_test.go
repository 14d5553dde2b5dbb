package sagemaker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	fk "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
)

// faultEnv is a registry of 5 packages in one group listed in pages of 2,
// with a first snapshot taken.
func faultEnv(t *testing.T) (*env, *sources.Snapshot) {
	t.Helper()
	e := newEnv(t, nil)
	e.fake.SetPageSize(2)
	if _, err := e.fake.CreateGroup("fraud-detector", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e.clk.Advance(time.Second)
		status := fk.PendingManualApproval
		if i%2 == 0 {
			status = fk.Approved
		}
		if _, err := e.fake.CreatePackage("fraud-detector", status, bob); err != nil {
			t.Fatal(err)
		}
	}
	e.clk.Advance(time.Minute)
	res := e.mustPoll()
	if _, n := res.Snapshot.Counts(); n != 5 {
		t.Fatalf("baseline has %d versions, want 5", n)
	}
	for _, v := range res.Snapshot.Models[0].Versions {
		if len(v.Actors) != 1 {
			t.Fatalf("baseline version %s has actors %v, want its creation", v.ID, v.Actors)
		}
	}
	return e, res.Snapshot
}

// wantError checks that err names the source and every part given.
func wantError(t *testing.T, res sources.Result, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Snapshot succeeded, want an error")
	}
	if res.Snapshot != nil {
		t.Errorf("a failed Snapshot returned a snapshot")
	}
	for _, p := range append([]string{`source "sm-test"`}, parts...) {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// recovered polls after the fault is gone and checks nothing changed.
func recovered(t *testing.T, e *env, before *sources.Snapshot) {
	t.Helper()
	e.fake.ClearFaults()
	e.fake.ExpireCredentials(false)
	e.fake.DenyCloudTrail(false)
	e.clk.Advance(time.Minute)
	assertSameSnapshot(t, before, e.mustPoll().Snapshot)
}

func TestFaults(t *testing.T) {
	t.Run("short throttling burst is retried", func(t *testing.T) {
		e, before := faultEnv(t)
		e.fake.Throttle("ListModelPackages", 3)
		e.fake.Throttle("LookupEvents", 2)
		res := e.mustPoll()
		assertSameSnapshot(t, before, res.Snapshot)
		if got := e.fake.Requests()["ListModelPackages"]; got != 2*3+3 {
			t.Errorf("ListModelPackages requests = %d, want 9 (3 pages per poll and 3 throttled)", got)
		}
	})
	t.Run("persistent throttling fails the poll", func(t *testing.T) {
		e, before := faultEnv(t)
		e.fake.Throttle("ListModelPackageGroups", maxAttempts)
		res, err := e.poll()
		wantError(t, res, err, "ListModelPackageGroups", "ThrottlingException")
		recovered(t, e, before)
	})
	t.Run("page failing mid-way fails the poll", func(t *testing.T) {
		e, before := faultEnv(t)
		e.fake.AddFault(fk.Fault{Op: "ListModelPackages", Skip: 1, Count: -1, Status: http.StatusInternalServerError,
			Code: "InternalFailure", Message: "We encountered an internal error."})
		res, err := e.poll()
		wantError(t, res, err, "ListModelPackages", `"fraud-detector"`, "InternalFailure")
		recovered(t, e, before)
	})
	t.Run("failed describe fails the poll and is retried next poll", func(t *testing.T) {
		e, _ := faultEnv(t)
		arn := e.fake.PackageARN("fraud-detector", 2)
		if err := e.fake.UpdateApproval(arn, fk.Approved, "", carol); err != nil {
			t.Fatal(err)
		}
		e.fake.AddFault(fk.Fault{Op: "DescribeModelPackage", Count: -1, Code: "ValidationException",
			Message: "ModelPackage " + arn + " does not exist."})
		res, err := e.poll()
		wantError(t, res, err, "DescribeModelPackage "+arn, "ValidationException")
		e.fake.ClearFaults()
		e.clk.Advance(time.Minute)
		after := e.mustPoll().Snapshot
		if got := after.Models[0].Versions[1].ApprovalStatus; got != "Approved" {
			t.Errorf("after recovery version 2 is %s, want Approved", got)
		}
	})
	t.Run("expired credentials", func(t *testing.T) {
		e, before := faultEnv(t)
		e.fake.ExpireCredentials(true)
		res, err := e.poll()
		wantError(t, res, err, "ListModelPackageGroups", "credentials are expired or invalid", "ExpiredTokenException")
		recovered(t, e, before)
	})
	t.Run("CloudTrail access denied keeps the facts known", func(t *testing.T) {
		e, before := faultEnv(t)
		e.fake.DenyCloudTrail(true)
		for range 3 {
			e.clk.Advance(time.Minute)
			assertSameSnapshot(t, before, e.mustPoll().Snapshot)
		}
		if got := e.client.CloudTrailUnavailable(); got != 3 {
			t.Errorf("CloudTrailUnavailable = %d, want 3", got)
		}
		if n := strings.Count(e.logs.String(), "level=WARN"); n != 1 {
			t.Errorf("%d warnings logged, want 1:\n%s", n, e.logs)
		}
		recovered(t, e, before)
		if !strings.Contains(e.logs.String(), "attribution resumes") {
			t.Errorf("no log line when CloudTrail came back:\n%s", e.logs)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		e, _ := faultEnv(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := e.client.Snapshot(ctx, e.prev)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Snapshot with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

// TestCloudTrailDenied checks a source that never had CloudTrail: versions
// without actors, and the facts arriving once access is granted.
func TestCloudTrailDenied(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.DenyCloudTrail(true)
	if _, err := e.fake.CreateGroup("g", ""); err != nil {
		t.Fatal(err)
	}
	arn, err := e.fake.CreatePackage("g", fk.PendingManualApproval, carol)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	if err := e.fake.UpdateApproval(arn, fk.Approved, "", bob); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	v := e.mustPoll().Snapshot.Models[0].Versions[0]
	if v.ApprovalStatus != "Approved" || v.Actors != nil || v.Creator != carolKey {
		t.Errorf("denied: status %s actors %v creator %s; want Approved, no actors, carol", v.ApprovalStatus, v.Actors, v.Creator)
	}
	e.fake.DenyCloudTrail(false)
	e.clk.Advance(time.Minute)
	v = e.mustPoll().Snapshot.Models[0].Versions[0]
	if len(v.Actors) != 2 || v.Actors[1].Change != ChangeApprovalChanged || v.Actors[1].Actor != "bob@example.com" {
		t.Errorf("allowed again: actors %+v; want creation and bob's approval", v.Actors)
	}
}

// TestCloudTrailDisabled checks cloudtrail.enabled false: no LookupEvents.
func TestCloudTrailDisabled(t *testing.T) {
	off := false
	e := newEnv(t, func(c *config.Source) { c.CloudTrail.Enabled = &off })
	if _, err := e.fake.CreateGroup("g", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CreatePackage("g", fk.Approved, carol); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	v := e.mustPoll().Snapshot.Models[0].Versions[0]
	if v.Actors != nil || rawValue(v.Raw, RawCreatedApproved) != "true" {
		t.Errorf("actors %v, created_approved %q; want none, and the marker from the times", v.Actors, rawValue(v.Raw, RawCreatedApproved))
	}
	if n := e.fake.Requests()["LookupEvents"]; n != 0 {
		t.Errorf("%d LookupEvents with CloudTrail disabled", n)
	}
	if e.client.CloudTrailUnavailable() != 0 || strings.Contains(e.logs.String(), "level=WARN") {
		t.Errorf("disabled CloudTrail counted or warned:\n%s", e.logs)
	}
}
