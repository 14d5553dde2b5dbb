package e2e

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// played is the quarter, played once and shared by the tests.
type played struct {
	w      *World
	q      *Quarter
	bundle string
	sum    *export.Summary
	took   time.Duration
	log    strings.Builder
}

var (
	playOnce  sync.Once
	theRun    *played
	playErr   error
	scratch   string
	logLevel  = slog.LevelWarn
	verbosity = os.Getenv("E2E_VERBOSE") != "" // tell each step on stderr
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theRun != nil {
		theRun.w.Close()
	}
	if scratch != "" && os.Getenv("E2E_KEEP") == "" {
		os.RemoveAll(scratch)
	} else if scratch != "" {
		fmt.Fprintf(os.Stderr, "e2e: the quarter's ledger and bundle are kept in %s\n", scratch)
	}
	os.Exit(code)
}

// quarterRun plays the quarter and exports it, once per test binary.
func quarterRun(t *testing.T) *played {
	t.Helper()
	playOnce.Do(func() { theRun, playErr = play() })
	if playErr != nil {
		t.Fatal(playErr)
	}
	return theRun
}

func play() (*played, error) {
	var err error
	if scratch, err = os.MkdirTemp("", "registrywatch-e2e-"); err != nil {
		return nil, err
	}
	p := &played{}
	var logs syncWriter
	logs.b = &p.log
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: logLevel}))
	begin := time.Now()
	if p.w, err = NewWorld(scratch, setUp, logger); err != nil {
		return nil, err
	}
	p.q = NewQuarter(p.w)
	var logf func(string, ...any)
	if verbosity {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	if err := p.q.Play(context.Background(), logf); err != nil {
		return p, fmt.Errorf("%w\nlogs:\n%s", err, p.log.String())
	}
	priv, err := os.ReadFile(p.w.KeyPath)
	if err != nil {
		return p, err
	}
	signer, err := ledger.ParseSigner(priv, nil)
	if err != nil {
		return p, err
	}
	p.bundle = filepath.Join(scratch, "bundle")
	p.sum, err = export.Run(context.Background(), export.Options{
		Ledger: p.w.LedgerPath, Out: p.bundle, Signer: signer, Keys: []crypto.PublicKey{p.w.PublicKey},
		From: Start, To: End, Tool: "registrywatch e2e", Clock: p.w.Clock,
	})
	if err != nil {
		return p, fmt.Errorf("export: %w", err)
	}
	p.took = time.Since(begin)
	return p, nil
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestQuarter plays a quarter of history over every registry and Slack,
// with outages and restarts, exports it, verifies the ledger and the bundle
// with the public key, and checks the bundle's files against the script's
// record of truth.
func TestQuarter(t *testing.T) {
	p := quarterRun(t)
	t.Logf("quarter played and exported in %s (%d entries, %d population rows, %d exceptions)\n%s",
		p.took.Round(time.Millisecond), p.sum.Entries, p.sum.Population, p.sum.Exceptions, p.q.Rec.Summary())
	if w := p.log.String(); strings.Contains(w, "level=ERROR") {
		t.Errorf("the daemon logged errors:\n%s", w)
	}

	t.Run("ledger verifies", func(t *testing.T) {
		rep, err := ledger.Verify(t.Context(), p.w.LedgerPath, ledger.VerifyOptions{Keys: []crypto.PublicKey{p.w.PublicKey}})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("ledger: %v", rep.Problems)
		}
	})
	t.Run("bundle verifies", func(t *testing.T) {
		rep, err := export.VerifyBundle(t.Context(), p.bundle, export.VerifyOptions{Keys: []crypto.PublicKey{p.w.PublicKey}})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !rep.Manifest.Complete {
			t.Fatalf("bundle: complete %v, problems %v", rep.Manifest.Complete, rep.Problems)
		}
		if rep.Events != p.sum.Entries+p.sum.Boundary {
			t.Errorf("bundle proves %d events, export wrote %d", rep.Events, p.sum.Entries+p.sum.Boundary)
		}
	})
	t.Run("bundle matches the script", func(t *testing.T) {
		if err := Check(p.bundle, p.q.Rec); err != nil {
			t.Errorf("the bundle differs from the script's record:\n%v", err)
		}
	})
	t.Run("alerts", func(t *testing.T) { checkAlerts(t, p) })
}

var ledgerSeq = regexp.MustCompile(`Ledger seq (\d+)`)

// checkAlerts checks Slack's side: every alerting finding reached Slack
// exactly once, in ledger order, and those raised while Slack was down
// arrived after it came back.
func checkAlerts(t *testing.T, p *played) {
	led, err := ledger.OpenReadOnly(p.w.LedgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	alerting := map[int64]ledger.Record{}
	delivered := map[string]int{}
	err = led.Find(t.Context(), ledger.Query{}, func(r ledger.Record) error {
		switch {
		case ledger.IsFinding(r.Kind) && r.Payload["severity"] != "":
			alerting[r.Seq] = r
		case r.Kind == "alert.delivered":
			id, _ := r.Payload["finding_id"].(string)
			delivered[id]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	received := map[int64]slackfake.Message{}
	for _, m := range p.w.Slack.Messages() {
		if strings.HasPrefix(m.Text, "registrywatch checkpoint of ") {
			continue
		}
		sm := ledgerSeq.FindSubmatch(m.Body)
		if sm == nil {
			t.Errorf("a Slack message names no ledger seq: %s", m.Text)
			continue
		}
		seq, _ := strconv.ParseInt(string(sm[1]), 10, 64)
		seqs = append(seqs, seq)
		received[seq] = m
	}
	if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		t.Errorf("Slack received the alerts out of order or twice: seqs %v", seqs)
	}
	outage := p.q.SlackOutage()
	duringOutage := 0
	for seq, r := range alerting {
		m, ok := received[seq]
		if !ok {
			t.Errorf("finding %d (%s %s@%s) never reached Slack", seq, r.Kind, r.Model, r.Version)
			continue
		}
		id, _ := r.Payload["finding_id"].(string)
		if delivered[id] != 1 {
			t.Errorf("finding %d: %d alert.delivered entries", seq, delivered[id])
		}
		if outage.Contains(r.ObservedAt) {
			duringOutage++
			if m.ReceivedAt.Before(outage.To) {
				t.Errorf("finding %d raised during the Slack outage reached Slack at %s, before it ended", seq, fmtTime(m.ReceivedAt))
			}
		}
	}
	if len(received) != len(alerting) {
		t.Errorf("Slack received %d alerts, the ledger has %d alerting findings", len(received), len(alerting))
	}
	// The script made three findings alert while Slack was down.
	expected := 0
	for _, pop := range p.q.Rec.Population {
		if outage.Contains(pop.At) {
			expected++
		}
	}
	if duringOutage < expected || expected == 0 {
		t.Errorf("%d alerting findings raised during the Slack outage, the script made %d", duringOutage, expected)
	}
	t.Logf("%d alerts delivered once each, in ledger order; %d raised while Slack was down arrived after %s",
		len(received), duringOutage, fmtTime(outage.To))
}
