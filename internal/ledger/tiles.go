package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// Tiles are C2SP tlog-tiles of height 8: tile (L, N) holds up to 256 hashes
// of tree level 8L starting at node 256N.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	hashSize   = 32
)

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// treeState is the writer's in-memory view of the Merkle tree: its size, the
// compact range [0, size) and the rightmost incomplete tile of every level.
type treeState struct {
	size int64
	rng  *compact.Range
	// edge[L] holds the hashes of the incomplete tile at level L (its width
	// is (size >> 8L) mod 256, possibly 0).
	edge [][]byte
}

// clone returns a copy that can grow without touching t.
func (t *treeState) clone() treeState {
	hashes := append([][]byte(nil), t.rng.Hashes()...)
	rng, err := rangeFactory.NewRange(0, uint64(t.size), hashes)
	if err != nil {
		panic(err) // the copy has the same shape as a valid range
	}
	c := treeState{size: t.size, rng: rng, edge: make([][]byte, len(t.edge))}
	for i, e := range t.edge {
		c.edge[i] = append(make([]byte, 0, tileWidth*hashSize), e...)
	}
	return c
}

// tileKey names one tile.
type tileKey struct {
	level int
	idx   int64
}

// tileWriter collects the tiles a batch touched.
type tileWriter struct {
	t *treeState
	// completed holds tiles filled during the batch, with their data.
	completed []tileData
	// dirtyEdge[L] is set when the edge tile of level L grew.
	dirtyEdge []bool
	err       error
}

type tileData struct {
	key  tileKey
	data []byte
}

// visit stores every node whose level is a multiple of the tile height into
// its tile: tile (level/8, index>>8) at offset index&255.
func (w *tileWriter) visit(id compact.NodeID, hash []byte) {
	if id.Level%tileHeight != 0 || w.err != nil {
		return
	}
	level := int(id.Level / tileHeight)
	for len(w.t.edge) <= level {
		w.t.edge = append(w.t.edge, make([]byte, 0, tileWidth*hashSize))
	}
	for len(w.dirtyEdge) <= level {
		w.dirtyEdge = append(w.dirtyEdge, false)
	}
	off := int(id.Index & (tileWidth - 1))
	if off == 0 {
		w.t.edge[level] = w.t.edge[level][:0]
	}
	if len(w.t.edge[level]) != off*hashSize {
		w.err = fmt.Errorf("tile %d/%d: node %d out of order", level, id.Index>>tileHeight, id.Index)
		return
	}
	w.t.edge[level] = append(w.t.edge[level], hash...)
	if off == tileWidth-1 {
		key := tileKey{level, int64(id.Index >> tileHeight)}
		w.completed = append(w.completed, tileData{key, append([]byte(nil), w.t.edge[level]...)})
		w.t.edge[level] = w.t.edge[level][:0]
		w.dirtyEdge[level] = false
		return
	}
	w.dirtyEdge[level] = true
}

