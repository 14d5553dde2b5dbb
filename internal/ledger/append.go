package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"maps"

	"golang.org/x/mod/sumdb/note"
)

// Append commits a batch in one transaction: it drops findings whose
// finding_id is already in the ledger (references to them resolve to the
// existing seq), assigns seqs, resolves references, encodes the leaves,
// extends the Merkle tiles, writes states, aux and outbox rows and, when the
// batch adds entries, a checkpoint signed in the same transaction. If
// signing fails nothing is written and the error wraps ErrSign.
func (l *Ledger) Append(ctx context.Context, b Batch) (Result, error) {
	if l.wdb == nil {
		return Result{}, ErrReadOnly
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Result{}, errors.New("append: ledger closed")
	}
	return l.appendLocked(ctx, b, nil)
}

// appendLocked runs Append with l.mu held; extra, if not nil, runs inside the
// transaction before the checkpoint is signed.
func (l *Ledger) appendLocked(ctx context.Context, b Batch, extra func(*sql.Tx) error) (Result, error) {
	tx, err := l.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Result{}, fmt.Errorf("append: begin: %w", err)
	}
	defer tx.Rollback()
	p := planner{l: l, tx: tx, ctx: ctx, b: &b}
	if err := p.assign(); err != nil {
		return Result{}, fmt.Errorf("append: %w", err)
	}
	tree := l.tree
	var checkpoint []byte
	if p.added > 0 {
		tree = l.tree.clone()
		if err := p.writeEntries(&tree); err != nil {
			return Result{}, fmt.Errorf("append: %w", err)
		}
	}
	if err := p.writeRows(); err != nil {
		return Result{}, fmt.Errorf("append: %w", err)
	}
	if extra != nil {
		if err := extra(tx); err != nil {
			return Result{}, fmt.Errorf("append: %w", err)
		}
	}
	if p.added > 0 {
		text := checkpointText(l.origin, tree.size, p.root)
		if checkpoint, err = note.Sign(&note.Note{Text: text}, l.signer); err != nil {
			return Result{}, fmt.Errorf("append: %w: %v", ErrSign, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints(size, note) VALUES (?, ?)`, tree.size, checkpoint); err != nil {
			return Result{}, fmt.Errorf("append: write checkpoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Result{}, fmt.Errorf("append: commit: %w", err)
	}
	l.tree = tree
	return Result{Seqs: p.seqs, Dropped: p.dropped, Size: tree.size, Checkpoint: checkpoint}, nil
}

// planner carries one batch through Append.
type planner struct {
	l   *Ledger
	tx  *sql.Tx
	ctx context.Context
	b   *Batch

	seqs     []int64
	dropped  []bool
	assigned []bool
	fids     []string
	added    int
	root     []byte
}

// resolve maps a reference to a seq. In-batch references must point at an
// entry whose seq is already assigned; by-seq references must point into the
// committed ledger.
func (p *planner) resolve(r Ref) (int64, error) {
	if i, ok := r.IsInBatch(); ok {
		if i < 0 || i >= len(p.b.Entries) {
			return 0, fmt.Errorf("reference to batch entry %d of %d", i, len(p.b.Entries))
		}
		if !p.assigned[i] {
			return 0, fmt.Errorf("forward reference to batch entry %d", i)
		}
		return p.seqs[i], nil
	}
	return p.checkSeq(r.SeqValue())
}

func (p *planner) checkSeq(s int64) (int64, error) {
	if s < 0 || s >= p.l.tree.size {
		return 0, fmt.Errorf("reference to seq %d outside the ledger (size %d)", s, p.l.tree.size)
	}
	return s, nil
}

// findingKey returns the key of a finding's finding_id.
func (p *planner) findingKey(e *Entry) (any, error) {
	if e.Kind == KindCoverageLate {
		from, ok := e.Payload["from"].(string)
		if !ok || from == "" {
			return nil, errors.New("coverage.late without a string payload.from")
		}
		return from, nil
	}
	switch v := e.Payload["triggering_seq"].(type) {
	case Ref:
		return p.resolve(v)
	case int64:
		return p.checkSeq(v)
	case int:
		return p.checkSeq(int64(v))
	default:
		return nil, fmt.Errorf("finding without payload.triggering_seq (got %T)", v)
	}
}

// assign gives every entry its seq, dropping findings already committed (or
// repeated within the batch).
func (p *planner) assign() error {
	n := len(p.b.Entries)
	p.seqs, p.dropped, p.assigned, p.fids = make([]int64, n), make([]bool, n), make([]bool, n), make([]string, n)
	next := p.l.tree.size
	var inBatch map[string]int64
	for i := range p.b.Entries {
		e := &p.b.Entries[i]
		if !IsFinding(e.Kind) {
			if e.Alert {
				return fmt.Errorf("entry %d (%s): only findings alert", i, e.Kind)
			}
			p.seqs[i], p.assigned[i] = next, true
			next++
			continue
		}
		key, err := p.findingKey(e)
		if err != nil {
			return fmt.Errorf("entry %d (%s): %w", i, e.Kind, err)
		}
		fid, err := FindingID(e.Source, e.ModelID, e.Kind, e.Version, key)
		if err != nil {
			return fmt.Errorf("entry %d (%s): %w", i, e.Kind, err)
		}
		p.fids[i] = fid
		if s, ok := inBatch[fid]; ok {
			p.seqs[i], p.dropped[i], p.assigned[i] = s, true, true
			continue
		}
		var existing int64
		switch err := p.tx.QueryRowContext(p.ctx, `SELECT seq FROM entries WHERE finding_id = ?`, fid).Scan(&existing); {
		case err == nil:
			p.seqs[i], p.dropped[i], p.assigned[i] = existing, true, true
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("look up finding: %w", err)
		}
		if inBatch == nil {
			inBatch = map[string]int64{}
		}
		inBatch[fid] = next
		p.seqs[i], p.assigned[i] = next, true
		next++
	}
	p.added = int(next - p.l.tree.size)
	return nil
}

// writeEntries encodes and inserts the new leaves, grows tree and writes the
// touched tiles. It leaves the new root in p.root.
func (p *planner) writeEntries(tree *treeState) error {
	stmt, err := p.tx.PrepareContext(p.ctx, `INSERT INTO entries(leaf) VALUES (?)`)
	if err != nil {
		return fmt.Errorf("%w", err)
	}
	defer stmt.Close()
	tw := tileWriter{t: tree}
	hashes := make([]byte, 0, p.added*hashSize)
	var leaf []byte
	h := sha256.New()
	for i := range p.b.Entries {
		if p.dropped[i] {
			continue
		}
		e := &p.b.Entries[i]
		if p.fids[i] != "" {
			c := *e
			c.Payload = maps.Clone(e.Payload)
			c.Payload["finding_id"] = p.fids[i]
			e = &c
		}
		if leaf, err = p.l.enc.appendLeaf(leaf[:0], e, p.seqs[i], p.resolve); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if _, err := stmt.ExecContext(p.ctx, leaf); err != nil {
			return fmt.Errorf("insert entry %d (seq %d): %w", i, p.seqs[i], err)
		}
		h.Reset()
		h.Write([]byte{0})
		h.Write(leaf)
		hashes = h.Sum(hashes)
		if err := tree.rng.Append(hashes[len(hashes)-hashSize:], tw.visit); err != nil {
			return fmt.Errorf("tree: %w", err)
		}
		tree.size++
	}
	if err := tw.flush(p.ctx, p.tx); err != nil {
		return fmt.Errorf("%w", err)
	}
	if p.root, err = tree.rng.GetRootHash(nil); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	return nil
}

// writeRows applies states, aux rows and outbox changes.
func (p *planner) writeRows() error {
	for _, s := range p.b.States {
		if s.Bytes == nil {
			return fmt.Errorf("state of %q has no bytes", s.Source)
		}
		if _, err := p.tx.ExecContext(p.ctx, `INSERT INTO state(source, bytes) VALUES (?, ?)
			ON CONFLICT(source) DO UPDATE SET bytes = excluded.bytes`, s.Source, s.Bytes); err != nil {
			return fmt.Errorf("write state of %q: %w", s.Source, err)
		}
	}
	for _, a := range p.b.Aux {
		var err error
		if a.Value == nil {
			_, err = p.tx.ExecContext(p.ctx, `DELETE FROM aux WHERE source = ? AND key = ?`, a.Source, a.Key)
		} else {
			_, err = p.tx.ExecContext(p.ctx, `INSERT INTO aux(source, key, value) VALUES (?, ?, ?)
				ON CONFLICT(source, key) DO UPDATE SET value = excluded.value`, a.Source, a.Key, a.Value)
		}
		if err != nil {
			return fmt.Errorf("write aux %q/%q: %w", a.Source, a.Key, err)
		}
	}
	for i := range p.b.Entries {
		if p.b.Entries[i].Alert && !p.dropped[i] {
			if _, err := p.tx.ExecContext(p.ctx, `INSERT INTO outbox(finding_id, seq) VALUES (?, ?)`, p.fids[i], p.seqs[i]); err != nil {
				return fmt.Errorf("write outbox: %w", err)
			}
		}
	}
	for _, id := range p.b.OutboxDone {
		if _, err := p.tx.ExecContext(p.ctx, `DELETE FROM outbox WHERE finding_id = ?`, id); err != nil {
			return fmt.Errorf("clear outbox: %w", err)
		}
	}
	return nil
}
