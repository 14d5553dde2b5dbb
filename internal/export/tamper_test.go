package export_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/export/exporttest"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// copyDir copies a bundle directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// tamperBundle exports a mid-period bundle of the story with a sample, so
// that every kind of file is present.
func tamperBundle(t *testing.T) (string, testKey) {
	t.Helper()
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, "fraud", "churn")
	bundle, sum := run(t, path, k, exporttest.Day(3, 0), exporttest.Day(8, 0), func(o *export.Options) { o.Sample, o.Seed = 3, "seed" })
	if sum.CarryIn != 3 || len(sum.Samples) != 3 {
		t.Fatalf("summary %+v: want 3 carried in and 3 samples", sum)
	}
	verify(t, bundle, k.pub)
	return bundle, k
}

// wantFailure checks that VerifyBundle fails with a problem containing each
// of want.
func wantFailure(t *testing.T, bundle string, keys []crypto.PublicKey, want ...string) {
	t.Helper()
	r, err := export.VerifyBundle(t.Context(), bundle, export.VerifyOptions{Keys: keys})
	if !errors.Is(err, export.ErrBundleInvalid) {
		t.Fatalf("verify: %v, want ErrBundleInvalid", err)
	}
	all := strings.Join(r.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no problem mentions %q:\n%s", w, all)
		}
	}
}

// TestTamperEveryFile changes one byte of each file of a bundle: the check
// fails naming that file.
func TestTamperEveryFile(t *testing.T) {
	bundle, k := tamperBundle(t)
	m := manifestOf(t, bundle)
	names := []string{export.FileManifest, export.FileSignature}
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	if len(names) < 20 {
		t.Fatalf("only %d files: %v", len(names), names)
	}
	for _, name := range names {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			dir := copyDir(t, bundle)
			p := filepath.Join(dir, filepath.FromSlash(name))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				b = []byte("x")
			} else {
				b[len(b)/2] ^= 0x01
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			mention := name
			if name == export.FileManifest {
				mention = "manifest" // a parse error or a bad signature
			}
			wantFailure(t, dir, []crypto.PublicKey{k.pub}, mention)
		})
	}
	t.Run("removed", func(t *testing.T) {
		dir := copyDir(t, bundle)
		if err := os.Remove(filepath.Join(dir, export.FileExceptions)); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, dir, []crypto.PublicKey{k.pub}, "exceptions.csv: listed in the manifest but")
	})
	t.Run("added", func(t *testing.T) {
		dir := copyDir(t, bundle)
		if err := os.WriteFile(filepath.Join(dir, "extra.csv"), []byte("a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, dir, []crypto.PublicKey{k.pub}, "extra.csv: not listed in the manifest")
	})
}

// resign recomputes SHA256SUMS and the manifest's hashes after an edit and
// signs the manifest again with s, as an exporter with a bug, or anyone
// holding a key, would produce.
func resign(t *testing.T, dir string, s signature.Signer) {
	t.Helper()
	m := manifestOf(t, dir)
	hash := func(name string) export.FileHash {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return export.FileHash{Name: name, SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(b))}
	}
	var sums bytes.Buffer
	for i, f := range m.Files {
		if f.Name != export.FileSums {
			m.Files[i] = hash(f.Name)
			fmt.Fprintf(&sums, "%s  %s\n", m.Files[i].SHA256, f.Name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, export.FileSums), sums.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, f := range m.Files {
		if f.Name == export.FileSums {
			m.Files[i] = hash(f.Name)
		}
	}
	pub, _ := s.PublicKey()
	m.SignedBy, _ = ledger.Fingerprint(pub)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	sig, err := s.SignMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, export.FileManifest), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, export.FileSignature), sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editLine replaces line n (from 1) of a file; an empty replacement
// removes it.
func editLine(t *testing.T, path string, n int, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if n > len(lines) {
		t.Fatalf("%s has no line %d", path, n)
	}
	lines[n-1] = edit(lines[n-1])
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(string) string { return "" }

// TestTamperResigned edits rows and entries and recomputes every hash and
// the signature with the real key: re-derivation and the proofs still name
// what changed. Re-signed with another key, the signature fails.
func TestTamperResigned(t *testing.T) {
	bundle, k := tamperBundle(t)
	keys := []crypto.PublicKey{k.pub}
	// Sanity: re-signing an untouched bundle changes nothing.
	same := copyDir(t, bundle)
	resign(t, same, k.signer)
	verify(t, same, k.pub)

	for _, tc := range []struct {
		name string
		file string
		line int
		edit func(string) string
		want []string
	}{
		{"population row removed", export.FilePopulation, 2, remove, []string{"population.csv line 2: differs from what events.jsonl and carry_in.jsonl derive", "population.xlsx"}},
		{"population verdict edited", export.FilePopulation, 3, func(s string) string { return strings.Replace(s, ",approved,", ",late,", 1) },
			[]string{"population.csv line 3: differs"}},
		{"exception row removed", export.FileExceptions, 4, remove, []string{"exceptions.csv line 4: differs"}},
		{"history row removed", export.FileHistory, 2, remove, []string{"production_history.csv line 2: differs"}},
		{"inventory row edited", export.FileInventory, 2, func(s string) string { return strings.Replace(s, "active", "deleted", 1) },
			[]string{"inventory.csv line 2: differs"}},
		{"coverage row removed", export.FileCoverage, 2, remove, []string{"coverage.csv line 2: differs"}},
		{"events line edited", export.FileEvents, 6, func(s string) string { return strings.Replace(s, `"actor":"`, `"actor":"x`, 1) },
			[]string{"events.jsonl: its entries and the manifest's range proof do not lead to the checkpoint's root"}},
		{"events line removed", export.FileEvents, 6, remove, []string{"events.jsonl line 6: seq"}},
		{"carry-in line edited", export.FileCarryIn, 2, func(s string) string { return strings.Replace(s, `"actor":"`, `"actor":"x`, 1) },
			[]string{"carry_in.jsonl line 2 (seq"}},
		{"carry-in line removed", export.FileCarryIn, 1, remove, []string{"carry_in.jsonl line 1 (seq"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, bundle)
			editLine(t, filepath.Join(dir, tc.file), tc.line, tc.edit)
			resign(t, dir, k.signer)
			wantFailure(t, dir, keys, tc.want...)
		})
	}
	t.Run("re-signed by another key", func(t *testing.T) {
		dir := copyDir(t, bundle)
		editLine(t, filepath.Join(dir, export.FilePopulation), 2, remove)
		mallory := newKey(t, ledger.KeyTypeEd25519)
		resign(t, dir, mallory.signer)
		wantFailure(t, dir, keys, "manifest.sig: the manifest says it was signed by key", "population.csv line 2: differs")
	})
	t.Run("sample packet edited", func(t *testing.T) {
		dir := copyDir(t, bundle)
		seq := manifestOf(t, dir).Samples[0]
		editLine(t, filepath.Join(dir, export.DirSamples, seqStr(seq), "entries.jsonl"), 1, func(s string) string { return strings.Replace(s, `"actor":"`, `"actor":"x`, 1) })
		resign(t, dir, k.signer)
		wantFailure(t, dir, keys, fmt.Sprintf("samples/%d/entries.jsonl line 1 (seq", seq))
	})
	t.Run("sample replaced", func(t *testing.T) {
		dir := copyDir(t, bundle)
		var m export.Manifest
		b, _ := os.ReadFile(filepath.Join(dir, export.FileManifest))
		json.Unmarshal(b, &m)
		m.Parameters.Seed = "another seed"
		b, _ = json.MarshalIndent(m, "", "  ")
		os.WriteFile(filepath.Join(dir, export.FileManifest), append(b, '\n'), 0o644)
		resign(t, dir, k.signer)
		wantFailure(t, dir, keys, "are not the 3 rows of population.csv with the smallest rank")
	})
}

// TestZipBundle writes and verifies a .zip bundle, and finds a changed
// entry inside it.
func TestZipBundle(t *testing.T) {
	k := newKey(t, ledger.KeyTypeECDSAP256)
	path, _ := storyLedger(t, k, "fraud")
	out := filepath.Join(t.TempDir(), "q1.zip")
	if _, err := export.Run(t.Context(), export.Options{Ledger: path, From: exporttest.Day(0, 0), To: exporttest.Day(8, 0), Out: out,
		Signer: k.signer, Keys: []crypto.PublicKey{k.pub}}); err != nil {
		t.Fatal(err)
	}
	r := verify(t, out, k.pub)
	if r.Files != 12 || r.Events != 30 {
		t.Errorf("checked %d files and %d entries, want 12 and 30", r.Files, r.Events)
	}
	if _, err := export.Run(t.Context(), export.Options{Ledger: path, From: exporttest.Day(0, 0), To: exporttest.Day(8, 0), Out: out,
		Signer: k.signer}); !errors.Is(err, export.ErrOutExists) {
		t.Errorf("export over an existing zip: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the bundle: %v", entries)
	}
}

// TestOutEmptyDir exports into an existing empty directory, and refuses a
// non-empty one.
func TestOutEmptyDir(t *testing.T) {
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, "fraud")
	out := t.TempDir()
	opts := export.Options{Ledger: path, From: exporttest.Day(0, 0), To: exporttest.Day(8, 0), Out: out, Signer: k.signer, Keys: []crypto.PublicKey{k.pub}}
	if _, err := export.Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	verify(t, out, k.pub)
	if _, err := export.Run(t.Context(), opts); !errors.Is(err, export.ErrOutExists) {
		t.Fatalf("export into a non-empty directory: %v", err)
	}
}

