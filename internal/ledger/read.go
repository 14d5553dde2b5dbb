package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned when a requested entry or checkpoint does not exist.
var ErrNotFound = errors.New("not found")

// read runs fn in one read-only transaction: every statement in it sees the
// same snapshot of the ledger.
func (l *Ledger) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := l.rdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func sizeOf(ctx context.Context, q queryer) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read size: %w", err)
	}
	return n, nil
}

// Size returns the number of entries (the tree size).
func (l *Ledger) Size(ctx context.Context) (int64, error) {
	return sizeOf(ctx, l.rdb)
}

// LatestCheckpoint returns the latest signed checkpoint note, or nil when the
// ledger has no entries yet.
func (l *Ledger) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var b []byte
	err := l.rdb.QueryRowContext(ctx, `SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	return b, nil
}

// Checkpoint returns the signed checkpoint written for tree size size.
func (l *Ledger) Checkpoint(ctx context.Context, size int64) ([]byte, error) {
	var b []byte
	err := l.rdb.QueryRowContext(ctx, `SELECT note FROM checkpoints WHERE size = ?`, size).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("checkpoint at size %d: %w", size, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	return b, nil
}

// Leaf returns the leaf bytes of entry seq.
func (l *Ledger) Leaf(ctx context.Context, seq int64) ([]byte, error) {
	var b []byte
	err := l.rdb.QueryRowContext(ctx, `SELECT leaf FROM entries WHERE seq = ?`, seq).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("entry %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", seq, err)
	}
	return b, nil
}

// Record returns entry seq, decoded.
func (l *Ledger) Record(ctx context.Context, seq int64) (Record, error) {
	leaf, err := l.Leaf(ctx, seq)
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(leaf)
}

func decodeRecord(leaf []byte) (Record, error) {
	e, seq, err := Decode(leaf)
	if err != nil {
		return Record{}, err
	}
	return Record{Seq: seq, Leaf: leaf, Entry: e}, nil
}

// Scan calls fn for every entry with from <= seq < to, in seq order, inside
// one read transaction. leaf is only valid during the call.
func (l *Ledger) Scan(ctx context.Context, from, to int64, fn func(seq int64, leaf []byte) error) error {
	return l.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, leaf FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq`, from, to)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		defer rows.Close()
		var seq int64
		var leaf sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&seq, &leaf); err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			if err := fn(seq, leaf); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		return nil
	})
}

// Query selects entries for Find. Zero fields do not filter.
type Query struct {
	Kind    string
	Kinds   []string
	Source  string
	Model   string
	ModelID string
	Version string
	// FromSeq and ToSeq bound seq: FromSeq <= seq < ToSeq (ToSeq 0: no bound).
	FromSeq, ToSeq int64
	// Since and Until bound observed_at: Since <= observed_at < Until.
	Since, Until time.Time
	// Desc returns the newest entries first.
	Desc bool
	// Limit caps the number of records (0: no cap).
	Limit int
}

func (q Query) sql() (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.Kind != "" {
		add("kind = ?", q.Kind)
	}
	if len(q.Kinds) > 0 {
		add("kind IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.Kinds)), ",")+")", stringsToAny(q.Kinds)...)
	}
	for _, f := range []struct{ col, v string }{{"source", q.Source}, {"model", q.Model}, {"model_id", q.ModelID}, {"version", q.Version}} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	if q.FromSeq > 0 {
		add("seq >= ?", q.FromSeq)
	}
	if q.ToSeq > 0 {
		add("seq < ?", q.ToSeq)
	}
	if !q.Since.IsZero() {
		add("observed_at >= ?", FormatTime(q.Since))
	}
	if !q.Until.IsZero() {
		add("observed_at < ?", FormatTime(q.Until))
	}
	s := "SELECT seq, leaf FROM entries"
	if len(where) > 0 {
		s += " WHERE " + strings.Join(where, " AND ")
	}
	s += " ORDER BY seq"
	if q.Desc {
		s += " DESC"
	}
	if q.Limit > 0 {
		s += " LIMIT ?"
		args = append(args, q.Limit)
	}
	return s, args
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Find calls fn with every entry matching q, decoded, in seq order (newest
// first with q.Desc), inside one read transaction. Returning an error from fn
// stops the search and returns that error.
func (l *Ledger) Find(ctx context.Context, q Query, fn func(Record) error) error {
	return l.FindLeaves(ctx, q, func(_ int64, leaf []byte) error {
		r, err := decodeRecord(bytes.Clone(leaf))
		if err != nil {
			return fmt.Errorf("find: %w", err)
		}
		return fn(r)
	})
}

// FindLeaves is Find without decoding: fn gets each matching entry's seq and
// leaf bytes, which are only valid during the call.
func (l *Ledger) FindLeaves(ctx context.Context, q Query, fn func(seq int64, leaf []byte) error) error {
	query, args := q.sql()
	return l.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("find: %w", err)
		}
		defer rows.Close()
		var seq int64
		var leaf sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&seq, &leaf); err != nil {
				return fmt.Errorf("find: %w", err)
			}
			if err := fn(seq, leaf); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find: %w", err)
		}
		return nil
	})
}

