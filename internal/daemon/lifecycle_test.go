package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// TestPublishCheckpoint: on @daily the signed checkpoint is posted to Slack,
// written once to publish_path and recorded; the file proves the ledger
// later only grew.
func TestPublishCheckpoint(t *testing.T) {
	h := newHarness(t, func(y string) string { return strings.Replace(y, "@every 1m", "@every 10m", 1) })
	registryWithProduction(t, h.reg)
	h.start()
	midnight := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	h.advanceTo(midnight)

	pubs := ofKind(h.entries(0), KindCheckpointPublished)
	if len(pubs) != 1 || !pubs[0].ObservedAt.Equal(midnight) || pubs[0].Source != "" || pubs[0].SourceType != "registrywatch" {
		t.Fatalf("checkpoint.published:\n%s", describe(pubs))
	}
	size, _ := pubs[0].Payload["size"].(int64)
	file := filepath.Join(h.dir, "published", strconv.FormatInt(size, 10)+".checkpoint")
	where, _ := pubs[0].Payload["where"].([]any)
	if len(where) != 2 || where[0] != WhereSlack || where[1] != file || size > pubs[0].Seq {
		t.Fatalf("checkpoint.published payload %v at seq %d", pubs[0].Payload, pubs[0].Seq)
	}
	note, err := os.ReadFile(file)
	must(t, err)
	cp, err := ledger.ParseCheckpoint(note)
	if err != nil || cp.Size != size {
		t.Fatalf("published file: %v size %d", err, cp.Size)
	}
	sig := strings.TrimSpace(string(note[strings.LastIndex(string(note), "\u2014 "):]))
	msgs := h.messages("registrywatch checkpoint of " + cp.Origin)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, sig) || !msgs[0].ReceivedAt.Equal(midnight) {
		t.Fatalf("checkpoint not posted to Slack with its signature %q: %+v", sig, msgs)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm()&0o222 != 0 {
		t.Fatalf("published file should be read-only: %v %v", fi.Mode(), err)
	}
	h.advance(5 * time.Hour)
	h.stop()
	rep := h.verify(note)
	if rep.ExternalCheckpoints != 1 {
		t.Fatalf("the published checkpoint was not checked: %+v", rep)
	}
}

// TestWriteCheckpointExclusive: a published checkpoint file is never
// overwritten; the same note again counts as written.
func TestWriteCheckpointExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pub")
	note := []byte("origin\n7\nroot\n\n\u2014 origin sig\n")
	path, err := writeCheckpoint(dir, 7, note)
	if err != nil || path != filepath.Join(dir, "7.checkpoint") {
		t.Fatalf("write: %q %v", path, err)
	}
	if _, err := writeCheckpoint(dir, 7, note); err != nil {
		t.Fatalf("same note again: %v", err)
	}
	if _, err := writeCheckpoint(dir, 7, []byte("other\n")); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("other note: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(note) {
		t.Fatalf("file changed: %q", b)
	}
}

// flakySigner fails to sign while fail is set.
type flakySigner struct {
	signature.Signer
	fail atomic.Bool
}

func (f *flakySigner) SignMessage(r io.Reader, opts ...signature.SignOption) ([]byte, error) {
	if f.fail.Load() {
		return nil, errors.New("kms: key is disabled")
	}
	return f.Signer.SignMessage(r, opts...)
}

// TestSigningFailure: when checkpoints cannot be signed the poll fails and
// records nothing, /readyz turns unready, a metric counts it, Slack is told
// once an hour at most; when signing works again the change is recorded.
func TestSigningFailure(t *testing.T) {
	h := newHarness(t, nil)
	priv, err := os.ReadFile(h.cfg.Ledger.Signer)
	must(t, err)
	inner, err := ledger.ParseSigner(priv, nil)
	must(t, err)
	fs := &flakySigner{Signer: inner}
	h.signer = fs
	registryWithProduction(t, h.reg)
	h.start()
	size0 := h.size()

	fs.fail.Store(true)
	must(t, h.reg.SetVersionTag("fraud", "1", "owner", "alice"))
	h.advanceTo(t0.Add(time.Minute))
	if recs := h.entries(size0); len(recs) != 0 {
		t.Fatalf("entries while signing fails:\n%s", describe(recs))
	}
	code, body := h.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "checkpoints cannot be signed") {
		t.Fatalf("/readyz while signing fails: %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `registrywatch_ledger_commit_failures_total{reason="sign"}`) {
		t.Fatalf("no signing failure metric:\n%s", m)
	}
	h.advanceTo(t0.Add(10 * time.Minute))
	if n := len(h.messages("cannot sign ledger checkpoints")); n != 1 {
		t.Fatalf("Slack told %d times within the hour", n)
	}

	fs.fail.Store(false)
	h.advanceTo(t0.Add(11 * time.Minute))
	recs := h.entries(size0)
	if len(ofKind(recs, "tag.set")) != 1 {
		t.Fatalf("the change after signing recovered:\n%s", describe(recs))
	}
	gaps := ofKind(recs, KindCoverageGap)
	if len(gaps) != 1 || gaps[0].Payload["cause"] != CauseLedgerError {
		t.Fatalf("coverage.gap of a signing outage:\n%s", describe(gaps))
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after recovery: %d %s", code, body)
	}
	h.stop()
	h.verify()
}