// flush writes the tiles the batch touched: a new tile is inserted, a
// growing one extended in place (the tiles trigger allows nothing else).
func (w *tileWriter) flush(ctx context.Context, tx *sql.Tx) error {
	if w.err != nil {
		return w.err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tiles(level, idx, hashes) VALUES (?, ?, ?)
		ON CONFLICT(level, idx) DO UPDATE SET hashes = excluded.hashes`)
	if err != nil {
		return fmt.Errorf("write tiles: %w", err)
	}
	defer stmt.Close()
	write := func(k tileKey, data []byte) error {
		if _, err := stmt.ExecContext(ctx, k.level, k.idx, data); err != nil {
			return fmt.Errorf("write tile %d/%d: %w", k.level, k.idx, err)
		}
		return nil
	}
	for _, c := range w.completed {
		if err := write(c.key, c.data); err != nil {
			return err
		}
	}
	for level, dirty := range w.dirtyEdge {
		if dirty {
			idx := (w.t.size >> (tileHeight * level)) >> tileHeight
			if err := write(tileKey{level, idx}, w.t.edge[level]); err != nil {
				return err
			}
		}
	}
	return nil
}

// tileReader reads stored tiles for x/mod/sumdb/tlog. A stored tile may be
// wider than the one asked for (the tree grew since); it is cut to size.
type tileReader struct {
	ctx   context.Context
	q     queryer
	cache map[tileKey][]byte
}

func newTileReader(ctx context.Context, q queryer) *tileReader {
	return &tileReader{ctx: ctx, q: q, cache: map[tileKey][]byte{}}
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.tile(tileKey{t.L, t.N})
		if err != nil {
			return nil, err
		}
		if len(data) < t.W*hashSize {
			return nil, fmt.Errorf("tile %d/%d holds %d hashes, want %d", t.L, t.N, len(data)/hashSize, t.W)
		}
		out[i] = data[:t.W*hashSize]
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func (r *tileReader) tile(k tileKey) ([]byte, error) {
	if d, ok := r.cache[k]; ok {
		return d, nil
	}
	var data []byte
	err := r.q.QueryRowContext(r.ctx, `SELECT hashes FROM tiles WHERE level = ? AND idx = ?`, k.level, k.idx).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tile %d/%d missing", k.level, k.idx)
	}
	if err != nil {
		return nil, fmt.Errorf("read tile %d/%d: %w", k.level, k.idx, err)
	}
	r.cache[k] = data
	return data, nil
}

// ReadHashes reads hashes by stored hash index straight from the tiles,
// without authentication: each is computed from the tile holding it. Proofs
// built from them are checked by whoever verifies them against a root.
func (r *tileReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		t := tlog.TileForIndex(tileHeight, x)
		data, err := r.tile(tileKey{t.L, t.N})
		if err != nil {
			return nil, err
		}
		if len(data) < t.W*hashSize {
			return nil, fmt.Errorf("tile %d/%d holds %d hashes, want at least %d", t.L, t.N, len(data)/hashSize, t.W)
		}
		if out[i], err = tlog.HashFromTile(t, data, x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// restoreTree rebuilds the writer's tree state from the tiles without a
// rescan: the compact range and the edge tiles are read through
// tlog.TileHashReader, which authenticates every tile it returns against the
// root of the last checkpoint, whose signature is checked first.
func (l *Ledger) restoreTree(ctx context.Context, keys []PublicKeyRecord) error {
	tx, err := l.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var entries int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM entries`).Scan(&entries); err != nil {
		return fmt.Errorf("read size: %w", err)
	}
	var size int64
	var signed []byte
	err = tx.QueryRowContext(ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		if entries != 0 {
			return fmt.Errorf("%w: %d entries and no checkpoint (run verify)", ErrTampered, entries)
		}
		l.tree = treeState{rng: rangeFactory.NewEmptyRange(0)}
		return tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: checkpoints but no recorded key", ErrTampered)
	}
	pub, err := keys[len(keys)-1].PublicKey()
	if err != nil {
		return fmt.Errorf("recorded key: %w", err)
	}
	cp, err := VerifyCheckpoint(signed, l.origin, pub)
	if err != nil {
		return fmt.Errorf("%w: last checkpoint (size %d): %v (run verify)", ErrTampered, size, err)
	}
	if cp.Size != size || entries != size {
		return fmt.Errorf("%w: last checkpoint covers %d entries, the ledger holds %d (run verify)", ErrTampered, cp.Size, entries)
	}
	ids := compact.RangeNodes(0, uint64(size), nil)
	indexes := make([]int64, 0, len(ids)+3*tileWidth)
	for _, id := range ids {
		indexes = append(indexes, tlog.StoredHashIndex(int(id.Level), int64(id.Index)))
	}
	type edgeSpan struct{ level, from, n int }
	var spans []edgeSpan
	for level := 0; size>>(tileHeight*level) > 0; level++ {
		nodes := size >> (tileHeight * level)
		w := int(nodes & (tileWidth - 1))
		spans = append(spans, edgeSpan{level, len(indexes), w})
		for i := nodes - int64(w); i < nodes; i++ {
			indexes = append(indexes, tlog.StoredHashIndex(tileHeight*level, i))
		}
	}
	var root tlog.Hash
	copy(root[:], cp.Root)
	hashes, err := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, newTileReader(ctx, tx)).ReadHashes(indexes)
	if err != nil {
		return fmt.Errorf("%w: tiles do not match the last checkpoint: %v (run verify)", ErrTampered, err)
	}
	rangeHashes := make([][]byte, len(ids))
	for i := range ids {
		rangeHashes[i] = append([]byte(nil), hashes[i][:]...)
	}
	rng, err := rangeFactory.NewRange(0, uint64(size), rangeHashes)
	if err != nil {
		return err
	}
	t := treeState{size: size, rng: rng}
	for _, s := range spans {
		edge := make([]byte, 0, tileWidth*hashSize)
		for _, h := range hashes[s.from : s.from+s.n] {
			edge = append(edge, h[:]...)
		}
		t.edge = append(t.edge, edge)
	}
	l.tree = t
	return tx.Commit()
}
