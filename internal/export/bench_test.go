package export_test

import (
	"bufio"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/export/exporttest"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// childEnv, when set, makes the test binary run one export as a child
// process of BenchmarkExport (its peak RSS is then the export's alone) and
// exit. Its value is the directory holding ledger.db, ledger.key and
// ledger.pub.
const childEnv = "REGISTRYWATCH_EXPORT_BENCH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(exportChild(dir, os.Stdout))
	}
	os.Exit(m.Run())
}

// childResult is what the child prints.
type childResult struct {
	Seconds float64 `json:"seconds"`
	PeakKB  int64   `json:"peak_kb"`
	// VerifyPeakKB is the peak when the ledger's verification ended.
	VerifyPeakKB int64 `json:"verify_peak_kb"`
	Entries      int64 `json:"entries"`
}

// exportChild exports the whole ledger of dir into a new bundle and prints
// the time it took and the process's peak resident set (VmHWM).
func exportChild(dir string, w io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	s, err := ledger.LoadSigner(ctx, filepath.Join(dir, "ledger.key"), nil)
	if err != nil {
		return fail(err)
	}
	pub, err := ledger.ReadPublicKey(filepath.Join(dir, "ledger.pub"))
	if err != nil {
		return fail(err)
	}
	out, err := os.MkdirTemp(dir, "bundle-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(out)
	var res childResult
	progress := func(phase string, _, _ int64) {
		if phase == "export" && res.VerifyPeakKB == 0 {
			res.VerifyPeakKB, _ = vmHWM()
		}
	}
	start := time.Now()
	sum, err := export.Run(ctx, export.Options{Ledger: filepath.Join(dir, "ledger.db"), Out: out, Signer: s, Keys: []crypto.PublicKey{pub},
		From: exporttest.Start, To: exporttest.Start.Add(10 * 365 * 24 * time.Hour), Progress: progress})
	if err != nil {
		return fail(err)
	}
	res.Seconds, res.Entries = time.Since(start).Seconds(), sum.Entries
	if res.PeakKB, err = vmHWM(); err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(w).Encode(res); err != nil {
		return fail(err)
	}
	return 0
}

// vmHWM reads the process's peak resident set size in kB.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// buildLedger fills the ledger in dir up to batches 1000-entry batches.
func buildLedger(b *testing.B, dir string, from, to int) {
	b.Helper()
	s, err := ledger.LoadSigner(b.Context(), filepath.Join(dir, "ledger.key"), nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{Signer: s, Origin: "example.com/bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := exporttest.Fill(b.Context(), l, from, to, 1000); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

func copyFile(b *testing.B, src, dst string) {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkExport exports whole ledgers of 100k and 1M entries (1000-entry
// batches of exporttest.Fill: about 0.5% findings and production changes)
// unfiltered into a directory. Each export runs in a child process (this
// test binary again) so that its peak RSS, read from VmHWM, is the
// export's own: verify of the ledger, the two passes, every file, the
// manifest. Metrics: export-s (the export's wall time, budget 30 s at 1M),
// peak-MB, and at 1M x_peak_100k (peak at 1M over peak at 100k; budget
// 1.10: memory must not grow with the ledger).
func BenchmarkExport(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a ledger of a million entries")
	}
	root := b.TempDir()
	small, large := filepath.Join(root, "100k"), filepath.Join(root, "1M")
	for _, d := range []string{small, large} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	priv, pub, _, err := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []string{small, large} {
		if err := os.WriteFile(filepath.Join(d, "ledger.key"), priv, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "ledger.pub"), pub, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	buildLedger(b, small, 0, 100)
	copyFile(b, filepath.Join(small, "ledger.db"), filepath.Join(large, "ledger.db"))
	buildLedger(b, large, 100, 1000)

	var peak100k float64
	for _, tc := range []struct {
		name    string
		dir     string
		entries int64
	}{{"100k", small, 100_000}, {"1M", large, 1_000_000}} {
		b.Run(tc.name, func(b *testing.B) {
			var secs, peak, verifyPeak float64
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+tc.dir)
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("export child: %v", err)
				}
				var res childResult
				if err := json.Unmarshal(out, &res); err != nil {
					b.Fatalf("export child printed %q: %v", out, err)
				}
				if res.Entries != tc.entries {
					b.Fatalf("exported %d entries, want %d", res.Entries, tc.entries)
				}
				secs += res.Seconds
				peak = max(peak, float64(res.PeakKB)/1024)
				verifyPeak = max(verifyPeak, float64(res.VerifyPeakKB)/1024)
			}
			b.ReportMetric(secs/float64(b.N), "export-s")
			b.ReportMetric(peak, "peak-MB")
			b.ReportMetric(verifyPeak, "verify-peak-MB")
			if tc.name == "100k" {
				peak100k = peak
			} else if peak100k > 0 {
				b.ReportMetric(peak/peak100k, "x_peak_100k")
			}
		})
	}
}
