package ledger_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

const testOrigin = "example.com/test-ledger"

func newSigner(t testing.TB, keyType string) signature.Signer {
	t.Helper()
	s, _, err := ledgertest.NewSigner(keyType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openLedger(t testing.TB, path string, s signature.Signer) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(path, ledger.Options{Signer: s, Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var at = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func change(kind, model, version string) ledger.Entry {
	return ledger.Entry{Kind: kind, Source: "mlflow-prod", SourceType: "mlflow", Model: model, ModelID: model + "@1",
		Version: version, Actor: "alice", ObservedAt: at, Payload: map[string]any{"to": "Production"}}
}

func finding(kind, model, version string, trigger any) ledger.Entry {
	return ledger.Entry{Kind: kind, Source: "mlflow-prod", SourceType: "mlflow", Model: model, ModelID: model + "@1",
		Version: version, Actor: ledger.ActorRegistrywatch, ObservedAt: at, Alert: true,
		Payload: map[string]any{"triggering_seq": trigger, "verdict": "missing"}}
}

// auditorVerifier builds a verifier the way an auditor would, from the
// public key alone: x/mod's Ed25519 verifier, transparency-dev's ECDSA one.
func auditorVerifier(t testing.TB, origin string, pub crypto.PublicKey) note.Verifier {
	t.Helper()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		vkey, err := note.NewEd25519VerifierKey(origin, k)
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		return v
	case *ecdsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		vkey := fmt.Sprintf("%s+%x+%s", origin, sum[:4], base64.StdEncoding.EncodeToString(append([]byte{0x02}, der...)))
		v, err := fnote.NewECDSAVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Fatalf("key type %T", pub)
	return nil
}

// openCheckpoint verifies a checkpoint with note.Open and log.ParseCheckpoint.
func openCheckpoint(t testing.TB, cp []byte, pub crypto.PublicKey) *log.Checkpoint {
	t.Helper()
	v := auditorVerifier(t, testOrigin, pub)
	if _, err := note.Open(cp, note.VerifierList(v)); err != nil {
		t.Fatalf("note.Open: %v\n%s", err, cp)
	}
	c, _, _, err := log.ParseCheckpoint(cp, testOrigin, v)
	if err != nil {
		t.Fatalf("log.ParseCheckpoint: %v", err)
	}
	return c
}

// leavesOf reads every leaf in seq order.
func leavesOf(t testing.TB, l *ledger.Ledger) [][]byte {
	t.Helper()
	size, err := l.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	err = l.Scan(context.Background(), 0, size, func(seq int64, leaf []byte) error {
		if seq != int64(len(out)) {
			return fmt.Errorf("scan gave seq %d at %d", seq, len(out))
		}
		out = append(out, bytes.Clone(leaf))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rootsOf computes the root of every prefix of leaves independently of the
// ledger, with transparency-dev/merkle: roots[n] is the root of leaves[:n].
func rootsOf(t testing.TB, leaves [][]byte) [][]byte {
	t.Helper()
	f := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := f.NewEmptyRange(0)
	roots := [][]byte{rfc6962.DefaultHasher.EmptyRoot()}
	for _, leaf := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaf), nil); err != nil {
			t.Fatal(err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
	}
	return roots
}

func TestAppendCheckpoints(t *testing.T) {
	for _, keyType := range []string{ledger.KeyTypeEd25519, ledger.KeyTypeECDSAP256} {
		t.Run(keyType, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "ledger.db")
			s := newSigner(t, keyType)
			pub := ledgertest.PublicKey(s)
			l := openLedger(t, path, s)
			var checkpoints [][]byte
			for n := 0; n < 4; n++ {
				b := ledgertest.Batch(n, 7)
				res, err := l.Append(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]int64, 7)
				for i := range want {
					want[i] = int64(n*7 + i)
				}
				if diff := cmp.Diff(want, res.Seqs); diff != "" || res.Size != int64(n*7+7) {
					t.Fatalf("batch %d: seqs (-want +got) %s, size %d", n, diff, res.Size)
				}
				cp := openCheckpoint(t, res.Checkpoint, pub)
				if int64(cp.Size) != res.Size {
					t.Fatalf("checkpoint size %d, want %d", cp.Size, res.Size)
				}
				checkpoints = append(checkpoints, res.Checkpoint)
				if n == 1 { // reopen: the tree is restored from the tiles
					l.Close()
					l = openLedger(t, path, s)
				}
			}
			leaves := leavesOf(t, l)
			roots := rootsOf(t, leaves)
			for _, c := range checkpoints {
				cp := openCheckpoint(t, c, pub)
				if !bytes.Equal(cp.Hash, roots[cp.Size]) {
					t.Fatalf("checkpoint %d root differs from the leaves", cp.Size)
				}
				stored, err := l.Checkpoint(ctx, int64(cp.Size))
				if err != nil || !bytes.Equal(stored, c) {
					t.Fatalf("stored checkpoint %d: %v", cp.Size, err)
				}
			}
			latest, err := l.LatestCheckpoint(ctx)
			if err != nil || !bytes.Equal(latest, checkpoints[3]) {
				t.Fatalf("latest checkpoint: %v", err)
			}
			for i, leaf := range leaves {
				rec, err := l.Record(ctx, int64(i))
				if err != nil {
					t.Fatal(err)
				}
				again, err := ledger.EncodeLeaf(&rec.Entry, rec.Seq)
				if err != nil || !bytes.Equal(again, leaf) || rec.Seq != int64(i) {
					t.Fatalf("record %d does not re-encode: %v", i, err)
				}
				h, err := l.LeafHash(ctx, int64(i))
				if err != nil || !bytes.Equal(h[:], rfc6962.DefaultHasher.HashLeaf(leaf)) {
					t.Fatalf("leaf hash %d: %v", i, err)
				}
			}
			// A batch without entries writes no checkpoint but applies the rest.
			res, err := l.Append(ctx, ledger.Batch{States: []ledger.State{{Source: "x", Bytes: []byte("{}")}}})
			if err != nil || res.Checkpoint != nil || res.Size != 28 {
				t.Fatalf("empty batch: %+v %v", res, err)
			}
			if st, ok, err := l.State(ctx, "x"); err != nil || !ok || string(st) != "{}" {
				t.Fatalf("state after empty batch: %q %v %v", st, ok, err)
			}
			if latest, _ := l.LatestCheckpoint(ctx); !bytes.Equal(latest, checkpoints[3]) {
				t.Fatal("empty batch wrote a checkpoint")
			}
		})
	}
}

func TestFindingDedupe(t *testing.T) {
	ctx := t.Context()
	l := openLedger(t, filepath.Join(t.TempDir(), "l.db"), newSigner(t, ledger.KeyTypeEd25519))
	first := ledger.Batch{Entries: []ledger.Entry{
		change("stage.changed", "fraud", "3"),
		finding(ledger.KindPromotion, "fraud", "3", ledger.InBatch(0)),
	}}
	res, err := l.Append(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{0, 1}, res.Seqs); diff != "" {
		t.Fatal(diff)
	}
	rec, err := l.Record(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := ledger.FindingID("mlflow-prod", "fraud@1", ledger.KindPromotion, "3", int64(0))
	if rec.Payload["finding_id"] != wantID || rec.Payload["triggering_seq"] != int64(0) {
		t.Fatalf("finding payload %v, want finding_id %s", rec.Payload, wantID)
	}
	if seq, ok, err := l.FindingSeq(ctx, wantID); err != nil || !ok || seq != 1 {
		t.Fatalf("FindingSeq = %d %v %v", seq, ok, err)
	}

	// A re-run of the same poll after a crash produces the same finding: it
	// is dropped, its outbox row too, and references to it resolve to seq 1.
	followUp := finding(ledger.KindPromotion, "fraud", "3", ledger.InBatch(1))
	followUp.Payload["supersedes"] = ledger.InBatch(0)
	followUp.Payload["evidence"] = []map[string]any{{"kind": "promotion", "seq": ledger.InBatch(0)}}
	rerun := ledger.Batch{
		Entries: []ledger.Entry{
			finding(ledger.KindPromotion, "fraud", "3", ledger.Seq(0)),
			change("tag.set", "fraud", "3"),
			followUp,
			finding(ledger.KindPromotion, "fraud", "3", ledger.Seq(0)), // the same finding twice in a batch
		},
		OutboxDone: []string{wantID},
	}
	res, err = l.Append(ctx, rerun)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 1}, res.Seqs); diff != "" {
		t.Fatalf("seqs (-want +got): %s", diff)
	}
	if diff := cmp.Diff([]bool{true, false, false, true}, res.Dropped); diff != "" {
		t.Fatalf("dropped (-want +got): %s", diff)
	}
	rec, err = l.Record(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Payload["supersedes"] != int64(1) || rec.Payload["triggering_seq"] != int64(2) {
		t.Fatalf("follow-up payload %v", rec.Payload)
	}
	if ev := rec.Payload["evidence"].([]any)[0].(map[string]any); ev["seq"] != int64(1) {
		t.Fatalf("evidence %v", ev)
	}
	box, err := l.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(box) != 1 || box[0].Seq != 3 || box[0].FindingID != rec.Payload["finding_id"] {
		t.Fatalf("outbox %+v", box)
	}
	// Running the re-run again changes nothing.
	res, err = l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{finding(ledger.KindPromotion, "fraud", "3", ledger.Seq(0))}})
	if err != nil || res.Size != 4 || res.Checkpoint != nil || !res.Dropped[0] {
		t.Fatalf("second re-run: %+v %v", res, err)
	}
	if box, _ := l.Outbox(ctx); len(box) != 1 {
		t.Fatalf("outbox grew: %+v", box)
	}

	// coverage.late is keyed by the gap's start.
	late := func(from string) ledger.Entry {
		return ledger.Entry{Kind: ledger.KindCoverageLate, Source: "mlflow-prod", SourceType: "mlflow", Actor: ledger.ActorRegistrywatch,
			ObservedAt: at, Alert: true, Payload: map[string]any{"from": from, "missed_ticks": 3, "cause": "source_error"}}
	}
	res, err = l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{late("2025-06-01T11:00:00.000Z"), late("2025-06-01T11:00:00.000Z"), late("2025-06-01T11:30:00.000Z")}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{4, 4, 5}, res.Seqs); diff != "" {
		t.Fatalf("coverage.late seqs: %s", diff)
	}
	if _, err := l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{{Kind: ledger.KindCoverageLate, SourceType: "mlflow", Actor: "x", ObservedAt: at}}}); err == nil {
		t.Fatal("coverage.late without from accepted")
	}
}

