package export_test

import (
	"bytes"
	"crypto"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/export/exporttest"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

// testKey is a signing key with its public key.
type testKey struct {
	signer signature.Signer
	pub    crypto.PublicKey
	pem    []byte
}

func newKey(t testing.TB, keyType string) testKey {
	t.Helper()
	priv, pubPEM, _, err := ledger.GenerateKey(keyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.ParseSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ledger.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, pub: pub, pem: pubPEM}
}

// storyLedger writes the story of each model into a new ledger signed by k.
func storyLedger(t testing.TB, k testKey, models ...string) (string, []exporttest.Story) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(path, ledger.Options{Signer: k.signer, Origin: "example.com/ledger"})
	if err != nil {
		t.Fatal(err)
	}
	stories, err := exporttest.WriteStory(t.Context(), l, models)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, stories
}

// run exports [from, to) of the ledger at path into a new directory.
func run(t testing.TB, path string, k testKey, from, to time.Time, mod func(*export.Options)) (string, *export.Summary) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle")
	opts := export.Options{Ledger: path, From: from, To: to, Out: out, Signer: k.signer, Keys: []crypto.PublicKey{k.pub},
		Tool: "registrywatch test", Clock: clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))}
	if mod != nil {
		mod(&opts)
	}
	sum, err := export.Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return out, sum
}

// verify checks a bundle and fails the test on any problem.
func verify(t testing.TB, bundle string, keys ...crypto.PublicKey) *export.BundleReport {
	t.Helper()
	r, err := export.VerifyBundle(t.Context(), bundle, export.VerifyOptions{Keys: keys})
	if err != nil {
		t.Fatalf("verify %s: %v", bundle, err)
	}
	return r
}

// table reads a CSV file of a bundle as maps by column name.
func table(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, c := range recs[0] {
			m[c] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func bySeq(rows []map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, r := range rows {
		out[r["ledger_seq"]] = r
	}
	return out
}

func seqStr(n int64) string { return strconv.FormatInt(n, 10) }

func manifestOf(t testing.TB, bundle string) *export.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, export.FileManifest))
	if err != nil {
		t.Fatal(err)
	}
	var m export.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestStoryRows checks every derived row of the synthetic story against what
