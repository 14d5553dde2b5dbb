package ledger_test

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

// TestProofs checks inclusion, consistency and range proofs read from the
// tiles against roots computed independently from the leaves, for many
// random sizes, across reopenings (which restore the tree from the tiles).
func TestProofs(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "l.db")
	s := newSigner(t, ledger.KeyTypeEd25519)
	rng := rand.New(rand.NewPCG(1, 2))
	l := openLedger(t, path, s)
	for n := 0; n < 40; n++ {
		if _, err := l.Append(ctx, ledgertest.Batch(n, 1+rng.IntN(150))); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(3) == 0 {
			l.Close()
			l = openLedger(t, path, s)
		}
	}
	checkProofs(t, l, rng, 300)
}

// TestLongProofsLargeTree covers full level-1 tiles (more than 65536 leaves).
func TestLongProofsLargeTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 70,000-entry ledger")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "l.db")
	s := newSigner(t, ledger.KeyTypeEd25519)
	l := openLedger(t, path, s)
	if err := ledgertest.Fill(ctx, l, 0, 70, 1000); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openLedger(t, path, s)
	if _, err := l.Append(ctx, ledgertest.Batch(70, 77)); err != nil {
		t.Fatal(err)
	}
	checkProofs(t, l, rand.New(rand.NewPCG(3, 4)), 200)
	if _, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: pubKeys(s)}); err != nil {
		t.Fatal(err)
	}
}

func checkProofs(t *testing.T, l *ledger.Ledger, rng *rand.Rand, rounds int) {
	t.Helper()
	ctx := t.Context()
	leaves := leavesOf(t, l)
	roots := rootsOf(t, leaves)
	size := int64(len(leaves))
	h := rfc6962.DefaultHasher
	for i := 0; i < rounds; i++ {
		n := 1 + rng.Int64N(size)
		seq := rng.Int64N(n)
		root, err := l.RootAt(ctx, n)
		if err != nil || !bytes.Equal(root, roots[n]) {
			t.Fatalf("RootAt(%d): %v", n, err)
		}
		p, err := l.InclusionProof(ctx, seq, n)
		if err != nil {
			t.Fatal(err)
		}
		leafHash := h.HashLeaf(leaves[seq])
		if err := proof.VerifyInclusion(h, uint64(seq), uint64(n), leafHash, p, roots[n]); err != nil {
			t.Fatalf("inclusion of %d in %d: %v", seq, n, err)
		}
		other := h.HashLeaf(append(bytes.Clone(leaves[seq]), ' '))
		if proof.VerifyInclusion(h, uint64(seq), uint64(n), other, p, roots[n]) == nil {
			t.Fatalf("inclusion of a wrong leaf at %d in %d verified", seq, n)
		}
		if n > 1 && proof.VerifyInclusion(h, uint64(seq), uint64(n), leafHash, p, roots[n-1]) == nil {
			t.Fatalf("inclusion of %d against a wrong root verified", seq)
		}

		m := rng.Int64N(n + 1)
		c, err := l.ConsistencyProof(ctx, m, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(h, uint64(m), uint64(n), c, roots[m], roots[n]); err != nil {
			t.Fatalf("consistency %d -> %d: %v", m, n, err)
		}
		if m > 0 && m < n && proof.VerifyConsistency(h, uint64(m), uint64(n), c, roots[m-1], roots[n]) == nil {
			t.Fatalf("consistency %d -> %d against a wrong old root verified", m, n)
		}

		// Range proof: [0, first) and [last+1, size) as node hashes, the
		// leaves in between, give the root back.
		first := rng.Int64N(n)
		last := first + rng.Int64N(n-first)
		left, err := l.RangeNodes(ctx, 0, first)
		if err != nil {
			t.Fatal(err)
		}
		right, err := l.RangeNodes(ctx, last+1, n)
		if err != nil {
			t.Fatal(err)
		}
		f := &compact.RangeFactory{Hash: h.HashChildren}
		r, err := f.NewRange(0, uint64(first), left)
		if err != nil {
			t.Fatal(err)
		}
		for s := first; s <= last; s++ {
			if err := r.Append(h.HashLeaf(leaves[s]), nil); err != nil {
				t.Fatal(err)
			}
		}
		rr, err := f.NewRange(uint64(last+1), uint64(n), right)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AppendRange(rr, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := r.GetRootHash(nil); err != nil || !bytes.Equal(got, roots[n]) {
			t.Fatalf("range [%d, %d] of %d does not give the root: %v", first, last, n, err)
		}
	}
	if _, err := l.InclusionProof(ctx, size, size); err == nil {
		t.Fatal("inclusion proof beyond the tree")
	}
	if _, err := l.ConsistencyProof(ctx, 1, size+1); err == nil {
		t.Fatal("consistency proof beyond the tree")
	}
}
