package alerts_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/alerts/slack"
	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// guard bounds every wait of a test in real time; it only fires on a bug.
const guard = 10 * time.Second

type park struct {
	wait time.Duration
	idle bool
}

// harness runs a Dispatcher over a memLedger and the Slack sink against
// slackfake, on a fake clock.
type harness struct {
	t     *testing.T
	clk   *clock.Fake
	led   *memLedger
	fake  *slackfake.Server
	sink  *slack.Sink
	logs  *syncBuffer
	parks chan park
	stop  func()
}

func newHarness(t *testing.T, webhook bool) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(t0), led: &memLedger{}, logs: &syncBuffer{}}
	h.fake = slackfake.New(slackfake.Options{Clock: h.clk})
	t.Cleanup(h.fake.Close)
	cfg := config.Slack{Channel: "#ml-audit", RunbookURL: "https://wiki.example.com/model-rollback"}
	if webhook {
		cfg.WebhookURL = config.Secret(h.fake.WebhookURL())
	} else {
		cfg.Token = config.Secret(h.fake.Token())
		cfg.APIURL = h.fake.APIURL()
	}
	var err error
	h.sink, err = slack.New(cfg, slack.Options{Logger: h.logger()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a new Dispatcher until the test ends or stop is called.
func (h *harness) start() *alerts.Dispatcher {
	h.t.Helper()
	d := alerts.New(h.led, h.sink, alerts.Options{Clock: h.clk, Logger: h.logger()})
	h.parks = make(chan park, 1000)
	alerts.SetPark(d, func(wait time.Duration, idle bool) { h.parks <- park{wait, idle} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
	h.stop = func() {
		cancel()
		<-done
	}
	h.t.Cleanup(h.stop)
	return d
}

// next waits until the dispatcher parks.
func (h *harness) next() park {
	h.t.Helper()
	select {
	case p := <-h.parks:
		return p
	case <-time.After(guard):
		h.t.Fatal("dispatcher did not park")
		return park{}
	}
}

// settle advances the clock from park to park until the outbox is drained,
// checking every backoff against the 5 minute cap; it returns the waits.
func (h *harness) settle(p park) []time.Duration {
	h.t.Helper()
	var waits []time.Duration
	for i := 0; !p.idle; i++ {
		if i > 10000 {
			h.t.Fatal("outbox never drained")
		}
		if p.wait <= 0 || p.wait > alerts.DefaultMaxBackoff {
			h.t.Fatalf("backoff %v outside (0, %v]", p.wait, alerts.DefaultMaxBackoff)
		}
		waits = append(waits, p.wait)
		h.clk.Advance(p.wait)
		p = h.next()
	}
	return waits
}

// receivedSeqs returns the ledger seq each received message names, in the
// order Slack received them.
func (h *harness) receivedSeqs() []string {
	var out []string
	for _, m := range h.fake.Messages() {
		out = append(out, seqOf(m))
	}
	return out
}

// seqOf extracts "Ledger seq N" from a message's context.
func seqOf(m slackfake.Message) string {
	for _, a := range m.Attachments {
		for _, b := range a.Blocks {
			for _, e := range b.Elements {
				if s, ok := strings.CutPrefix(e.Text.Text, "Ledger seq "); ok {
					n, _, _ := strings.Cut(s, " ")
					return n
				}
			}
		}
	}
	return ""
}

func (h *harness) checkDelivered(ids ...string) {
	h.t.Helper()
	got := h.led.kinds(alerts.KindDelivered)
	if len(got) != len(ids) {
		h.t.Fatalf("%d alert.delivered entries, want %d", len(got), len(ids))
	}
	for i, r := range got {
		if fid := alerts.PayloadString(r.Payload, "finding_id"); fid != ids[i] {
			h.t.Errorf("alert.delivered #%d finding_id = %s, want %s", i, fid, ids[i])
		}
		if r.Source != "" || r.Model != "" || r.SourceType != "registrywatch" || r.Actor != "registrywatch" {
			h.t.Errorf("alert.delivered #%d envelope = %+v, want an entry about no source", i, r.Entry)
		}
	}
	if n := h.led.pending(); n != 0 {
		h.t.Errorf("%d alerts still in the outbox", n)
	}
}

// addFindings appends n danger findings and returns their seqs (as the
// messages print them) and finding_ids.
func (h *harness) addFindings(n int) (seqs, ids []string) {
	for i := range n {
		seq, id := h.led.add(promotion("fraud-detector", itoa(i+3), "missing", nil))
		seqs, ids = append(seqs, itoa64(seq)), append(ids, id)
	}
	return seqs, ids
}

func TestDispatcherKeepsOrder(t *testing.T) {
	h := newHarness(t, false)
	h.led.add(promotion("fraud-detector", "1", "approved", nil)) // alerts nobody: no outbox row
	seqs, ids := h.addFindings(4)
	h.start()
	if p := h.next(); !p.idle {
		t.Fatalf("first park = %+v, want idle", p)
	}
	if got := h.receivedSeqs(); !equal(got, seqs) {
		t.Errorf("received seqs %v, want %v", got, seqs)
	}
	h.checkDelivered(ids...)
	for i, r := range h.led.kinds(alerts.KindDelivered) {
		m := h.fake.Messages()[i]
		if alerts.PayloadString(r.Payload, "ts") != m.TS || alerts.PayloadString(r.Payload, "channel") != "#ml-audit" {
			t.Errorf("alert.delivered #%d payload %v, want ts %s channel #ml-audit", i, r.Payload, m.TS)
		}
	}
}

func TestDispatcherKickWakesIdleRun(t *testing.T) {
	h := newHarness(t, false)
	d := h.start()
	if p := h.next(); !p.idle || p.wait != alerts.DefaultInterval {
		t.Fatalf("park = %+v, want idle for %v", p, alerts.DefaultInterval)
	}
	seqs, ids := h.addFindings(2)
	d.Kick()
	if p := h.next(); !p.idle {
		t.Fatalf("park = %+v, want idle", p)
	}
	if h.clk.Now() != t0 {
		t.Errorf("delivery waited on the clock until %v", h.clk.Now())
	}
	if got := h.receivedSeqs(); !equal(got, seqs) {
		t.Errorf("received seqs %v, want %v", got, seqs)
	}
	h.checkDelivered(ids...)
	if d.Pending() != 0 {
		t.Errorf("Pending = %d, want 0", d.Pending())
	}
}

func TestDispatcher500ThenSuccess(t *testing.T) {
	for _, webhook := range []bool{false, true} {
		t.Run(mode(webhook), func(t *testing.T) {
			h := newHarness(t, webhook)
			h.fake.Inject(slackfake.Fault{Status: 500})
			_, ids := h.addFindings(1)
			d := h.start()
			p := h.next()
			if p.idle || p.wait < alerts.DefaultBaseBackoff/2 || p.wait > alerts.DefaultBaseBackoff {
				t.Fatalf("park after a 500 = %+v, want a backoff in [0.5s, 1s]", p)
			}
			if d.Pending() != 1 || len(h.fake.Messages()) != 0 {
				t.Fatalf("pending %d, messages %d after a 500", d.Pending(), len(h.fake.Messages()))
			}
			h.clk.Advance(p.wait)
			if p := h.next(); !p.idle {
				t.Fatalf("park after the retry = %+v, want idle", p)
			}
			if n := len(h.fake.Messages()); n != 1 {
				t.Errorf("%d messages delivered, want 1", n)
			}
			if n := h.fake.Requests(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
			h.checkDelivered(ids...)
		})
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, false)
	h.fake.Inject(slackfake.Fault{RetryAfter: 30 * time.Second})
	seqs, ids := h.addFindings(2)
	h.start()
	p := h.next()
	if p.idle || p.wait != 30*time.Second {
		t.Fatalf("park after a 429 = %+v, want exactly 30s", p)
	}
	if dl, ok := h.clk.NextDeadline(); !ok || !dl.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("next deadline %v, want %v", dl, t0.Add(30*time.Second))
	}
	h.clk.Advance(30*time.Second - time.Millisecond)
	if n := h.fake.Requests(); n != 1 {
		t.Fatalf("%d requests before Retry-After elapsed, want 1", n)
	}
	h.clk.Advance(time.Millisecond)
	if p := h.next(); !p.idle {
		t.Fatalf("park after the retry = %+v, want idle", p)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 2 || !msgs[0].ReceivedAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("messages %d, first at %v; want 2, the first at %v", len(msgs), msgs[0].ReceivedAt, t0.Add(30*time.Second))
	}
	if got := h.receivedSeqs(); !equal(got, seqs) {
		t.Errorf("received seqs %v, want %v", got, seqs)
	}
	h.checkDelivered(ids...)
}

func TestDispatcherSlackDownForAnHour(t *testing.T) {
	h := newHarness(t, false)
	back := t0.Add(time.Hour)
	h.fake.DownUntil(back)
	seqs, ids := h.addFindings(5)
	h.start()
	waits := h.settle(h.next())
	if len(waits) < 10 {
		t.Errorf("only %d retries in an hour: %v", len(waits), waits)
	}
	if longest := slicesMax(waits); longest < alerts.DefaultMaxBackoff/2 {
		t.Errorf("longest backoff %v: backoff did not grow", longest)
	}
	msgs := h.fake.Messages()
	if got := h.receivedSeqs(); !equal(got, seqs) {
		t.Fatalf("received seqs %v, want %v (in order, once each)", got, seqs)
	}
	if first := msgs[0].ReceivedAt; first.Before(back) || first.After(back.Add(alerts.DefaultMaxBackoff)) {
		t.Errorf("first delivery at %v, want within 5m after Slack came back at %v", first, back)
	}
	h.checkDelivered(ids...)
	if n := len(h.led.kinds(alerts.KindFailed)); n != 0 {
		t.Errorf("%d alert.failed entries, want 0", n)
	}
}

func TestDispatcherNonRetryableMovesOn(t *testing.T) {
	for _, tt := range []struct {
		webhook bool
		code    string
	}{{false, "channel_not_found"}, {true, "invalid_payload"}, {false, "invalid_auth"}} {
		t.Run(mode(tt.webhook)+"/"+tt.code, func(t *testing.T) {
			h := newHarness(t, tt.webhook)
			h.fake.Inject(slackfake.Fault{Error: tt.code})
			seqs, ids := h.addFindings(2)
			h.start()
			if p := h.next(); !p.idle {
				t.Fatalf("park = %+v, want idle (no retry of a permanent error)", p)
			}
			failed := h.led.kinds(alerts.KindFailed)
			if len(failed) != 1 || alerts.PayloadString(failed[0].Payload, "finding_id") != ids[0] {
				t.Fatalf("alert.failed entries %v, want one for %s", failed, ids[0])
			}
			if e := alerts.PayloadString(failed[0].Payload, "error"); !strings.Contains(e, tt.code) {
				t.Errorf("alert.failed error %q does not name %s", e, tt.code)
			}
			if got := h.receivedSeqs(); !equal(got, seqs[1:]) {
				t.Errorf("received seqs %v, want %v", got, seqs[1:])
			}
			h.checkDelivered(ids[1])
			secret := h.fake.WebhookURL()[len(h.fake.URL()):]
			for _, s := range []string{secret, h.fake.Token()} {
				if strings.Contains(string(failed[0].Leaf)+alerts.PayloadString(failed[0].Payload, "error")+h.logs.String(), s) {
					t.Errorf("a secret reached the ledger or the logs")
				}
			}
		})
	}
}

func TestDispatcherRestartDeliversPending(t *testing.T) {
	h := newHarness(t, false)
	h.fake.DownUntil(t0.Add(10 * time.Minute))
	seqs, ids := h.addFindings(3)
	h.start()
	if p := h.next(); p.idle {
		t.Fatal("first park idle while Slack is down")
	}
	h.stop()
	if n := h.led.pending(); n != 3 {
		t.Fatalf("%d alerts pending after the stop, want 3", n)
	}
	h.clk.Advance(15 * time.Minute)
	h.start()
	if p := h.next(); !p.idle {
		t.Fatalf("park after restart = %+v, want idle", p)
	}
	if got := h.receivedSeqs(); !equal(got, seqs) {
		t.Errorf("received seqs %v, want %v", got, seqs)
	}
	h.checkDelivered(ids...)
}

func TestDispatcherRecordFailureDoesNotResend(t *testing.T) {
	h := newHarness(t, false)
	_, ids := h.addFindings(1)
	h.led.failAppend = 1
	h.start()
	p := h.next()
	if p.idle {
		t.Fatal("park idle although the outcome was not recorded")
	}
	h.settle(p)
	if n := len(h.fake.Messages()); n != 1 {
		t.Errorf("%d messages, want 1 (the retry records, it does not resend)", n)
	}
	h.checkDelivered(ids...)
	if !strings.Contains(h.logs.String(), errAppend.Error()) {
		t.Error("the ledger error was not logged")
	}
}

func TestDispatcherFollowUpsThread(t *testing.T) {
	h := newHarness(t, false)
	d := h.start()
	h.next()

	// A promotion without approval, then an attribution making it
	// self-approved, then the late approval: both follow-ups go to the
	// first alert's thread.
	first, _ := h.led.add(promotion("fraud-detector", "3", "missing", nil))
	second, _ := h.led.add(promotion("fraud-detector", "3", "self_approved", map[string]any{"supersedes": first, "approver": "alice"}))
	h.led.add(promotion("fraud-detector", "3", "late", map[string]any{"supersedes": second, "approver": "bob"}))
	// A rollback overdue, then the rollback completing it.
	overdue, _ := h.led.add(finding(ledger.KindRollbackOverdue, "churn", "", map[string]any{"objective_ms": int64(1800000), "severity": "danger"}))
	h.led.add(finding(ledger.KindRollback, "churn", "7", map[string]any{
		"verdict": "n/a", "result": "overrun", "duration_ms": []any{int64(2000000), int64(2100000)},
		"objective_ms": int64(1800000), "supersedes": "", "severity": "danger",
	}))
	d.Kick()
	if p := h.next(); !p.idle {
		t.Fatalf("park = %+v, want idle", p)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5", len(msgs))
	}
	root, od := msgs[0], msgs[3]
	for i, want := range []struct {
		thread    string
		broadcast bool
		seq       int64
	}{{"", false, -1}, {root.TS, true, first}, {root.TS, false, first}, {"", false, -1}, {od.TS, true, overdue}} {
		m := msgs[i]
		if m.ThreadTS != want.thread || m.Broadcast != want.broadcast {
			t.Errorf("message %d thread %q broadcast %v, want %q %v", i, m.ThreadTS, m.Broadcast, want.thread, want.broadcast)
		}
		if want.seq >= 0 && !strings.Contains(m.Text, "ledger seq "+itoa64(want.seq)) {
			t.Errorf("message %d text %q does not name ledger seq %d", i, m.Text, want.seq)
		}
	}
	if !strings.HasPrefix(msgs[2].Text, "WARNING late approval: fraud-detector@3") {
		t.Errorf("late approval text %q", msgs[2].Text)
	}
}

func TestDispatcherFollowUpByWebhookNamesTheFinding(t *testing.T) {
	h := newHarness(t, true)
	first, firstID := h.led.add(promotion("fraud-detector", "3", "missing", nil))
	h.led.add(promotion("fraud-detector", "3", "late", map[string]any{"supersedes": first, "approver": "bob"}))
	h.start()
	if p := h.next(); !p.idle {
		t.Fatalf("park = %+v, want idle", p)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	m := msgs[1]
	if m.ThreadTS != "" {
		t.Errorf("webhook follow-up has thread_ts %q", m.ThreadTS)
	}
	want := "(follow-up to promotion, ledger seq " + itoa64(first) + ")"
	if !strings.Contains(m.Text, want) {
		t.Errorf("text %q does not contain %q", m.Text, want)
	}
	if !strings.Contains(slackfake.Format(m), "finding "+firstID[:12]) {
		t.Errorf("follow-up does not name the finding %s:\n%s", firstID, slackfake.Format(m))
	}
}

func TestDrain(t *testing.T) {
	t.Run("delivers everything when Slack is up", func(t *testing.T) {
		h := newHarness(t, false)
		_, ids := h.addFindings(3)
		d := alerts.New(h.led, h.sink, alerts.Options{Clock: h.clk, Logger: h.logger()})
		n, err := d.Drain(t.Context(), 30*time.Second)
		if err != nil || n != 0 {
			t.Fatalf("Drain = %d, %v; want 0, nil", n, err)
		}
		h.checkDelivered(ids...)
	})
	t.Run("gives up at the deadline on the clock", func(t *testing.T) {
		h := newHarness(t, false)
		h.fake.DownUntil(t0.Add(time.Hour))
		h.addFindings(2)
		d := alerts.New(h.led, h.sink, alerts.Options{Clock: h.clk, Logger: h.logger()})
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := d.Drain(t.Context(), 30*time.Second)
			done <- result{n, err}
		}()
		for {
			select {
			case r := <-done:
				if r.err != nil || r.n != 2 {
					t.Fatalf("Drain = %d, %v; want 2, nil", r.n, r.err)
				}
				if el := h.clk.Now().Sub(t0); el > 30*time.Second {
					t.Errorf("Drain waited %v on the clock, past its 30s deadline", el)
				}
				if h.fake.Requests() < 3 {
					t.Errorf("only %d attempts within the deadline", h.fake.Requests())
				}
				if d.Pending() != 2 {
					t.Errorf("Pending = %d, want 2", d.Pending())
				}
				return
			case <-h.clk.WaitForTimers(2): // the deadline and a backoff
				dl, _ := h.clk.NextDeadline()
				h.clk.Set(dl)
			case <-time.After(guard):
				t.Fatal("Drain did not return")
			}
		}
	})
}

func TestBackoffIsCappedWithJitter(t *testing.T) {
	h := newHarness(t, false)
	h.fake.DownUntil(t0.Add(24 * time.Hour))
	h.addFindings(1)
	h.start()
	p := h.next()
	seen := map[time.Duration]bool{}
	for range 40 {
		if p.wait > alerts.DefaultMaxBackoff {
			t.Fatalf("backoff %v over the cap", p.wait)
		}
		seen[p.wait] = true
		h.clk.Advance(p.wait)
		p = h.next()
	}
	if p.wait < alerts.DefaultMaxBackoff/2 {
		t.Errorf("backoff after 40 attempts %v, want at least half the cap", p.wait)
	}
	if len(seen) < 20 {
		t.Errorf("only %d distinct waits in 40 attempts: no jitter", len(seen))
	}
}

func mode(webhook bool) string {
	if webhook {
		return "webhook"
	}
	return "bot"
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func itoa(i int) string     { return strconv.Itoa(i) }
func itoa64(i int64) string { return strconv.FormatInt(i, 10) }

// syncBuffer is a bytes.Buffer safe for the dispatcher's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDispatcherUnresolvableFollowUpDoesNotBlock(t *testing.T) {
	h := newHarness(t, false)
	first, _ := h.led.add(promotion("fraud-detector", "3", "missing", nil))
	_, id := h.led.add(promotion("fraud-detector", "3", "late", map[string]any{"supersedes": first}))
	h.led.failRead = true
	h.start()
	if p := h.next(); !p.idle {
		t.Fatalf("park = %+v, want idle", p)
	}
	msgs := h.fake.Messages()
	if len(msgs) != 2 || msgs[1].ThreadTS != "" {
		t.Fatalf("%d messages, want 2, the follow-up unthreaded", len(msgs))
	}
	if got := h.led.kinds(alerts.KindDelivered); alerts.PayloadString(got[1].Payload, "finding_id") != id {
		t.Errorf("second delivery is not %s", id)
	}
	if !strings.Contains(h.logs.String(), "posting it unthreaded") {
		t.Error("the failed lookup was not logged")
	}
}