// FindingSeq returns the seq of the finding with finding_id id.
func (l *Ledger) FindingSeq(ctx context.Context, id string) (int64, bool, error) {
	var seq int64
	err := l.rdb.QueryRowContext(ctx, `SELECT seq FROM entries WHERE finding_id = ?`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up finding: %w", err)
	}
	return seq, true, nil
}

// State returns the state bytes of source.
func (l *Ledger) State(ctx context.Context, source string) ([]byte, bool, error) {
	var b []byte
	err := l.rdb.QueryRowContext(ctx, `SELECT bytes FROM state WHERE source = ?`, source).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state of %q: %w", source, err)
	}
	return b, true, nil
}

// States returns every source's state bytes.
func (l *Ledger) States(ctx context.Context) (map[string][]byte, error) {
	return readStates(ctx, l.rdb)
}

func readStates(ctx context.Context, q queryer) (map[string][]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT source, bytes FROM state`)
	if err != nil {
		return nil, fmt.Errorf("read states: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var s string
		var b []byte
		if err := rows.Scan(&s, &b); err != nil {
			return nil, fmt.Errorf("read states: %w", err)
		}
		out[s] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read states: %w", err)
	}
	return out, nil
}

// Aux returns one auxiliary row.
func (l *Ledger) Aux(ctx context.Context, source, key string) ([]byte, bool, error) {
	var b []byte
	err := l.rdb.QueryRowContext(ctx, `SELECT value FROM aux WHERE source = ? AND key = ?`, source, key).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read aux %q/%q: %w", source, key, err)
	}
	return b, true, nil
}

// AuxPrefix returns the auxiliary rows of source whose key starts with
// prefix, by key.
func (l *Ledger) AuxPrefix(ctx context.Context, source, prefix string) (map[string][]byte, error) {
	query := `SELECT key, value FROM aux WHERE source = ? AND key >= ?`
	args := []any{source, prefix}
	if upper, ok := prefixEnd(prefix); ok {
		query += ` AND key < ?`
		args = append(args, upper)
	}
	rows, err := l.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read aux %q/%q*: %w", source, prefix, err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read aux: %w", err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read aux: %w", err)
	}
	return out, nil
}

// prefixEnd returns the smallest string greater than every string starting
// with prefix, if there is one.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Outbox returns the undelivered alerts in seq order, each with its finding
// as committed.
func (l *Ledger) Outbox(ctx context.Context) ([]OutboxItem, error) {
	var items []OutboxItem
	err := l.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT o.finding_id, o.seq, e.leaf FROM outbox o
			JOIN entries e ON e.seq = o.seq ORDER BY o.seq`)
		if err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var it OutboxItem
			var leaf []byte
			if err := rows.Scan(&it.FindingID, &it.Seq, &leaf); err != nil {
				return fmt.Errorf("read outbox: %w", err)
			}
			if it.Record, err = decodeRecord(leaf); err != nil {
				return fmt.Errorf("read outbox: %w", err)
			}
			it.LeafHash = LeafHash(leaf)
			items = append(items, it)
		}
		return rows.Err()
	})
	return items, err
}

// LeafHash returns the RFC 6962 leaf hash of leaf: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
