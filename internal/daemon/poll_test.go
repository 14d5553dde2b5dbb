package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// openTestLedger opens a new ledger in a temp dir with a fresh Ed25519 key.
func openTestLedger(t testing.TB, clk clock.Clock) (*ledger.Ledger, string) {
	t.Helper()
	priv, _, _, err := ledger.GenerateKey("ed25519", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.ParseSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	led, err := ledger.Open(path, ledger.Options{Signer: signer, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return led, path
}

// memSource is a Source whose snapshot a test sets directly.
type memSource struct {
	snap *sources.Snapshot
	err  error
	clk  *clock.Fake
}

func (m *memSource) Name() string { return "mem" }
func (m *memSource) Type() string { return sources.TypeMLflow }
func (m *memSource) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	m.clk.Advance(2 * time.Second)
	if m.err != nil {
		return sources.Result{}, m.err
	}
	b, _ := m.snap.Canonical()
	s, _ := sources.ParseSnapshot(b) // a copy
	return sources.Result{Snapshot: s, Requests: 1}, nil
}

func testPolicy() *policy.Config {
	return &policy.Config{
		Source: "mem", SourceType: sources.TypeMLflow, Stages: []string{"Production"},
		ApprovalTag: "approved_by", Objective: policy.Fixed(30 * time.Minute),
	}
}

func kinds(t *testing.T, led *ledger.Ledger, from int64) []string {
	t.Helper()
	var out []string
	err := led.Find(context.Background(), ledger.Query{FromSeq: from}, func(r ledger.Record) error {
		out = append(out, r.Kind)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func oneModel(stage string) *sources.Snapshot {
	s := &sources.Snapshot{Models: []sources.Model{{
		Name: "m", ID: "m@2026-01-01T00:00:00.000Z", CreatedAt: "2026-01-01T00:00:00.000Z",
		Versions: []sources.Version{{ID: "1", Order: 1, Stage: stage, Aliases: []string{}, CreatedAt: "2026-01-01T00:00:01.000Z"}},
	}}}
	s.Sort()
	return s
}

func TestPollOnceBatches(t *testing.T) {
	ctx := t.Context()
	clk := clock.NewFake(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	led, _ := openTestLedger(t, clk)
	src := &memSource{snap: oneModel("None"), clk: clk}
	p := NewPoller(src, led, PollerOptions{Clock: clk, Policy: testPolicy()})

	if _, err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(t, led, 0), ","); got != "baseline,baseline,snapshot" {
		t.Fatalf("first poll: %s", got)
	}
	size, _ := led.Size(ctx)

	// Nothing changed: nothing appended.
	clk.Advance(time.Minute)
	if _, err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kinds(t, led, size); len(got) != 0 {
		t.Fatalf("unchanged poll appended %v", got)
	}

	// A failed poll appends no change, snapshot or finding.
	src.snap = oneModel("Production")
	src.err = errors.New("mlflow: GET /api/2.0/mlflow/model-versions/search: HTTP 503")
	clk.Advance(time.Minute)
	if _, err := p.PollOnce(ctx); err == nil {
		t.Fatal("failed snapshot did not fail the poll")
	}
	if got := kinds(t, led, size); len(got) != 0 {
		t.Fatalf("failed poll appended %v", got)
	}

	// The next good poll records the change once, with the finding.
	src.err = nil
	clk.Advance(time.Minute)
	sum, err := p.PollOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(t, led, size), ","); got != "stage.changed,production.changed,promotion,snapshot" {
		t.Fatalf("promotion poll: %s", got)
	}
	if sum.Alerts != 1 || sum.Changes["stage.changed"] != 1 {
		t.Fatalf("summary %+v", sum)
	}
	items, err := led.Outbox(ctx)
	if err != nil || len(items) != 1 {
		t.Fatalf("outbox %v %v", items, err)
	}

	// A restart re-runs the policy over the same state: nothing new.
	size, _ = led.Size(ctx)
	p2 := NewPoller(src, led, PollerOptions{Clock: clk, Policy: testPolicy()})
	clk.Advance(time.Minute)
	if _, err := p2.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kinds(t, led, size); len(got) != 0 {
		t.Fatalf("restart appended %v", got)
	}
}

func TestPollRefusesTamperedState(t *testing.T) {
	ctx := t.Context()
	clk := clock.NewFake(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	led, _ := openTestLedger(t, clk)
	src := &memSource{snap: oneModel("None"), clk: clk}
	p := NewPoller(src, led, PollerOptions{Clock: clk, Policy: testPolicy()})
	if _, err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Replace the state with another valid snapshot, as raw SQL would.
	other, _ := oneModel("Production").Canonical()
	if _, err := led.Append(ctx, ledger.Batch{States: []ledger.State{{Source: "mem", Bytes: other}}}); err != nil {
		t.Fatal(err)
	}
	p2 := NewPoller(src, led, PollerOptions{Clock: clk, Policy: testPolicy()})
	_, err := p2.PollOnce(ctx)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "mem") {
		t.Fatalf("tampered state: %v", err)
	}
}
