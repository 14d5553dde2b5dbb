package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// Tour is what the demo reads back from the ledger once the daemon has
// stopped, and prints at the end.
type Tour struct {
	// Entries is the ledger's size.
	Entries int64
	// Sources counts each source's entries, in the order of the config.
	Sources []SourceCounts
	// Findings are every finding, in ledger order.
	Findings []Finding
	// Alerts counts the alerts delivered to Slack per severity.
	Alerts map[string]int
	// Messages is the number of messages Slack received: the alerts and
	// the published checkpoints.
	Messages int
	// Checkpoints is the number of checkpoints published to
	// ledger.publish_path, which the ledger and bundle were proven to extend.
	Checkpoints int
	// From and To bound the exported period [From, To).
	From, To time.Time
	// Ledger, Bundle and Export are the reports of the closing checks.
	Ledger *ledger.Report
	Bundle *export.BundleReport
	Export *export.Summary
}

// SourceCounts counts one source's entries.
type SourceCounts struct {
	Source string
	// Baseline entries record what the registry held at the first poll;
	// Changes are the registry changes seen after it.
	Baseline, Changes, Findings int
}

// Finding is one finding of the ledger, as the tour shows it.
type Finding struct {
	Seq        int64
	ObservedAt time.Time
	Source     string
	Kind       string
	Model      string
	Version    string
	Verdict    string
	Reason     string
	// Order is "same_poll" when the approval and the promotion fell in the
	// same poll.
	Order    string
	Severity string
	Promoter string
	Approver string
	// Result, DurationMS and ObjectiveMS are set on rollbacks.
	Result      string
	DurationMS  [2]int64
	ObjectiveMS int64
	// Supersedes is the seq of the finding this one supersedes, or -1.
	Supersedes int64
}

