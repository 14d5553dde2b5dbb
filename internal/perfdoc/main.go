// Command perfdoc runs the benchmarks behind the budgets of DESIGN.md
// section 9, one `go test` at a time, and writes docs/PERFORMANCE.md from
// their output: a row per budget with the raw operation measured beside it,
// the target, the measured ratio and pass or fail, the absolute figures as
// orientation, and the machine and its load. Run it from the repository root
// (`make perf`):
//
//	go run ./internal/perfdoc -out docs/PERFORMANCE.md
//
// It takes five to ten minutes on two cores. It writes the document even when
// a benchmark fails (that budget then reads "not measured") and exits 1 if
// any budget was not met or not measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "docs/PERFORMANCE.md", "write the document to `FILE`")
	goCmd := flag.String("go", "go", "the go `command`")
	quick := flag.Bool("quick", false, "run each benchmark a few times only (a smoke test; the figures are not representative)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ok, err := generate(ctx, log, *goCmd, *out, *quick)
	if err != nil {
		log.Error("perfdoc", "error", err)
		os.Exit(1)
	}
	if !ok {
		log.Warn("some budgets were not met or not measured", "doc", *out)
		os.Exit(1)
	}
}

// machine describes where the benchmarks ran.
type machine struct {
	CPU       string
	Cores     int
	Kernel    string
	GoVersion string
	Commit    string
	Start     time.Time
	End       time.Time
	LoadStart string
	LoadEnd   string
}

func loadAverages() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// step is one `go test` of the plan.
type step struct {
	key  string
	what string
	args []string
}

// plan lists the runs, in order. Counts and benchtimes keep the whole run
// under ten minutes on two cores; quick shrinks them to a smoke test. The
// MLflow snapshot, the figure most sensitive to load, runs first: the
// benchmarks after it load both cores for minutes.
func plan(quick bool) []step {
	n := func(full, small string) string {
		if quick {
			return small
		}
		return full
	}
	return []step{
		{"snapshot", "MLflow snapshot", []string{"-run", "^$", "-bench", "^BenchmarkSnapshot(Cold)?$", "-benchtime", n("40x", "3x"), "-count", n("5", "1"), "./internal/sources/mlflow"}},
		{"append", "ledger append", []string{"-run", "^$", "-bench", "^BenchmarkAppend$", "-benchtime", n("40x", "3x"), "./internal/ledger"}},
		{"verify", "ledger verify", []string{"-run", "^$", "-bench", "^(BenchmarkVerify|BenchmarkVerifySmallBatches)$", "-benchtime", n("5x", "1x"), "./internal/ledger"}},
		{"diff", "diff", []string{"-run", "^$", "-bench", "^BenchmarkDiff100k$", "-benchtime", n("10x", "1x"), "./internal/watch"}},
		{"export", "export", []string{"-run", "^$", "-bench", "^BenchmarkExport$", "-benchtime", "1x", "./internal/export"}},
		{"idle", "idle run", []string{"-count=1", "-run", "^TestLongDaemon$/^IdleMemory$", "-v", "./cmd/registrywatch"}},
		{"sagemaker", "SageMaker poll", []string{"-run", "^$", "-bench", "^BenchmarkPollUnchanged$", "-benchtime", n("20x", "2x"), "./internal/sources/sagemaker"}},
		{"wandb", "W&B poll", []string{"-run", "^$", "-bench", "^BenchmarkPollUnchanged$", "-benchtime", n("10x", "2x"), "./internal/sources/wandb"}},
	}
}

// generate runs the plan and writes the document; ok reports whether every
// budget was measured and met.
func generate(ctx context.Context, log *slog.Logger, goCmd, out string, quick bool) (bool, error) {
	root, err := os.Getwd()
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return false, fmt.Errorf("run perfdoc from the repository root: %w", err)
	}
	m := machine{
		CPU:       cpuModel(),
		Cores:     runtime.NumCPU(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion: output(root, goCmd, "env", "GOVERSION"),
		Commit:    output(root, "git", "describe", "--always", "--dirty"),
		Start:     time.Now().UTC(),
		LoadStart: loadAverages(),
	}
	runs := map[string]*run{}
	var order []step
	for _, s := range plan(quick) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		log.Info("running", "benchmark", s.what, "load", loadAverage())
		r := goTest(ctx, goCmd, root, s.args...)
		if r.Err != nil {
			log.Warn("benchmark failed", "benchmark", s.what, "error", r.Err)
		}
		runs[s.key] = r
		order = append(order, s)
	}
	m.End, m.LoadEnd = time.Now().UTC(), loadAverages()
	for _, s := range order {
		if cpu := goCPU(runs[s.key].Output); cpu != "" {
			m.CPU = cpu + " (" + m.CPU + ")"
			break
		}
	}
	d := evaluate(runs)
	text := render(m, d, order, runs, quick)
	if err := writeFile(out, text); err != nil {
		return false, err
	}
	log.Info("written", "doc", out)
	return d.ok(), nil
}

// writeFile writes a file through a temporary name and a rename.
func writeFile(path, text string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".perfdoc-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