// TestRefusesTamperedState: a source whose stored state does not match its
// latest snapshot entry stops the daemon before anything, naming it.
func TestRefusesTamperedState(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	h.start()
	h.stop()
	size0 := h.size()
	priv, err := os.ReadFile(h.cfg.Ledger.Signer)
	must(t, err)
	signer, err := ledger.ParseSigner(priv, nil)
	must(t, err)
	led, err := ledger.Open(h.cfg.Ledger.Path, ledger.Options{Signer: signer})
	must(t, err)
	other, _ := (&sources.Snapshot{}).Canonical()
	_, err = led.Append(t.Context(), ledger.Batch{States: []ledger.State{{Source: "mlflow-prod", Bytes: other}}})
	must(t, err)
	must(t, led.Close())

	err = h.tryStart()
	var se *StartError
	if !errors.As(err, &se) || !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "mlflow-prod") {
		t.Fatalf("tampered state: %v", err)
	}
	if n := h.size(); n != size0 {
		t.Fatalf("the refused start appended %d entries", n-size0)
	}
}

// TestSecondWriter: a second daemon on the same ledger fails to start,
// naming the holder of the lock.
func TestSecondWriter(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	h.start()
	second := *h
	second.d, second.cancel = nil, nil
	err := second.tryStart()
	var se *StartError
	if !errors.As(err, &se) || !errors.Is(err, ledger.ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second writer: %v", err)
	}
	if code, _ := h.get("/readyz"); code != http.StatusOK {
		t.Fatal("the first daemon suffered from the second")
	}
}

// gatedSource holds each snapshot until released, to catch a poll in flight.
type gatedSource struct {
	sources.Source
	started chan struct{}
	release chan struct{}
	ctxErr  chan error
}

func (g *gatedSource) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	g.ctxErr <- ctx.Err()
	return g.Source.Snapshot(ctx, prev)
}

// TestShutdownFinishesPollInFlight: SIGTERM (ctx cancelled) during a poll
// lets that poll finish and commit its batch before Run returns nil.
func TestShutdownFinishesPollInFlight(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	g := &gatedSource{started: make(chan struct{}, 1), release: make(chan struct{}), ctxErr: make(chan error, 1)}
	h.wrap = func(s sources.Source) sources.Source { g.Source = s; return g }
	must(t, h.tryStart())
	<-g.started
	h.cancel()
	close(g.release)
	if err := <-g.ctxErr; err != nil {
		t.Fatalf("the poll in flight was cancelled: %v", err)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(watchdog):
		t.Fatal("Run did not return")
	}
	h.cancel = nil
	if got := kindList(h.entries(0)); !strings.Contains(got, "baseline") {
		t.Fatalf("the batch in flight was not committed: %s", got)
	}
	h.verify()
}

// TestShutdownBound: a poll that never ends is abandoned when the shutdown
// timeout expires on the clock.
func TestShutdownBound(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	g := &gatedSource{started: make(chan struct{}, 1), release: make(chan struct{}), ctxErr: make(chan error, 1)}
	h.wrap = func(s sources.Source) sources.Source { g.Source = s; return g }
	must(t, h.tryStart())
	<-g.started
	h.cancel()
	h.cancel = nil
	// Wait for the shutdown's bound to be the next deadline, then reach it.
	bound := h.clk.Now().Add(DefaultShutdownTimeout)
	waitUntil(t, func() bool { d, ok := h.clk.NextDeadline(); return ok && d.Equal(bound) })
	h.clk.Set(bound)
	if err := <-g.ctxErr; err == nil {
		t.Fatal("the poll was not cancelled at the bound")
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(watchdog):
		t.Fatal("Run did not return at the bound")
	}
	if got := kindList(h.entries(0)); strings.Contains(got, "baseline") {
		t.Fatalf("the abandoned poll committed: %s", got)
	}
}

// waitUntil yields until cond holds (a state reached by other goroutines
// without any signal to wait on), failing after the watchdog.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never reached")
		}
		runtime.Gosched()
	}
}

// TestMetrics: /metrics exposes the poll, change, finding, alert and ledger
// metrics.
func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	registryWithProduction(t, h.reg)
	_, err := h.reg.CreateVersion("fraud", mlflowfake.VersionSpec{Source: "s3://models/fraud/2"})
	must(t, err)
	h.start()
	must(t, h.reg.TransitionStage("fraud", "2", mlflowfake.StageProduction, true))
	h.advanceTo(t0.Add(time.Minute))
	_, body := h.get("/metrics")
	for _, want := range []string{
		`registrywatch_polls_total{source="mlflow-prod"} 2`,
		`registrywatch_poll_duration_seconds_count{source="mlflow-prod"} 2`,
		`registrywatch_changes_total{kind="stage.changed",source="mlflow-prod"} 2`,
		`registrywatch_findings_total{kind="promotion",source="mlflow-prod"} 1`,
		`registrywatch_alerts_delivered_total 1`,
		`registrywatch_alerts_failed_total 0`,
		`registrywatch_alerts_pending 0`,
		`registrywatch_ledger_entries `,
		`registrywatch_seconds_since_last_checkpoint 0`,
		`registrywatch_coverage_gaps_open 0`,
		`registrywatch_ready 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
	if n := len(h.messages("promotion")); n != 1 {
		t.Fatalf("%d promotion alerts", n)
	}
}
