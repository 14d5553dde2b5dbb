package alerts_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// TestDispatcherOnRealLedger runs the dispatcher over a real signed ledger:
// a 500 then success, a follow-up threaded through the ledger's own index,
// and alerts left pending across a close and reopen.
func TestDispatcherOnRealLedger(t *testing.T) {
	h := newHarness(t, false)
	priv, _, _, err := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.ParseSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	open := func() *ledger.Ledger {
		l, err := ledger.Open(path, ledger.Options{Signer: signer, Now: h.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	led := open()
	ctx := t.Context()

	// One poll: a stage change and the promotion without approval it caused.
	change := ledger.Entry{
		Kind: "stage.changed", Source: "mlflow-prod", SourceType: "mlflow", Model: "fraud-detector",
		ModelID: "fraud-detector@2025-01-01T00:00:00.000Z", Version: "3", Actor: "unknown",
		ObservedAt: t0, OccurredFrom: t0.Add(-time.Minute), OccurredTo: t0,
		Payload: map[string]any{"from": "Staging", "to": "Production"},
	}
	first := promotion("fraud-detector", "3", "missing", map[string]any{"triggering_seq": ledger.InBatch(0)})
	res, err := led.Append(ctx, ledger.Batch{Entries: []ledger.Entry{change, first}})
	if err != nil {
		t.Fatal(err)
	}
	firstSeq := res.Seqs[1]

	h.fake.Inject(slackfake.Fault{Status: 500})
	d := alerts.New(led, h.sink, alerts.Options{Clock: h.clk, Logger: h.logger()})
	runCtx, cancel := context.WithCancel(ctx)
	parks := make(chan park, 100)
	alerts.SetPark(d, func(w time.Duration, idle bool) { parks <- park{w, idle} })
	done := make(chan struct{})
	go func() { defer close(done); d.Run(runCtx) }()
	next := func() park {
		select {
		case p := <-parks:
			return p
		case <-time.After(guard):
			t.Fatal("dispatcher did not park")
			return park{}
		}
	}
	if p := next(); p.idle {
		t.Fatal("idle after a 500")
	}
	h.clk.Advance(time.Second)
	if p := next(); !p.idle {
		t.Fatalf("park %+v, want idle", p)
	}
	rootTS := h.fake.Messages()[0].TS

	// A later poll: approval evidence arrives, the late finding supersedes.
	tag := change
	tag.Kind, tag.Payload = "tag.set", map[string]any{"key": "approved_by", "value": "bob", "previous": ""}
	tag.ObservedAt = t0.Add(time.Hour)
	late := promotion("fraud-detector", "3", "late", map[string]any{
		"triggering_seq": ledger.InBatch(0), "supersedes": ledger.Seq(firstSeq), "approver": "bob",
	})
	if _, err := led.Append(ctx, ledger.Batch{Entries: []ledger.Entry{tag, late}}); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	if p := next(); !p.idle {
		t.Fatalf("park %+v, want idle", p)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 2 || msgs[1].ThreadTS != rootTS {
		t.Fatalf("%d messages, follow-up thread %q; want 2, in thread %s", len(msgs), msgs[len(msgs)-1].ThreadTS, rootTS)
	}

	// Slack goes down; an alert stays pending across a restart.
	h.fake.DownUntil(t0.Add(24 * time.Hour))
	tag2 := tag
	tag2.Payload = map[string]any{"key": "owner", "value": "carol", "previous": ""}
	third := promotion("churn", "9", "self_approved", map[string]any{"triggering_seq": ledger.InBatch(0), "approver": "alice"})
	third.ModelID = "churn@2025-01-01T00:00:00.000Z"
	if _, err := led.Append(ctx, ledger.Batch{Entries: []ledger.Entry{tag2, third}}); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	if p := next(); p.idle {
		t.Fatal("idle while Slack is down")
	}
	cancel()
	<-done
	if err := led.Close(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(25 * time.Hour)
	led = open()
	defer led.Close()
	if items, err := led.Outbox(ctx); err != nil || len(items) != 1 {
		t.Fatalf("outbox after reopen: %d items, %v; want 1", len(items), err)
	}
	n, err := alerts.New(led, h.sink, alerts.Options{Clock: h.clk, Logger: h.logger()}).Drain(ctx, 30*time.Second)
	if err != nil || n != 0 {
		t.Fatalf("Drain = %d, %v; want 0, nil", n, err)
	}
	msgs = h.fake.Messages()
	if len(msgs) != 3 || !strings.Contains(msgs[2].Text, "churn@9") {
		t.Fatalf("messages after restart: %d, last %q", len(msgs), msgs[len(msgs)-1].Text)
	}

	var delivered []string
	err = led.Find(ctx, ledger.Query{Kind: alerts.KindDelivered}, func(r ledger.Record) error {
		if r.Source != "" || r.SourceType != "registrywatch" || r.Actor != "registrywatch" {
			t.Errorf("alert.delivered envelope %+v", r.Entry)
		}
		delivered = append(delivered, alerts.PayloadString(r.Payload, "ts"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{msgs[0].TS, msgs[1].TS, msgs[2].TS}
	if !equal(delivered, want) {
		t.Errorf("alert.delivered ts %v, want %v", delivered, want)
	}
}