func TestReferences(t *testing.T) {
	ctx := t.Context()
	l := openLedger(t, filepath.Join(t.TempDir(), "l.db"), newSigner(t, ledger.KeyTypeEd25519))
	if err := ledgertest.Fill(ctx, l, 0, 1, 5); err != nil {
		t.Fatal(err)
	}
	attr := change("attribution", "fraud", "3")
	attr.Payload = map[string]any{
		"entry_seq": ledger.Seq(2),
		"evidence":  []any{map[string]any{"kind": "stage.changed", "seq": ledger.InBatch(0)}, ledger.InBatch(2)},
		"nested":    map[string]any{"deep": []map[string]any{{"seq": ledger.InBatch(2)}}},
	}
	res, err := l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{change("stage.changed", "fraud", "3"), attr, change("tag.set", "fraud", "3")}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := l.Leaf(ctx, res.Seqs[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"entry_seq":2`, `"evidence":[{"kind":"stage.changed","seq":5},7]`, `"nested":{"deep":[{"seq":7}]}`} {
		if !strings.Contains(string(leaf), want) {
			t.Errorf("leaf %s lacks %s", leaf, want)
		}
	}
	size := res.Size
	for name, e := range map[string]ledger.Entry{
		"seq beyond the ledger":    {Kind: "attribution", SourceType: "mlflow", Actor: "a", ObservedAt: at, Payload: map[string]any{"entry_seq": ledger.Seq(size)}},
		"batch index out of range": {Kind: "attribution", SourceType: "mlflow", Actor: "a", ObservedAt: at, Payload: map[string]any{"entry_seq": ledger.InBatch(9)}},
		"finding forward ref":      finding(ledger.KindRollback, "m", "1", ledger.InBatch(1)),
		"finding without trigger":  {Kind: ledger.KindPromotion, SourceType: "mlflow", Actor: "a", ObservedAt: at},
		"alert on a change":        {Kind: "tag.set", SourceType: "mlflow", Actor: "a", ObservedAt: at, Alert: true},
	} {
		_, err := l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{e, change("tag.set", "m", "1")}, States: []ledger.State{{Source: "zz", Bytes: []byte("x")}}})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if n, _ := l.Size(ctx); n != size {
			t.Fatalf("%s: a failed batch changed the size to %d", name, n)
		}
		if _, ok, _ := l.State(ctx, "zz"); ok {
			t.Fatalf("%s: a failed batch wrote its state", name)
		}
	}
	// The ledger is still consistent after the failed batches.
	res, err = l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{change("tag.set", "m", "2")}})
	if err != nil || res.Seqs[0] != size {
		t.Fatalf("append after failures: %+v %v", res, err)
	}
	if _, err := ledger.Verify(ctx, l.Path(), ledger.VerifyOptions{TrustEmbeddedKey: true}); err != nil {
		t.Fatal(err)
	}
}

func TestStateAuxOutbox(t *testing.T) {
	ctx := t.Context()
	l := openLedger(t, filepath.Join(t.TempDir(), "l.db"), newSigner(t, ledger.KeyTypeEd25519))
	b := ledger.Batch{
		Entries: []ledger.Entry{
			change("stage.changed", "a", "1"),
			finding(ledger.KindPromotion, "a", "1", ledger.InBatch(0)),
			change("stage.changed", "b", "1"),
			finding(ledger.KindRollback, "b", "1", ledger.InBatch(2)),
		},
		States: []ledger.State{{Source: "s1", Bytes: []byte("one")}, {Source: "s2", Bytes: []byte("two")}},
		Aux: []ledger.Aux{
			{Source: "s1", Key: "cursor", Value: []byte("c1")},
			{Source: "s1", Key: "hour/10", Value: []byte("3")},
			{Source: "s1", Key: "hour/11", Value: []byte("4")},
			{Source: "s1", Key: "hour0", Value: []byte("x")},
			{Source: "s2", Key: "hour/10", Value: []byte("9")},
		},
	}
	if _, err := l.Append(ctx, b); err != nil {
		t.Fatal(err)
	}
	b2 := ledger.Batch{
		States:     []ledger.State{{Source: "s1", Bytes: []byte("uno")}},
		Aux:        []ledger.Aux{{Source: "s1", Key: "cursor", Value: nil}, {Source: "s1", Key: "hour/11", Value: []byte("5")}},
		OutboxDone: []string{"not-there"},
	}
	if _, err := l.Append(ctx, b2); err != nil {
		t.Fatal(err)
	}
	states, err := l.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"s1": []byte("uno"), "s2": []byte("two")}, states); diff != "" {
		t.Fatalf("states: %s", diff)
	}
	if _, ok, err := l.Aux(ctx, "s1", "cursor"); ok || err != nil {
		t.Fatalf("deleted aux row still there: %v", err)
	}
	if v, ok, err := l.Aux(ctx, "s2", "hour/10"); !ok || err != nil || string(v) != "9" {
		t.Fatalf("aux s2: %q %v %v", v, ok, err)
	}
	hours, err := l.AuxPrefix(ctx, "s1", "hour/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"hour/10": []byte("3"), "hour/11": []byte("5")}, hours); diff != "" {
		t.Fatalf("aux prefix: %s", diff)
	}
	box, err := l.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(box) != 2 || box[0].Seq != 1 || box[1].Seq != 3 {
		t.Fatalf("outbox %+v", box)
	}
	for _, it := range box {
		leaf, _ := l.Leaf(ctx, it.Seq)
		if it.LeafHash != ledger.LeafHash(leaf) || it.Record.Payload["finding_id"] != it.FindingID || !bytes.Equal(it.Record.Leaf, leaf) {
			t.Fatalf("outbox item %+v", it)
		}
	}
	delivered := ledger.Entry{Kind: "alert.delivered", SourceType: ledger.SourceTypeRegistrywatch, Actor: ledger.ActorRegistrywatch, ObservedAt: at,
		Payload: map[string]any{"finding_id": box[0].FindingID, "channel": "#ml-audit", "ts": "1.2"}}
	if _, err := l.Append(ctx, ledger.Batch{Entries: []ledger.Entry{delivered}, OutboxDone: []string{box[0].FindingID}}); err != nil {
		t.Fatal(err)
	}
	if box, _ := l.Outbox(ctx); len(box) != 1 || box[0].Seq != 3 {
		t.Fatalf("outbox after delivery %+v", box)
	}
	// alert.delivered's payload.finding_id is not a finding: not indexed.
	if seq, ok, _ := l.FindingSeq(ctx, box[0].FindingID); !ok || seq != 1 {
		t.Fatalf("FindingSeq after delivery = %d %v", seq, ok)
	}
	var kinds []string
	if err := l.Find(ctx, ledger.Query{Kinds: []string{ledger.KindPromotion, ledger.KindRollback}, Desc: true}, func(r ledger.Record) error {
		kinds = append(kinds, r.Kind)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{ledger.KindRollback, ledger.KindPromotion}, kinds); diff != "" {
		t.Fatalf("find: %s", diff)
	}
}

func TestFind(t *testing.T) {
	ctx := t.Context()
	l := openLedger(t, filepath.Join(t.TempDir(), "l.db"), newSigner(t, ledger.KeyTypeEd25519))
	if err := ledgertest.Fill(ctx, l, 0, 4, 5); err != nil {
		t.Fatal(err)
	}
	count := func(q ledger.Query) (seqs []int64) {
		t.Helper()
		if err := l.Find(ctx, q, func(r ledger.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	for _, tc := range []struct {
		name string
		q    ledger.Query
		want []int64
	}{
		{"kind", ledger.Query{Kind: ledger.KindSnapshot}, []int64{4, 9, 14, 19}},
		{"source and kind desc limit", ledger.Query{Kind: ledger.KindSnapshot, Source: "wandb-prod", Desc: true, Limit: 1}, []int64{19}},
		{"seq range", ledger.Query{FromSeq: 3, ToSeq: 6}, []int64{3, 4, 5}},
		{"version", ledger.Query{Source: "mlflow-prod", ModelID: "fraud-model-2@2025-01-01T00:00:00.000Z", Version: "2", Kind: "version.created"}, []int64{2}},
		{"model", ledger.Query{Source: "wandb-prod", Model: "fraud-model-5"}, []int64{5}},
		{"since", ledger.Query{Since: ledgertest.Start.Add(2 * time.Minute), Kind: ledger.KindSnapshot}, []int64{14, 19}},
		{"until", ledger.Query{Until: ledgertest.Start.Add(time.Minute), Kind: ledger.KindSnapshot}, []int64{4}},
	} {
		if diff := cmp.Diff(tc.want, count(tc.q)); diff != "" {
			t.Errorf("%s (-want +got): %s", tc.name, diff)
		}
	}
	stop := errors.New("stop")
	if err := l.Find(ctx, ledger.Query{}, func(ledger.Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Find did not return the callback's error: %v", err)
	}
}

func TestOrigin(t *testing.T) {
	dir := t.TempDir()
	s := newSigner(t, ledger.KeyTypeEd25519)
	l, err := ledger.Open(filepath.Join(dir, "gen.db"), ledger.Options{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	if o := l.Origin(); !regexp.MustCompile(`^registrywatch\.local/[0-9a-f]{32}$`).MatchString(o) {
		t.Fatalf("default origin %q", o)
	}
	l.Close()

	path := filepath.Join(dir, "l.db")
	l = openLedger(t, path, s)
	l.Close()
	if _, err := ledger.Open(path, ledger.Options{Signer: s, Origin: "example.com/other"}); !errors.Is(err, ledger.ErrOriginMismatch) {
		t.Fatalf("origin mismatch: %v", err)
	}
	l, err = ledger.Open(path, ledger.Options{Signer: s})
	if err != nil || l.Origin() != testOrigin {
		t.Fatalf("open without origin: %v", err)
	}
	l.Close()
	for _, bad := range []string{"has space", "a+b", "tab\there"} {
		if _, err := ledger.Open(filepath.Join(dir, "bad.db"), ledger.Options{Signer: s, Origin: bad}); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
}

func TestSecondWriterLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	s := newSigner(t, ledger.KeyTypeEd25519)
	l := openLedger(t, path, s)
	_, err := ledger.Open(path, ledger.Options{Signer: s})
	if !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	if want := fmt.Sprintf("pid %d on host ", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the holder (%q)", err, want)
	}
	ro, err := ledger.OpenReadOnly(path)
	if err != nil {
		t.Fatalf("reader while locked: %v", err)
	}
	ro.Close()
	l.Close()
	l2, err := ledger.Open(path, ledger.Options{Signer: s})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	l2.Close()
}

// failingSigner wraps a signer and fails or corrupts signatures on demand.
type failingSigner struct {
	signature.Signer
	fail, corrupt bool
}

func (f *failingSigner) SignMessage(msg io.Reader, opts ...signature.SignOption) ([]byte, error) {
	if f.fail {
		return nil, errors.New("kms unavailable")
	}
	if f.corrupt {
		return f.Signer.SignMessage(strings.NewReader("something else"), opts...)
	}
	return f.Signer.SignMessage(msg, opts...)
}

func TestSignFailureRollsBack(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "l.db")
	fs := &failingSigner{Signer: newSigner(t, ledger.KeyTypeEd25519)}
	l := openLedger(t, path, fs)
	if err := ledgertest.Fill(ctx, l, 0, 2, 10); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"fail", "corrupt"} {
		fs.fail, fs.corrupt = mode == "fail", mode == "corrupt"
		b := ledgertest.Batch(2, 10)
		b.Aux = []ledger.Aux{{Source: "s", Key: "k", Value: []byte("v")}}
		if _, err := l.Append(ctx, b); !errors.Is(err, ledger.ErrSign) {
			t.Fatalf("%s: err = %v, want ErrSign", mode, err)
		}
		if n, _ := l.Size(ctx); n != 20 {
			t.Fatalf("%s: size %d after a failed signature", mode, n)
		}
		if _, ok, _ := l.Aux(ctx, "s", "k"); ok {
			t.Fatalf("%s: aux written by a rolled-back batch", mode)
		}
	}
	fs.fail, fs.corrupt = false, false
	if err := ledgertest.Fill(ctx, l, 2, 5, 10); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{ledgertest.PublicKey(fs)}}); err != nil {
		t.Fatalf("verify after rolled-back batches: %v", err)
	}
}

func TestTriggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	s := newSigner(t, ledger.KeyTypeEd25519)
	if err := ledgertest.Build(path, s, testOrigin, 2, 300); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`UPDATE entries SET leaf = leaf WHERE seq = 1`,
		`DELETE FROM entries WHERE seq = 599`,
		`UPDATE tiles SET hashes = substr(hashes, 1, 32) WHERE level = 0 AND idx = 2`,
		`UPDATE tiles SET hashes = zeroblob(length(hashes) + 32) WHERE level = 0 AND idx = 2`,
		`DELETE FROM tiles WHERE level = 0 AND idx = 2`,
		`UPDATE checkpoints SET note = note || 'x'`,
		`DELETE FROM checkpoints`,
		`UPDATE meta SET value = 'x' WHERE key = 'origin'`,
		`DELETE FROM meta`,
	} {
		if _, err := db.Exec(stmt); err == nil {
			t.Errorf("%s: allowed", stmt)
		}
	}
	// Extending the partial tile is what Append does; the trigger allows it.
	var tile []byte
	if err := db.QueryRow(`SELECT hashes FROM tiles WHERE level = 0 AND idx = 2`).Scan(&tile); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 2`, append(tile, make([]byte, 32)...)); err != nil {
		t.Errorf("extension refused: %v", err)
	}
}
