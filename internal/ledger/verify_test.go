package ledger_test

import (
	"crypto"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

func pubKeys(ss ...signature.Signer) []crypto.PublicKey {
	var out []crypto.PublicKey
	for _, s := range ss {
		out = append(out, ledgertest.PublicKey(s))
	}
	return out
}

// fixture is a ledger of 6 batches of 300 entries (checkpoints at 300, 600,
// ..., 1800), built once and copied for each case.
var fixture struct {
	once   sync.Once
	data   []byte
	signer signature.Signer
	cps    map[int64][]byte
	err    error
}

func tamperFixture(t *testing.T) (path string, s signature.Signer, checkpoints map[int64][]byte) {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "ledger-fixture")
		if err != nil {
			fixture.err = err
			return
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "ledger.db")
		if fixture.signer, _, fixture.err = ledgertest.NewSigner(ledger.KeyTypeEd25519); fixture.err != nil {
			return
		}
		if fixture.err = ledgertest.Build(p, fixture.signer, testOrigin, 6, 300); fixture.err != nil {
			return
		}
		l, err := ledger.OpenReadOnly(p)
		if err != nil {
			fixture.err = err
			return
		}
		defer l.Close()
		fixture.cps = map[int64][]byte{}
		for size := int64(300); size <= 1800; size += 300 {
			if fixture.cps[size], fixture.err = l.Checkpoint(t.Context(), size); fixture.err != nil {
				return
			}
		}
		fixture.data, fixture.err = os.ReadFile(p)
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	path = filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, fixture.data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, fixture.signer, fixture.cps
}

func TestVerifyUntouched(t *testing.T) {
	path, s, cps := tamperFixture(t)
	var progress []int64
	r, err := ledger.Verify(t.Context(), path, ledger.VerifyOptions{
		Keys: pubKeys(s), Checkpoints: [][]byte{cps[600], cps[1800]},
		Progress: func(done, total int64) { progress = append(progress, done, total) },
	})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := ledger.Fingerprint(ledgertest.PublicKey(s))
	if r.Entries != 1800 || r.Checkpoints != 6 || r.ExternalCheckpoints != 2 || r.TrustedEmbeddedKey ||
		!slices.Equal(r.Sources, []string{"mlflow-prod", "wandb-prod"}) || len(r.Keys) != 1 || r.Keys[0].Fingerprint != fp || !r.Keys[0].Trusted {
		t.Fatalf("report %+v", r)
	}
	if n := len(progress); n < 2 || progress[n-2] != 1800 || progress[n-1] != 1800 {
		t.Fatalf("progress %v", progress)
	}
	if _, err := ledger.Verify(t.Context(), path, ledger.VerifyOptions{}); !errors.Is(err, ledger.ErrNoTrustedKey) {
		t.Fatalf("verify without a key: %v", err)
	}
	r, err = ledger.Verify(t.Context(), path, ledger.VerifyOptions{TrustEmbeddedKey: true})
	if err != nil || !r.TrustedEmbeddedKey {
		t.Fatalf("trusting the embedded key: %+v %v", r, err)
	}
	other := newSigner(t, ledger.KeyTypeEd25519)
	_, err = ledger.Verify(t.Context(), path, ledger.VerifyOptions{Keys: pubKeys(s, other)})
	if !errors.Is(err, ledger.ErrTampered) || !strings.Contains(err.Error(), "never in force") {
		t.Fatalf("verify with an extra key never in force: %v", err)
	}
}

