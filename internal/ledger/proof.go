package ledger

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// Proofs read O(log n) hashes from the tiles. They verify with
// transparency-dev/merkle's proof package and rfc6962.DefaultHasher.

// withTiles runs fn with a tile hash reader and the current size, in one read
// transaction.
func (l *Ledger) withTiles(ctx context.Context, fn func(r *tileReader, size int64) error) error {
	return l.read(ctx, func(tx *sql.Tx) error {
		size, err := sizeOf(ctx, tx)
		if err != nil {
			return err
		}
		return fn(newTileReader(ctx, tx), size)
	})
}

func hashesToBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = append([]byte(nil), hs[i][:]...)
	}
	return out
}

// LeafHash returns the leaf hash of entry seq as stored in its tile.
func (l *Ledger) LeafHash(ctx context.Context, seq int64) ([32]byte, error) {
	var h [32]byte
	err := l.withTiles(ctx, func(r *tileReader, size int64) error {
		if seq < 0 || seq >= size {
			return fmt.Errorf("leaf hash of seq %d: %w (size %d)", seq, ErrNotFound, size)
		}
		hs, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, seq)})
		if err != nil {
			return fmt.Errorf("leaf hash of seq %d: %w", seq, err)
		}
		h = hs[0]
		return nil
	})
	return h, err
}

// RootAt returns the root hash of the tree of the first size entries.
func (l *Ledger) RootAt(ctx context.Context, size int64) ([]byte, error) {
	var root []byte
	err := l.withTiles(ctx, func(r *tileReader, n int64) error {
		if size < 0 || size > n {
			return fmt.Errorf("root at size %d: beyond the ledger (size %d)", size, n)
		}
		h, err := tlog.TreeHash(size, r)
		if err != nil {
			return fmt.Errorf("root at size %d: %w", size, err)
		}
		root = h[:]
		return nil
	})
	return root, err
}

// InclusionProof returns the proof that entry seq is in the tree of size
// entries.
func (l *Ledger) InclusionProof(ctx context.Context, seq, size int64) ([][]byte, error) {
	var proof [][]byte
	err := l.withTiles(ctx, func(r *tileReader, n int64) error {
		if seq < 0 || seq >= size || size > n {
			return fmt.Errorf("inclusion proof of seq %d in size %d: out of range (ledger size %d)", seq, size, n)
		}
		p, err := tlog.ProveRecord(size, seq, r)
		if err != nil {
			return fmt.Errorf("inclusion proof of seq %d in size %d: %w", seq, size, err)
		}
		proof = hashesToBytes(p)
		return nil
	})
	return proof, err
}

// ConsistencyProof returns the proof that the tree of newSize entries
// extends the tree of oldSize entries. It is empty when oldSize is 0 or
// equals newSize.
func (l *Ledger) ConsistencyProof(ctx context.Context, oldSize, newSize int64) ([][]byte, error) {
	var proof [][]byte
	err := l.withTiles(ctx, func(r *tileReader, n int64) error {
		var err error
		proof, err = consistencyProof(r, oldSize, newSize, n)
		return err
	})
	return proof, err
}

func consistencyProof(r tlog.HashReader, oldSize, newSize, n int64) ([][]byte, error) {
	if oldSize < 0 || oldSize > newSize || newSize > n {
		return nil, fmt.Errorf("consistency proof %d -> %d: out of range (ledger size %d)", oldSize, newSize, n)
	}
	if oldSize == 0 || oldSize == newSize {
		return [][]byte{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, r)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d -> %d: %w", oldSize, newSize, err)
	}
	return hashesToBytes(p), nil
}

// RangeNodes returns the hashes of the compact range [begin, end): the roots
// of the minimal perfect subtrees covering it, left to right, as
// compact.RangeFactory.NewRange takes them. An exporter of entries
// first..last sends RangeNodes(0, first) and RangeNodes(last+1, size) so the
// root can be recomputed from the exported leaves.
func (l *Ledger) RangeNodes(ctx context.Context, begin, end int64) ([][]byte, error) {
	var out [][]byte
	err := l.withTiles(ctx, func(r *tileReader, n int64) error {
		if begin < 0 || begin > end || end > n {
			return fmt.Errorf("range [%d, %d): out of range (ledger size %d)", begin, end, n)
		}
		ids := compact.RangeNodes(uint64(begin), uint64(end), nil)
		indexes := make([]int64, len(ids))
		for i, id := range ids {
			indexes[i] = tlog.StoredHashIndex(int(id.Level), int64(id.Index))
		}
		hs, err := r.ReadHashes(indexes)
		if err != nil {
			return fmt.Errorf("range [%d, %d): %w", begin, end, err)
		}
		out = hashesToBytes(hs)
		return nil
	})
	return out, err
}