// TestEmptyPeriod exports a period with no entry: the bundle still proves,
// with its range proof, that the ledger holds none there, and carries the
// state that held.
func TestEmptyPeriod(t *testing.T) {
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, "fraud")
	for _, tc := range []struct {
		name     string
		from, to time.Time
		carry    int64
	}{
		{"after the ledger", exporttest.Day(30, 0), exporttest.Day(31, 0), 2},
		{"between entries", exporttest.Day(4, 12), exporttest.Day(5, 0), 2},
		{"before the ledger", exporttest.Day(-5, 0), exporttest.Day(-4, 0), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle, sum := run(t, path, k, tc.from, tc.to, nil)
			r := verify(t, bundle, k.pub)
			if sum.Entries != 0 || sum.Population != 0 || r.Events != 0 || sum.CarryIn != tc.carry || sum.Last != sum.First-1 {
				t.Errorf("summary %+v, report events %d", sum, r.Events)
			}
			hist := table(t, filepath.Join(bundle, export.FileHistory))
			if tc.carry > 0 && (len(hist) != 1 || hist[0]["to"] != "") {
				t.Errorf("production history %v: want the carried-in state, lasting", hist)
			}
			page, err := os.ReadFile(filepath.Join(bundle, export.FileReport))
			if err != nil {
				t.Fatal(err)
			}
			if noModel := strings.Contains(string(page), "No model had an entry in the period."); noModel != (tc.carry == 0) {
				t.Errorf("report.html says no model: %t, want %t", noModel, tc.carry == 0)
			}
		})
	}
}
