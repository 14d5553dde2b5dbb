package e2e

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestIdleDuringAlertBackoff: while Slack is down the alert dispatcher
// backs off, and Kick does not cut a backoff short; a poll that queues
// another alert meanwhile must not keep the daemon from being idle, or a
// driver of the fake clock (this suite, the demo) waits forever for a
// delivery that only the clock moving can bring.
func TestIdleDuringAlertBackoff(t *testing.T) {
	w, err := NewWorld(t.TempDir(), setUp, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SettleTimeout = 20 * time.Second
	q := NewQuarter(w)
	if err := q.Begin(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Slack.DownUntil(Start.Add(3 * time.Hour))
	steps := []struct {
		at time.Time
		do func() error
	}{
		// Both promotions lack approval: each alerts.
		{Start.Add(10 * time.Minute), func() error { return create(w.MLflow, aml, 2, mlflowVersion(aml, 2)) }},
		{Start.Add(20 * time.Minute), func() error { return promote(w.MLflow, aml, 2) }},
		{Start.Add(70 * time.Minute), func() error { return create(w.Databricks, churn, 2, databricksVersion(2)) }},
		{Start.Add(80 * time.Minute), func() error { return promote(w.Databricks, churn, 2) }},
		{Start.Add(4 * time.Hour), func() error { return nil }},
	}
	for _, s := range steps {
		// The second alert is queued at 02:00, while the first one's
		// retry waits on the clock.
		if err := w.AdvanceTo(s.at); err != nil {
			t.Fatalf("advance to %s: %v", fmtTime(s.at), err)
		}
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, m := range w.Slack.Messages() {
		if !strings.HasPrefix(m.Text, "registrywatch checkpoint of ") {
			alerts = append(alerts, m.Text)
		}
	}
	if len(alerts) != 2 {
		t.Errorf("Slack received %d alerts once it was back, want 2:\n%s", len(alerts), strings.Join(alerts, "\n"))
	}
}
