package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sampleBench = `goos: linux
goarch: amd64
pkg: github.com/registrywatch/registrywatch/internal/ledger
cpu: Some CPU
BenchmarkVerify/entries=1000000-2         	       5	1417164687 ns/op	      1406 ns/entry	      1478 raw_ns/entry	         1.051 x_raw
BenchmarkVerifySmallBatches-2   	       5	1041018724 ns/op	      9529 checkpoints	    117165 ns/checkpoint	     11165 ns/entry	      1996 raw_ns/entry	        11.16 s/1M_entries	         0.1787 x_raw
PASS
ok  	github.com/registrywatch/registrywatch/internal/ledger	63.077s
`

func TestParseBench(t *testing.T) {
	rs, err := parseBench(sampleBench)
	if err != nil {
		t.Fatal(err)
	}
	want := []result{
		{Name: "BenchmarkVerify/entries=1000000", Iterations: 5, Metrics: map[string]float64{"ns/op": 1417164687, "ns/entry": 1406, "raw_ns/entry": 1478, "x_raw": 1.051}},
		{Name: "BenchmarkVerifySmallBatches", Iterations: 5, Metrics: map[string]float64{"ns/op": 1041018724, "checkpoints": 9529,
			"ns/checkpoint": 117165, "ns/entry": 11165, "raw_ns/entry": 1996, "s/1M_entries": 11.16, "x_raw": 0.1787}},
	}
	if diff := cmp.Diff(want, rs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseBench("BenchmarkX-2 3 12 ns/op 7\n"); err == nil {
		t.Error("an odd number of metric fields was accepted")
	}
}

func TestGoCPU(t *testing.T) {
	if got := goCPU(sampleBench); got != "Some CPU" {
		t.Errorf("goCPU = %q", got)
	}
	if got := goCPU("PASS\n"); got != "" {
		t.Errorf("goCPU without a header = %q", got)
	}
}

func TestMetricMedian(t *testing.T) {
	rs := []result{
		{Name: "B", Metrics: map[string]float64{"x_raw": 0.9}},
		{Name: "B", Metrics: map[string]float64{"x_raw": 0.5}},
		{Name: "C", Metrics: map[string]float64{"x_raw": 9}},
		{Name: "B", Metrics: map[string]float64{"x_raw": 0.7}},
	}
	if v, ok := metric(rs, "B", "x_raw"); !ok || v != 0.7 {
		t.Errorf("median %v %v, want 0.7", v, ok)
	}
	if v, ok := metric(rs[:2], "B", "x_raw"); !ok || v != 0.7 {
		t.Errorf("median of two %v, want 0.7", v)
	}
	if _, ok := metric(rs, "B", "ns/op"); ok {
		t.Error("a missing metric was found")
	}
}

func TestParseIdleRSS(t *testing.T) {
	out := "    long_test.go:468: idle run with 3 sources: VmRSS 39.4 MB (anonymous 14.1 MB, the binary's pages 25.3 MB), VmHWM 42.0 MB\n"
	m, ok := parseIdleRSS(out)
	if !ok || m != (memory{RSS: 39.4, Anon: 14.1, File: 25.3, HWM: 42.0}) {
		t.Errorf("%+v %v", m, ok)
	}
	if _, ok := parseIdleRSS("PASS\n"); ok {
		t.Error("found a measurement in an output without one")
	}
}

// TestEvaluateAndRender judges synthetic outputs: passing, failing and
// missing budgets, and a failed run.
func TestEvaluateAndRender(t *testing.T) {
	runs := map[string]*run{
		"append":    {Output: "BenchmarkAppend-2 40 1 ns/op 30000 ns/entry 24000 raw_ns/entry 0.80 x_raw\n", Load: 1.5},
		"verify":    {Output: sampleBench},
		"diff":      {Output: "BenchmarkDiff100k-2 10 1 ns/op 140 ms/diff\n"},
		"snapshot":  {Output: "BenchmarkSnapshot-2 40 1 ns/op 50e6 ns/snapshot 48e6 ns/raw 2 requests/op 0.96 x_raw 4.2 overhead_pct\n"},
		"export":    {Output: "--- FAIL: BenchmarkExport\n", Err: errors.New("go test ./internal/export: exit status 1\nbuild failed")},
		"idle":      {Output: "long_test.go:468: idle run with 3 sources: VmRSS 39.4 MB (anonymous 14.1 MB, the binary's pages 25.3 MB), VmHWM 42.0 MB\n"},
		"sagemaker": {Output: "BenchmarkPollUnchanged-2 20 1 ns/op 101 ListModelPackages/poll 1 ListModelPackageGroups/poll 1.3 x_raw\n"},
		"wandb":     {Output: "BenchmarkPollUnchanged/200x20/history=false-2 10 1 ns/op 12 requests/op 1.1 x_raw\n"},
	}
	rep := evaluate(runs)
	got := map[string]string{}
	for _, b := range rep.Budgets {
		switch {
		case b.Missing != "":
			got[b.Target] = "missing"
		case b.Pass:
			got[b.Target] = "pass " + b.Measured
		default:
			got[b.Target] = "fail " + b.Measured
		}
	}
	want := map[string]string{
		">= 0.75x raw":            "pass 0.80x raw",
		">= 0.75x raw, under 3 s": "pass 1.05x raw",
		"under 100 ms":            "fail 140 ms",
		"overhead under 10%":      "pass +4.2% (0.96x raw)",
		"under 30 s; peak RSS at 1M within 10% of 100k": "missing",
		"under 40 MB resident":                          "pass 39.4 MB",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("budgets (-want +got):\n%s", diff)
	}
	if rep.ok() {
		t.Error("a failing and a missing budget reported ok")
	}
	doc := render(machine{CPU: "Some CPU", Cores: 2}, rep, plan(false), runs, false)
	for _, s := range []string{"| **fail** |", "| not measured | — | go test ./internal/export: exit status 1 |", "11.2 s",
		"ListModelPackages 101.0", "| BenchmarkPollUnchanged/200x20/history=false | 12 | 1.10 |", "`go test -run ^$ -bench ^(BenchmarkVerify\\|BenchmarkVerifySmallBatches)$"} {
		if !strings.Contains(doc, s) {
			t.Errorf("document lacks %q:\n%s", s, doc)
		}
	}
}