// it is known to be.
func TestStoryRows(t *testing.T) {
	k := newKey(t, ledger.KeyTypeEd25519)
	path, stories := storyLedger(t, k, "fraud")
	s := stories[0].Seq
	bundle, sum := run(t, path, k, exporttest.Day(0, 0), exporttest.Day(8, 0), nil)
	verify(t, bundle, k.pub)
	if !sum.Complete || sum.Population != 4 || sum.Exceptions != 6 || sum.Open != 1 {
		t.Errorf("summary %+v", sum)
	}

	pop := bySeq(table(t, filepath.Join(bundle, export.FilePopulation)))
	want := map[string]map[string]string{
		seqStr(s[exporttest.Missing]): {"version": "1", "verdict": "late", "superseded_by": seqStr(s[exporttest.Late]),
			"approver": "alice@example.com", "approved_before": "no", "approver_is_promoter": "no", "change_type": "standard", "result": ""},
		seqStr(s[exporttest.Approved]): {"version": "2", "verdict": "approved", "superseded_by": "", "approver": "bob@example.com",
			"approved_before": "yes", "approver_is_promoter": "no", "result": ""},
		seqStr(s[exporttest.Rollback]): {"version": "1", "verdict": "approved", "change_type": "rollback", "approved_before": "yes",
			"duration_min_ms": "3540000", "duration_max_ms": "3660000", "objective_ms": "1800000", "result": "overrun"},
		seqStr(s[exporttest.SelfApproved]): {"version": "3", "verdict": "self_approved", "approver": "dave@example.com",
			"promoter": "dave@example.com", "approved_before": "no", "approver_is_promoter": "yes"},
	}
	if len(pop) != len(want) {
		t.Errorf("population has %d rows, want %d: %v", len(pop), len(want), pop)
	}
	for seq, cols := range want {
		row, ok := pop[seq]
		if !ok {
			t.Errorf("no population row for seq %s", seq)
			continue
		}
		for c, v := range cols {
			if row[c] != v {
				t.Errorf("population seq %s: %s = %q, want %q", seq, c, row[c], v)
			}
		}
	}

	ex := bySeq(table(t, filepath.Join(bundle, export.FileExceptions)))
	wantEx := map[string][2]string{
		seqStr(s[exporttest.Missing]):      {export.EndedLateApproval, seqStr(s[exporttest.Late])},
		seqStr(s[exporttest.Late]):         {export.EndedLateApproval, seqStr(s[exporttest.Late])},
		seqStr(s[exporttest.Overdue]):      {export.EndedRollbackCompleted, seqStr(s[exporttest.PCRollback])},
		seqStr(s[exporttest.Rollback]):     {export.EndedRollbackCompleted, seqStr(s[exporttest.Rollback])},
		seqStr(s[exporttest.SelfApproved]): {export.EndedOpen, ""},
		seqStr(s[exporttest.CoverageLate]): {export.EndedGapClosed, seqStr(s[exporttest.CoverageGap])},
	}
	if len(ex) != len(wantEx) {
		t.Errorf("exceptions has %d rows, want %d", len(ex), len(wantEx))
	}
	for seq, w := range wantEx {
		if got := [2]string{ex[seq]["ended"], ex[seq]["ended_seq"]}; got != w {
			t.Errorf("exception seq %s: ended %v, want %v", seq, got, w)
		}
	}

	hist := table(t, filepath.Join(bundle, export.FileHistory))
	var serving []string
	for _, r := range hist {
		serving = append(serving, r["serving_version"]+"@"+r["ledger_seq"])
	}
	wantServing := []string{"1@" + seqStr(s[exporttest.PCFirst]), "2@" + seqStr(s[exporttest.PCSecond]), "@" + seqStr(s[exporttest.PCVacancy]),
		"1@" + seqStr(s[exporttest.PCRollback]), "3@" + seqStr(s[exporttest.PCThird])}
	if diff := cmp.Diff(wantServing, serving); diff != "" {
		t.Errorf("production history (-want +got):\n%s", diff)
	}
	if last := hist[len(hist)-1]; last["to"] != "" {
		t.Errorf("the last state lasts past the period, to = %q", last["to"])
	}

	inv := table(t, filepath.Join(bundle, export.FileInventory))
	if len(inv) != 1 || inv[0]["serving_version"] != "3" || inv[0]["model"] != "fraud" || inv[0]["last_production_change_seq"] != seqStr(s[exporttest.PCThird]) {
		t.Errorf("inventory %v", inv)
	}
	cov := table(t, filepath.Join(bundle, export.FileCoverage))
	if len(cov) != 2 || cov[0]["kind"] != "coverage.gap" || cov[0]["missed_ticks"] != "119" || cov[1]["polls"] != "60" || cov[1]["failures"] != "58" {
		t.Errorf("coverage %v", cov)
	}
}

// TestTamperedLedgerRefused checks that export refuses a ledger that fails
// verification, and writes nothing.
func TestTamperedLedgerRefused(t *testing.T) {
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, "fraud")
	flipLeaf(t, path, 5)
	out := filepath.Join(t.TempDir(), "bundle")
	_, err := export.Run(t.Context(), export.Options{Ledger: path, From: exporttest.Day(0, 0), To: exporttest.Day(8, 0), Out: out,
		Signer: k.signer, Keys: []crypto.PublicKey{k.pub}})
	if !errors.Is(err, ledger.ErrTampered) || !strings.Contains(err.Error(), "seq 5") {
		t.Fatalf("export of a tampered ledger: %v, want ErrTampered naming seq 5", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the bundle was written: %v", err)
	}
	other := newKey(t, ledger.KeyTypeEd25519)
	path2, _ := storyLedger(t, k, "fraud")
	_, err = export.Run(t.Context(), export.Options{Ledger: path2, From: exporttest.Day(0, 0), To: exporttest.Day(8, 0), Out: out,
		Signer: k.signer, Keys: []crypto.PublicKey{other.pub}})
	if !errors.Is(err, ledger.ErrTampered) {
		t.Fatalf("export verified against the wrong key: %v", err)
	}
}

// flipLeaf changes one byte of an entry's payload in the ledger file, as
// someone holding the file could.
func flipLeaf(t *testing.T, path string, seq int64) {
	t.Helper()
	if err := ledgertest.FlipLeafByte(path, seq); err != nil {
		t.Fatal(err)
	}
}