// readTour reads the ledger at path.
func readTour(ctx context.Context, path string) (*Tour, error) {
	l, err := ledger.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	t := &Tour{Alerts: map[string]int{}}
	if t.Entries, err = l.Size(ctx); err != nil {
		return nil, err
	}
	for _, name := range []string{mlflowProd, databricksWS, sagemakerProd, wandbProd} {
		t.Sources = append(t.Sources, SourceCounts{Source: name})
	}
	severity := map[string]string{} // finding_id -> severity
	err = l.Find(ctx, ledger.Query{}, func(r ledger.Record) error {
		p := r.Payload
		switch {
		case r.Kind == alerts.KindDelivered:
			t.Alerts[severity[alerts.PayloadString(p, "finding_id")]]++
		case ledger.IsFinding(r.Kind):
			f := newFinding(r)
			severity[alerts.PayloadString(p, "finding_id")] = f.Severity
			t.Findings = append(t.Findings, f)
		}
		i := slices.IndexFunc(t.Sources, func(s SourceCounts) bool { return s.Source == r.Source })
		if i < 0 {
			return nil
		}
		s := &t.Sources[i]
		switch {
		case ledger.IsFinding(r.Kind):
			s.Findings++
		case r.Kind == "baseline":
			s.Baseline++
		case r.Actor != policy.Actor: // a registry change: its actor is the registry's, or unknown
			s.Changes++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	return t, nil
}

func newFinding(r ledger.Record) Finding {
	p := r.Payload
	f := Finding{Seq: r.Seq, ObservedAt: r.ObservedAt, Source: r.Source, Kind: r.Kind, Model: r.Model, Version: r.Version,
		Verdict: alerts.PayloadString(p, "verdict"), Reason: alerts.PayloadString(p, "reason"),
		Order: alerts.PayloadString(p, "order"), Severity: alerts.PayloadString(p, "severity"), Promoter: alerts.PayloadString(p, "promoter"),
		Approver: alerts.PayloadString(p, "approver"), Result: alerts.PayloadString(p, "result"), Supersedes: -1}
	if n, ok := alerts.PayloadInt(p, "supersedes"); ok {
		f.Supersedes = n
	}
	f.ObjectiveMS, _ = alerts.PayloadInt(p, "objective_ms")
	if d, ok := p["duration_ms"].([]any); ok && len(d) == 2 {
		f.DurationMS[0], _ = d[0].(int64)
		f.DurationMS[1], _ = d[1].(int64)
	}
	return f
}

// Describe tells the finding's verdict and what backs it, on one line.
func (f Finding) Describe() string {
	if f.Kind == policy.KindRollbackOverdue {
		return "the rollback passed its objective and is still running"
	}
	var b strings.Builder
	b.WriteString(f.Verdict)
	if f.Reason != "" {
		b.WriteString(" (" + strings.ReplaceAll(f.Reason, "_", " ") + ")")
	}
	if f.Order != "" {
		b.WriteString(" (" + strings.ReplaceAll(f.Order, "_", " ") + ")")
	}
	var who []string
	if f.Promoter != "" {
		who = append(who, "promoter "+f.Promoter)
	}
	if f.Approver != "" {
		who = append(who, "approver "+f.Approver)
	}
	if len(who) > 0 {
		b.WriteString("; " + strings.Join(who, ", "))
	}
	if f.Result != "" {
		took := ms(f.DurationMS[0])
		if f.DurationMS[1] != f.DurationMS[0] {
			took += " to " + ms(f.DurationMS[1])
		}
		fmt.Fprintf(&b, "; took %s, objective %s: %s", took, ms(f.ObjectiveMS), f.Result)
	}
	if f.Supersedes >= 0 {
		fmt.Fprintf(&b, "; supersedes seq %d", f.Supersedes)
	}
	return b.String()
}

func ms(n int64) string {
	d := time.Duration(n) * time.Millisecond
	if d == 0 {
		return "0m"
	}
	return strings.TrimSuffix(d.String(), "0s")
}

// print writes the tour.
func (t *Tour) print(p *printer, res *Result) {
	p.printf("What happened (%s: %d entries)\n", res.Ledger, t.Entries)
	p.printf("  %-16s %8s %8s %9s\n", "source", "baseline", "changes", "findings")
	for _, s := range t.Sources {
		p.printf("  %-16s %8d %8d %9d\n", s.Source, s.Baseline, s.Changes, s.Findings)
	}
	p.printf("\nFindings and their verdicts:\n")
	width := 0
	for _, f := range t.Findings {
		width = max(width, len(f.Model+f.Version)+1)
	}
	for _, f := range t.Findings {
		p.printf("  %s seq %-4d %-14s %-16s %-*s %s\n", stamp(f.ObservedAt), f.Seq, f.Source, f.Kind, width, f.Model+"@"+f.Version, f.Describe())
	}
	alerted := 0
	var bySeverity []string
	for _, sev := range []string{policy.SeverityDanger, policy.SeverityWarning, policy.SeverityInfo} {
		if n := t.Alerts[sev]; n > 0 {
			alerted += n
			bySeverity = append(bySeverity, fmt.Sprintf("%s %d", sev, n))
		}
	}
	p.printf("\nAlerts: %d delivered to Slack (%s); with the %d checkpoints posted at midnight, %d messages in %s\n",
		alerted, strings.Join(bySeverity, ", "), t.Messages-alerted, t.Messages, SlackFile)

	e := t.Export
	p.printf("\nVerified: the ledger against %s and the %d published checkpoints (%d entries, %d checkpoints, every signature good),\n",
		PublicKeyFile, t.Checkpoints, t.Ledger.Entries, t.Ledger.Checkpoints)
	p.printf("and the bundle: %d files, %d entries proven in the checkpoint of size %d, the CSVs derived again and equal.\n",
		t.Bundle.Files, t.Bundle.Events, e.CheckpointSize)

	p.printf("\nFiles in %s:\n", res.Dir)
	for _, f := range [][2]string{
		{ConfigFile, "the config the daemon ran, with the fakes' addresses (the fakes are gone now)"},
		{LedgerFile, "the signed, tamper-evident ledger"},
		{KeyFile, "the signing key (private); " + PublicKeyFile + " is its public key, for verifiers"},
		{SlackFile, "each Slack message as the fake Slack received it"},
		{CheckpointsDir + "/", "the signed checkpoints published each midnight"},
		{BundleDir + "/", fmt.Sprintf("the evidence bundle of %s to %s: %d population rows, %d exceptions (%d open), report.html",
			t.From.Format(time.DateOnly), t.To.Format(time.DateOnly), e.Population, e.Exceptions, e.Open)},
	} {
		p.printf("  %-20s %s\n", f[0], f[1])
	}
	p.printf("\nCheck it yourself:\n")
	for _, c := range []string{
		"registrywatch verify -ledger " + res.Ledger + " -key " + res.PublicKey,
		"registrywatch log -ledger " + res.Ledger,
		"registrywatch verify -bundle " + res.Bundle + " -key " + res.PublicKey,
		"openssl pkeyutl -verify -pubin -inkey " + res.PublicKey + " -rawin -in " + filepath.Join(res.Bundle, "manifest.json") +
			" -sigfile " + filepath.Join(res.Bundle, "manifest.sig"),
		"cd " + res.Bundle + " && sha256sum -c SHA256SUMS",
	} {
		p.printf("  %s\n", c)
	}
	p.printf("and open %s in a browser.\n", filepath.Join(res.Bundle, "report.html"))
	p.printf("\nThe demo's directory: %s\n", res.Dir)
}
