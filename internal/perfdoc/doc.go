package main

import (
	"fmt"
	"slices"
	"strings"
)

// budget is one row of DESIGN.md section 9, judged.
type budget struct {
	Name, Raw, Target string
	// Measured is the figure judged: the ratio to the raw operation where
	// the budget has one.
	Measured string
	// Orientation gives the absolute figures.
	Orientation string
	Pass        bool
	// Missing says why the budget was not measured ("" when it was).
	Missing string
	Load    float64
}

// figures are the results that are not budgets: context for the reader.
type figures struct {
	VerifySmall  []string // table rows
	SnapshotCold string
	SageMaker    []string
	WandB        []string
}

// report is everything the document says.
type report struct {
	Budgets []budget
	More    figures
}

func (r report) ok() bool {
	for _, b := range r.Budgets {
		if b.Missing != "" || !b.Pass {
			return false
		}
	}
	return true
}

// The SageMaker and W&B benchmarks report x_raw as poll time over raw time
// (lower is better), where the budget benchmarks report raw over ours.
const pollOverRaw = "poll time / raw time"

// evaluate judges each budget from the runs.
func evaluate(runs map[string]*run) report {
	results := map[string][]result{}
	missing := map[string]string{}
	for key, r := range runs {
		rs, err := parseBench(r.Output)
		switch {
		case err != nil:
			missing[key] = err.Error()
		case r.Err != nil:
			missing[key] = firstLine(r.Err.Error())
		}
		results[key] = rs
	}
	get := func(key, name, unit string) (float64, bool) { return metric(results[key], name, unit) }
	row := func(key string, b budget, judge func() (string, string, bool, bool)) budget {
		if r := runs[key]; r != nil {
			b.Load = r.Load
		}
		measured, orientation, pass, ok := judge()
		switch {
		case ok:
			b.Measured, b.Orientation, b.Pass = measured, orientation, pass
		case missing[key] != "":
			b.Missing = missing[key]
		default:
			b.Missing = "no result in the output"
		}
		return b
	}

	var rep report
	rep.Budgets = append(rep.Budgets, row("append", budget{
		Name:   "append, 1000-entry batches, checkpoint per batch, encoding included",
		Raw:    "same DDL, indexes and triggers, pre-encoded rows of the same size, same batch size, WAL + FULL",
		Target: ">= 0.75x raw",
	}, func() (string, string, bool, bool) {
		x, ok := get("append", "BenchmarkAppend", "x_raw")
		ns, _ := get("append", "BenchmarkAppend", "ns/entry")
		raw, _ := get("append", "BenchmarkAppend", "raw_ns/entry")
		return ratio(x), fmt.Sprintf("%.1f µs/entry; raw %.1f µs/entry", ns/1e3, raw/1e3), x >= 0.75, ok
	}))
	rep.Budgets = append(rep.Budgets, row("verify", budget{
		Name:   "verify of 1M entries in 1000-entry batches",
		Raw:    "`SELECT leaf ORDER BY seq`",
		Target: ">= 0.75x raw, under 3 s",
	}, func() (string, string, bool, bool) {
		const name = "BenchmarkVerify/entries=1000000"
		x, ok := get("verify", name, "x_raw")
		ns, _ := get("verify", name, "ns/entry")
		raw, _ := get("verify", name, "raw_ns/entry")
		total := ns * 1e6 / 1e9
		return ratio(x), fmt.Sprintf("%.2f s for 1M entries; raw scan %.2f s", total, raw*1e6/1e9), x >= 0.75 && total < 3, ok
	}))
	rep.Budgets = append(rep.Budgets, row("diff", budget{
		Name:   "diff of 100k versions",
		Raw:    "—",
		Target: "under 100 ms",
	}, func() (string, string, bool, bool) {
		ms, ok := get("diff", "BenchmarkDiff100k", "ms/diff")
		return fmt.Sprintf("%.0f ms", ms), "10,000 models x 10 versions, nothing changed", ms < 100, ok
	}))
	rep.Budgets = append(rep.Budgets, row("snapshot", budget{
		Name:   "snapshot of 1,000 models x 10 versions from the fake (unchanged registry, the daemon's steady state)",
		Raw:    "the identical request list at the same concurrency, bodies discarded",
		Target: "overhead under 10%",
	}, func() (string, string, bool, bool) {
		x, ok := get("snapshot", "BenchmarkSnapshot", "x_raw")
		pct, _ := get("snapshot", "BenchmarkSnapshot", "overhead_pct")
		ns, _ := get("snapshot", "BenchmarkSnapshot", "ns/snapshot")
		raw, _ := get("snapshot", "BenchmarkSnapshot", "ns/raw")
		reqs, _ := get("snapshot", "BenchmarkSnapshot", "requests/op")
		return fmt.Sprintf("%+.1f%% (%s)", pct, ratio(x)),
			fmt.Sprintf("%.0f ms per poll; raw %.0f ms; %.0f requests", ns/1e6, raw/1e6, reqs), pct < 10, ok
	}))
	rep.Budgets = append(rep.Budgets, row("export", budget{
		Name:   "export of 1M entries (unfiltered)",
		Raw:    "—",
		Target: "under 30 s; peak RSS at 1M within 10% of 100k",
	}, func() (string, string, bool, bool) {
		s, ok := get("export", "BenchmarkExport/1M", "export-s")
		peak, _ := get("export", "BenchmarkExport/1M", "peak-MB")
		small, _ := get("export", "BenchmarkExport/100k", "peak-MB")
		x, okx := get("export", "BenchmarkExport/1M", "x_peak_100k")
		return fmt.Sprintf("%.1f s; peak %.2fx the 100k peak", s, x),
			fmt.Sprintf("peak RSS %.0f MB at 1M, %.0f MB at 100k", peak, small), s < 30 && x <= 1.10, ok && okx
	}))
	rep.Budgets = append(rep.Budgets, row("idle", budget{
		Name:   "`run` idle with three sources",
		Raw:    "—",
		Target: "under 40 MB resident",
	}, func() (string, string, bool, bool) {
		m, ok := parseIdleRSS(runs["idle"].output())
		return fmt.Sprintf("%.1f MB", m.RSS),
			fmt.Sprintf("anonymous %.1f MB, the binary's pages %.1f MB; VmHWM %.1f MB", m.Anon, m.File, m.HWM), m.RSS < 40, ok
	}))

	small := "BenchmarkVerifySmallBatches"
	if x, ok := get("verify", small, "x_raw"); ok {
		big := "BenchmarkVerify/entries=1000000"
		bigNs, _ := get("verify", big, "ns/entry")
		ns, _ := get("verify", small, "ns/entry")
		cp, _ := get("verify", small, "checkpoints")
		nsCp, _ := get("verify", small, "ns/checkpoint")
		s1M, _ := get("verify", small, "s/1M_entries")
		rep.More.VerifySmall = []string{
			fmt.Sprintf("| 1000 entries (BenchmarkVerify, 1M entries) | 1,000 | %.2f µs | — | %.2f s | %s |", bigNs/1e3, bigNs*1e6/1e9, ratioOf("verify", big, get)),
			fmt.Sprintf("| 1 to 20, 10.5 on average (BenchmarkVerifySmallBatches, 100k entries) | %.0f | %.2f µs | %.0f µs | %.1f s | %s |", cp, ns/1e3, nsCp/1e3, s1M, ratio(x)),
		}
	}
	if pct, ok := get("snapshot", "BenchmarkSnapshotCold", "overhead_pct"); ok {
		ns, _ := get("snapshot", "BenchmarkSnapshotCold", "ns/snapshot")
		raw, _ := get("snapshot", "BenchmarkSnapshotCold", "ns/raw")
		rep.More.SnapshotCold = fmt.Sprintf("%+.0f%% (%s; %.0f ms per poll, raw %.0f ms)", pct, ratioOf("snapshot", "BenchmarkSnapshotCold", get), ns/1e6, raw/1e6)
	}
	for _, r := range results["sagemaker"] {
		var ops []string
		for unit, v := range r.Metrics {
			if op, ok := strings.CutSuffix(unit, "/poll"); ok {
				ops = append(ops, fmt.Sprintf("%s %.1f", op, v))
			}
		}
		slices.Sort(ops)
		rep.More.SageMaker = append(rep.More.SageMaker, fmt.Sprintf("| %s | %s | %.2f |", r.Name, strings.Join(ops, ", "), r.Metrics["x_raw"]))
	}
	for _, r := range results["wandb"] {
		rep.More.WandB = append(rep.More.WandB, fmt.Sprintf("| %s | %.0f | %.2f |", r.Name, r.Metrics["requests/op"], r.Metrics["x_raw"]))
	}
	return rep
}