// TestSampleMatchesShell checks the sample against the loop of
// docs/AUDITOR.md run with sha256sum.
func TestSampleMatchesShell(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum is not installed")
	}
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, "m1", "m2", "m3", "m4")
	block := auditorBlocks(t)["sample"]
	for _, tc := range []struct {
		seed string
		n    int
	}{{"Q3 2026 audit", 5}, {"it's a seed with 'quotes' and ünïcode", 20}} {
		bundle, sum := run(t, path, k, exporttest.Day(0, 0), exporttest.Day(8, 0), func(o *export.Options) { o.Sample, o.Seed = tc.n, tc.seed })
		cmd := exec.Command("sh", "-e", "-c", block)
		cmd.Dir = bundle
		cmd.Env = append(os.Environ(), "SEED="+tc.seed, "N="+strconv.Itoa(tc.n))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sample loop: %v\n%s", err, out)
		}
		var shell []int64
		for _, f := range strings.Fields(string(out)) {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatalf("sample loop printed %q", out)
			}
			shell = append(shell, n)
		}
		want := min(tc.n, int(sum.Population))
		if len(shell) != want {
			t.Errorf("seed %q: the loop printed %d rows, want %d", tc.seed, len(shell), want)
		}
		if !slices.Equal(shell, sum.Samples) || !slices.Equal(shell, manifestOf(t, bundle).Samples) {
			t.Errorf("seed %q: shell %v, export %v", tc.seed, shell, sum.Samples)
		}
		dirs, err := os.ReadDir(filepath.Join(bundle, export.DirSamples))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range dirs {
			names = append(names, d.Name())
		}
		var wantNames []string
		for _, s := range shell {
			wantNames = append(wantNames, seqStr(s))
		}
		slices.Sort(wantNames)
		if !slices.Equal(names, wantNames) {
			t.Errorf("seed %q: samples/ holds %v, want %v", tc.seed, names, wantNames)
		}
		verify(t, bundle, k.pub)
	}
}

// auditorBlocks returns the shell blocks of docs/AUDITOR.md by marker.
func auditorBlocks(t testing.TB) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "AUDITOR.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- auditor-test: ([a-z0-9]+) -->\n```sh\n(.*?)```")
	blocks := map[string]string{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		blocks[string(m[1])] = string(m[2])
	}
	for _, name := range []string{"bundleed25519", "bundleecdsa", "bundlesums", "sample"} {
		if blocks[name] == "" {
			t.Fatalf("docs/AUDITOR.md has no %q command block", name)
		}
	}
	return blocks
}

// TestManifestOpenSSL checks manifest.sig and the files with the exact
// commands of docs/AUDITOR.md, with stock openssl and sha256sum.
func TestManifestOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	blocks := auditorBlocks(t)
	for _, tc := range []struct{ keyType, block, ok string }{
		{ledger.KeyTypeEd25519, "bundleed25519", "Signature Verified Successfully"},
		{ledger.KeyTypeECDSAP256, "bundleecdsa", "Verified OK"},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			k := newKey(t, tc.keyType)
			path, _ := storyLedger(t, k, "fraud")
			bundle, _ := run(t, path, k, exporttest.Day(0, 0), exporttest.Day(8, 0), nil)
			pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bundle, "..", "ledger.pub"), pemBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			sh := func(script string) (string, error) {
				cmd := exec.Command("sh", "-e", "-c", strings.ReplaceAll(script, "ledger.pub", "../ledger.pub"))
				cmd.Dir = bundle
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			out, err := sh(blocks[tc.block])
			if err != nil || !strings.Contains(out, tc.ok) {
				t.Fatalf("openssl on an untouched manifest: %v\n%s", err, out)
			}
			out, err = sh(blocks["bundlesums"])
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if err != nil || len(lines) != 3 || lines[0] != lines[1] || len(lines[0]) != 64 || lines[2] != "all files OK" {
				t.Fatalf("sha256sum check: %v\n%s", err, out)
			}
			// One byte changed in the manifest: openssl refuses.
			mpath := filepath.Join(bundle, export.FileManifest)
			b, _ := os.ReadFile(mpath)
			if err := os.WriteFile(mpath, bytes.Replace(b, []byte(`"complete": true`), []byte(`"complete": fals`), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := sh(blocks[tc.block]); err == nil || strings.Contains(out, tc.ok) {
				t.Fatalf("openssl accepted a changed manifest:\n%s", out)
			}
			// One byte changed in a file: sha256sum refuses.
			if err := os.WriteFile(filepath.Join(bundle, export.FileCoverage), []byte("source\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := sh(blocks["bundlesums"]); err == nil || strings.Contains(out, "all files OK") {
				t.Fatalf("sha256sum accepted a changed file:\n%s", out)
			}
		})
	}
}