// TestVerifyTamperMatrix edits real ledger files with raw SQL (triggers
// dropped) and checks that verify names the first bad seq, checkpoint, tile
// or source.
func TestVerifyTamperMatrix(t *testing.T) {
	attacker := newSigner(t, ledger.KeyTypeEd25519)
	type want struct {
		seq    []int64 // any of these
		size   int64
		tile   string
		source string
		text   string
	}
	for _, tc := range []struct {
		name   string
		tamper func(path string) error
		want   want
	}{
		{"leaf byte changed", func(p string) error { return ledgertest.FlipLeafByte(p, 700) }, want{seq: []int64{700}, text: "seq 700: the leaf does not match the Merkle tree"}},
		{"first leaf changed", func(p string) error { return ledgertest.FlipLeafByte(p, 0) }, want{seq: []int64{0}}},
		{"last leaf changed", func(p string) error { return ledgertest.FlipLeafByte(p, 1799) }, want{seq: []int64{1799}}},
		{"entry deleted", func(p string) error { return ledgertest.DeleteEntry(p, 700) }, want{seq: []int64{700}, text: "seq 700: the entry at this position says seq 701"}},
		{"last entry deleted", func(p string) error { return ledgertest.DeleteEntry(p, 1799) }, want{seq: []int64{1799}, text: "seq 1799: entry missing"}},
		{"entry inserted", func(p string) error { return ledgertest.InsertEntry(p, 700) }, want{seq: []int64{700, 701}}},
		{"entry appended", ledgertest.AppendEntry, want{seq: []int64{1800}, text: "unsigned tail from seq 1800"}},
		{"entries swapped", func(p string) error { return ledgertest.SwapEntries(p, 700, 705) }, want{seq: []int64{700}}},
		{"checkpoint root changed", func(p string) error { return ledgertest.CorruptCheckpoint(p, 900, false) }, want{size: 900}},
		{"checkpoint signature changed", func(p string) error { return ledgertest.CorruptCheckpoint(p, 900, true) }, want{size: 900, text: "signature does not verify"}},
		{"last checkpoint deleted", ledgertest.DeleteLastCheckpoint, want{seq: []int64{1500}, text: "unsigned tail from seq 1500"}},
		{"state edited", func(p string) error { return ledgertest.EditState(p, "mlflow-prod") }, want{source: "mlflow-prod", text: "does not match the latest snapshot"}},
		{"state deleted", func(p string) error { return ledgertest.DeleteState(p, "wandb-prod") }, want{source: "wandb-prod", text: "state row missing"}},
		{"key replaced and everything re-signed", func(p string) error { return ledgertest.Rekey(p, attacker) }, want{size: 300, text: "is not a trusted key"}},
		{"level-0 tile changed", func(p string) error { return editTile(p, 0, 2, 5) }, want{tile: "0/2", text: "bad tile"}},
		{"level-1 tile changed", func(p string) error { return editTile(p, 1, 0, 3) }, want{tile: "1/0", text: "bad tile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, s, _ := tamperFixture(t)
			if err := tc.tamper(path); err != nil {
				t.Fatal(err)
			}
			r, err := ledger.Verify(t.Context(), path, ledger.VerifyOptions{Keys: pubKeys(s)})
			if !errors.Is(err, ledger.ErrTampered) {
				t.Fatalf("verify: %v", err)
			}
			p := r.Problems[0]
			w := tc.want
			switch {
			case w.seq != nil && !slices.Contains(w.seq, p.Seq),
				w.size != 0 && p.Size != w.size,
				w.tile != "" && p.Tile != w.tile,
				w.source != "" && p.Source != w.source,
				w.text != "" && !strings.Contains(p.Message, w.text):
				t.Fatalf("first problem %+v, want %+v\nall: %v", p, w, r.Problems)
			}
			if !strings.Contains(err.Error(), p.Message) {
				t.Fatalf("error %q does not name the first problem %q", err, p.Message)
			}
		})
	}
}

// editTile changes hash number i of tile level/idx.
func editTile(path string, level, idx, i int) error {
	return ledgertest.Edit(path, func(tx *sql.Tx) error {
		var h []byte
		if err := tx.QueryRow(`SELECT hashes FROM tiles WHERE level = ? AND idx = ?`, level, idx).Scan(&h); err != nil {
			return err
		}
		h[i*32] ^= 1
		_, err := tx.Exec(`UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?`, h, level, idx)
		return err
	})
}

func TestVerifyTruncationNeedsKeptCheckpoint(t *testing.T) {
	path, s, cps := tamperFixture(t)
	if err := ledgertest.TruncateBatches(path, 4, 300); err != nil {
		t.Fatal(err)
	}
	// Cut consistently, the file alone cannot tell ...
	r, err := ledger.Verify(t.Context(), path, ledger.VerifyOptions{Keys: pubKeys(s), Checkpoints: [][]byte{cps[900]}})
	if err != nil || r.Entries != 1200 || r.ExternalCheckpoints != 1 {
		t.Fatalf("truncated ledger with an older kept checkpoint: %+v %v", r, err)
	}
	// ... a checkpoint kept elsewhere does.
	r, err = ledger.Verify(t.Context(), path, ledger.VerifyOptions{Keys: pubKeys(s), Checkpoints: [][]byte{cps[1800]}})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 1800 || !strings.Contains(err.Error(), "covers 1800 entries but the ledger holds only 1200") {
		t.Fatalf("truncated ledger with the kept checkpoint: %v", err)
	}
}