func (r *run) output() string {
	if r == nil {
		return ""
	}
	return r.Output
}

func ratio(x float64) string { return fmt.Sprintf("%.2fx raw", x) }

func ratioOf(key, name string, get func(key, name, unit string) (float64, bool)) string {
	x, ok := get(key, name, "x_raw")
	if !ok {
		return "—"
	}
	return ratio(x)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// render writes the document.
func render(m machine, rep report, order []step, runs map[string]*run, quick bool) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Performance\n\n")
	p("Generated by `make perf` (`go run ./internal/perfdoc -out docs/PERFORMANCE.md`) on %s; do not edit by hand.\n", m.Start.Format("2006-01-02 15:04 UTC"))
	if quick {
		p("\n**Quick run (-quick): too few iterations for the figures to mean anything.**\n")
	}
	p(`
Each budget of DESIGN.md section 9 is a Go benchmark that measures the raw operation underneath in the same
run, alternating with it so both see the same machine load. The ratio is binding, the absolute figures are
orientation only. A ratio is written as raw time / our time ("0.90x raw": we take 1/0.90 of the raw time;
1.00x means no overhead). The machine is shared with other work: the load average given beside each budget
is the one when its benchmark started, and ratios measured under a load above the core count are noisy.

`)
	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d |\n| kernel | %s |\n| Go | %s |\n| commit | %s |\n", m.CPU, m.Cores, orUnknown(m.Kernel), orUnknown(m.GoVersion), orUnknown(m.Commit))
	p("| date | %s to %s |\n", m.Start.Format("2006-01-02 15:04:05 UTC"), m.End.Format("15:04:05 UTC"))
	p("| load average (1, 5, 15 min) | %s at the start, %s at the end |\n\n", m.LoadStart, m.LoadEnd)

	p("## Budgets\n\n")
	p("| budget | raw operation measured beside it | target | measured | result | orientation (absolute) | load |\n")
	p("|---|---|---|---|---|---|---|\n")
	for _, bu := range rep.Budgets {
		measured, result, orientation := bu.Measured, "pass", bu.Orientation
		switch {
		case bu.Missing != "":
			measured, result, orientation = "not measured", "—", cell(bu.Missing)
		case !bu.Pass:
			result = "**fail**"
		}
		p("| %s | %s | %s | %s | %s | %s | %.2f |\n", bu.Name, bu.Raw, bu.Target, measured, result, orientation, bu.Load)
	}
	p("\nThe benchmarks with a raw operation report the medians of their alternating runs; a benchmark run several\n")
	p("times (`-count`, see the run log) is given by the median of its runs.\n")

	p("\n## Verify at the daemon's batch sizes\n\n")
	p(`A poll appends one batch: a snapshot entry and the few changes it saw, with a checkpoint. Checking a
checkpoint costs about 41 µs (Ed25519) or 67 µs (ECDSA) of signature alone, so a ledger written by polls has
about 100 times the checkpoints of the 1000-entry batches of the budget, and verifies slower per entry.
`)
	if len(rep.More.VerifySmall) == 0 {
		p("\nNot measured (see the run log).\n")
	} else {
		p("\n| entries per batch | checkpoints | verify per entry | per checkpoint | verify time of 1M entries | ratio |\n|---|---|---|---|---|---|\n")
		for _, l := range rep.More.VerifySmall {
			p("%s\n", l)
		}
		p("\nThe 1M figure of the small batches is the time per entry of the 100k-entry ledger times a million.\n")
	}

	p("\n## MLflow snapshot after a change\n\n")
	p(`The client keeps the search answers of its last successful poll: an unchanged answer is not decoded
again, and unchanged models keep their versions (docs/ARCHITECTURE.md). The budget row measures the daemon's
steady state, an unchanged registry. The first poll after a start, or after a change anywhere in the
version search's answer, decodes every answer and builds every model: `)
	if rep.More.SnapshotCold == "" {
		p("not measured (see the run log).\n")
	} else {
		p("%s over the same raw requests (BenchmarkSnapshotCold).\n", rep.More.SnapshotCold)
	}

	p("\n## Requests per poll, SageMaker and W&B\n\n")
	p("Unchanged registries: the requests one poll sends, and the poll's time against replaying them raw (these two benchmarks report %s: lower is better).\n\n", pollOverRaw)
	p("| SageMaker benchmark (100 groups x 50 packages) | requests per poll | %s |\n|---|---|---|\n", pollOverRaw)
	for _, l := range rep.More.SageMaker {
		p("%s\n", l)
	}
	if len(rep.More.SageMaker) == 0 {
		p("| not measured | | |\n")
	}
	p("\n| W&B benchmark (collections x versions) | requests per poll | %s |\n|---|---|---|\n", pollOverRaw)
	for _, l := range rep.More.WandB {
		p("%s\n", l)
	}
	if len(rep.More.WandB) == 0 {
		p("| not measured | | |\n")
	}

	p("\n## Run log\n\n| benchmark | command | load at start | time | status |\n|---|---|---|---|---|\n")
	for _, s := range order {
		r := runs[s.key]
		status := "ok"
		if r.Err != nil {
			status = cell(firstLine(r.Err.Error()))
		}
		p("| %s | `go test %s` | %.2f | %s | %s |\n", s.what, cell(strings.Join(s.args, " ")), r.Load, r.Elapsed.Round(1e9), status)
	}
	p("\nRegenerate with `make perf` from the repository root (five to ten minutes on two cores).\n")
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