func TestVerifyKeptCheckpointOfAnotherHistory(t *testing.T) {
	path, s, _ := tamperFixture(t)
	// A checkpoint signed by the right key over a different history: the
	// consistency proof fails.
	signer, err := ledger.NewNoteSigner(testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := note.Sign(&note.Note{Text: testOrigin + "\n1000\n" + strings.Repeat("A", 43) + "=\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ledger.Verify(t.Context(), path, ledger.VerifyOptions{Keys: pubKeys(s), Checkpoints: [][]byte{forged}})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 1000 || !strings.Contains(err.Error(), "does not extend the kept checkpoint") {
		t.Fatalf("verify: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "l.db")
	a := newSigner(t, ledger.KeyTypeEd25519)
	b := newSigner(t, ledger.KeyTypeECDSAP256)
	fpA, _ := ledger.Fingerprint(ledgertest.PublicKey(a))
	fpB, _ := ledger.Fingerprint(ledgertest.PublicKey(b))
	if err := ledgertest.Build(path, a, testOrigin, 3, 10); err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, path, b) // appends key.rotated at seq 30, signed by B
	rec, err := l.Record(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != ledger.KindKeyRotated || rec.Payload["old"] != fpA || rec.Payload["new"] != fpB || rec.Source != "" || rec.SourceType != "registrywatch" {
		t.Fatalf("rotation entry %+v", rec)
	}
	cp, err := l.Checkpoint(ctx, 31)
	if err != nil {
		t.Fatal(err)
	}
	openCheckpoint(t, cp, ledgertest.PublicKey(b))
	if err := ledgertest.Fill(ctx, l, 3, 5, 10); err != nil {
		t.Fatal(err)
	}
	keys, err := l.KeysInForce(ctx)
	if err != nil || len(keys) != 2 || keys[0].Fingerprint != fpA || keys[1].Fingerprint != fpB {
		t.Fatalf("keys in force %+v %v", keys, err)
	}
	l.Close()

	r, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: pubKeys(a, b)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.KeyInForce{{Fingerprint: fpA, FromSeq: 0, Trusted: true}, {Fingerprint: fpB, FromSeq: 30, Trusted: true}}, r.Keys); diff != "" {
		t.Fatalf("keys (-want +got): %s", diff)
	}
	r, err = ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: pubKeys(a)})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 31 || !strings.Contains(err.Error(), "not a trusted key") {
		t.Fatalf("verify with A only: %v", err)
	}
	r, err = ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: pubKeys(b)})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 10 {
		t.Fatalf("verify with B only: %v", err)
	}
	if _, err := ledger.Verify(ctx, path, ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
		t.Fatalf("trusting the embedded keys: %v", err)
	}

	// A checkpoint after the rotation signed with A is refused.
	signerA, _ := ledger.NewNoteSigner(testOrigin, a)
	err = ledgertest.Edit(path, func(tx *sql.Tx) error {
		var n []byte
		if err := tx.QueryRow(`SELECT note FROM checkpoints WHERE size = 41`).Scan(&n); err != nil {
			return err
		}
		text := string(n[:strings.Index(string(n), "\n\n")+1])
		resigned, err := note.Sign(&note.Note{Text: text}, signerA)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE checkpoints SET note = ? WHERE size = 41`, resigned)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err = ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: pubKeys(a, b)})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 41 || !strings.Contains(err.Error(), "signature does not verify with key "+fpB) {
		t.Fatalf("checkpoint signed by the retired key: %v", err)
	}
}

func TestOpenRefusesTamperedTail(t *testing.T) {
	path, s, _ := tamperFixture(t)
	if err := ledgertest.DeleteLastCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(path, ledger.Options{Signer: s}); !errors.Is(err, ledger.ErrTampered) {
		t.Fatalf("open with an unsigned tail: %v", err)
	}
	path, s, _ = tamperFixture(t)
	if err := editTile(path, 0, 7, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(path, ledger.Options{Signer: s}); !errors.Is(err, ledger.ErrTampered) {
		t.Fatalf("open with a bad edge tile: %v", err)
	}
}
