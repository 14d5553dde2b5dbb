package ledger

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ErrNoTrustedKey is returned by Verify when no key was given and the
// embedded keys were not trusted explicitly.
var ErrNoTrustedKey = errors.New("no trusted key: give the ledger's public key (or explicitly trust the key embedded in the ledger)")

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Keys are the trusted public keys (Ed25519 or ECDSA P-256). Every one
	// MUST be a key in force somewhere in the ledger.
	Keys []crypto.PublicKey
	// Checkpoints are signed checkpoints kept from earlier; the ledger must
	// extend each of them.
	Checkpoints [][]byte
	// TrustEmbeddedKey trusts the keys recorded in the ledger itself when
	// Keys is empty. That proves integrity against accidents, not against
	// whoever holds the file.
	TrustEmbeddedKey bool
	// Progress, if set, is called now and then with entries checked so far.
	Progress func(done, total int64)
}

// Report is what Verify found.
type Report struct {
	// Origin is the ledger's checkpoint origin.
	Origin string
	// Entries is the number of entries; Checkpoints the number of stored
	// checkpoints; Latest the newest one.
	Entries     int64
	Checkpoints int
	Latest      []byte
	// Keys lists the keys in force, in order, with the seq from which each
	// signs (the key.rotated entry that brought it in; 0 for the first).
	Keys []KeyInForce
	// Sources are the sources whose state row matches their latest snapshot.
	Sources []string
	// ExternalCheckpoints is the number of kept checkpoints the ledger was
	// proven to extend.
	ExternalCheckpoints int
	// TrustedEmbeddedKey is set when the keys recorded in the ledger were
	// trusted instead of keys given by the caller.
	TrustedEmbeddedKey bool
	// Problems lists what failed, earliest position first; empty when the
	// ledger verifies.
	Problems []Problem
}

// KeyInForce is a signing key and the seq of the entry from which it signs
// (the key.rotated entry that brought it in; 0 for the first key).
type KeyInForce struct {
	Fingerprint string
	FromSeq     int64
	// Trusted is set when the key was among the trusted keys.
	Trusted bool
}

// Problem is one verification failure. At most one of Seq, Size, Tile or
// Source names what is wrong (Seq and Size are -1 when unused); a trusted key
// that was never in force names none of them.
type Problem struct {
	Seq    int64
	Size   int64
	Tile   string
	Source string
	// Message is a full sentence naming the bad seq, checkpoint, tile or
	// source.
	Message string
	pos     int64 // sort key: the earliest leaf position concerned
}

// String returns the problem's message.
func (p Problem) String() string { return p.Message }

// OK reports whether the ledger verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) addSeq(seq int64, format string, a ...any) {
	r.Problems = append(r.Problems, Problem{Seq: seq, Size: -1, Message: fmt.Sprintf("seq %d: ", seq) + fmt.Sprintf(format, a...), pos: seq})
}

func (r *Report) addCheckpoint(size int64, format string, a ...any) {
	r.Problems = append(r.Problems, Problem{Seq: -1, Size: size, Message: fmt.Sprintf("checkpoint at size %d: ", size) + fmt.Sprintf(format, a...), pos: size - 1})
}

func (r *Report) addTile(level int, idx, pos int64, format string, a ...any) {
	name := fmt.Sprintf("%d/%d", level, idx)
	r.Problems = append(r.Problems, Problem{Seq: -1, Size: -1, Tile: name, Message: "tile " + name + ": " + fmt.Sprintf(format, a...), pos: pos})
}

func (r *Report) addSource(source string, format string, a ...any) {
	r.Problems = append(r.Problems, Problem{Seq: -1, Size: -1, Source: source, Message: fmt.Sprintf("source %q: ", source) + fmt.Sprintf(format, a...), pos: math.MaxInt64})
}

// storedCheckpoint is a checkpoint row, parsed but not yet trusted.
type storedCheckpoint struct {
	size int64
	note []byte
	cp   Checkpoint
	err  error
}

// sigJob asks the signature worker to check one checkpoint.
type sigJob struct {
	i   int // index into checkpoints
	v   note.Verifier
	fp  string
	ext bool
}

// Verify checks a ledger file end to end, in one read transaction on a
// read-only connection (DESIGN.md section 5): every leaf is hashed and its
// seq checked against its position, every leaf hash compared with its
// level-0 tile (and every level-8k node with its tile), every checkpoint's
// root recomputed and its signature checked against the key in force at its
// size (learned from the key.rotated entries scanned), the given checkpoints
// proven to be extended by the ledger, and every source's state row checked
// against its latest snapshot digest. Entries after the last checkpoint are
// an unsigned tail.
//
// It returns an error wrapping ErrTampered, naming the first problem, when
// the report has problems; other errors mean the check could not run.
func Verify(ctx context.Context, path string, opts VerifyOptions) (*Report, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	db, err := sql.Open("sqlite3", readerDSN(path))
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback()
	v := &verifier{ctx: ctx, tx: tx, opts: opts, report: &Report{}}
	if err := v.run(); err != nil {
		return v.report, fmt.Errorf("verify: %w", err)
	}
	r := v.report
	if len(r.Problems) > 0 {
		sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].pos < r.Problems[j].pos })
		msg := r.Problems[0].Message
		switch n := len(r.Problems) - 1; {
		case n == 1:
			msg += " (and 1 more problem)"
		case n > 1:
			msg += fmt.Sprintf(" (and %d more problems)", n)
		}
		return r, fmt.Errorf("%w: %s", ErrTampered, msg)
	}
	return r, nil
}

type verifier struct {
	ctx    context.Context
	tx     *sql.Tx
	opts   VerifyOptions
	report *Report

	origin   string
	trusted  map[string]crypto.PublicKey // by fingerprint
	verifier map[string]note.Verifier    // by fingerprint, trusted keys only
	keys     []KeyInForce
	stored   []storedCheckpoint
	external []storedCheckpoint
	upper    map[tileKey][]byte // tiles of level >= 1
	upperN   map[tileKey]int    // hashes of each upper tile checked
}

func (v *verifier) run() error {
	ctx, tx, r := v.ctx, v.tx, v.report
	origin, ok, err := metaValue(ctx, tx, metaOrigin)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not a registrywatch ledger (no origin)")
	}
	v.origin, r.Origin = string(origin), string(origin)
	embedded, err := readKeys(ctx, tx)
	if err != nil {
		return err
	}
	if err := v.trust(embedded); err != nil {
		return err
	}
	if err := v.readCheckpoints(); err != nil {
		return err
	}
	if err := v.readUpperTiles(); err != nil {
		return err
	}
	if len(embedded) > 0 {
		v.keys = []KeyInForce{{Fingerprint: embedded[0].Fingerprint, FromSeq: 0}}
	} else if len(v.stored) > 0 {
		r.addCheckpoint(v.stored[0].size, "the ledger records no signing key")
	}
	states, err := readStates(ctx, tx)
	if err != nil {
		return err
	}
	total, err := sizeOf(ctx, tx)
	if err != nil {
		return err
	}
	scan, err := v.scan(total)
	if err != nil {
		return err
	}
	v.checkStates(scan.snapshots, states)
	for i := range v.keys {
		_, v.keys[i].Trusted = v.trusted[v.keys[i].Fingerprint]
	}
	r.Keys = v.keys
	trusted := make([]string, 0, len(v.trusted))
	for fp := range v.trusted {
		trusted = append(trusted, fp)
	}
	sort.Strings(trusted)
	for _, fp := range trusted {
		if !slices.ContainsFunc(v.keys, func(k KeyInForce) bool { return k.Fingerprint == fp }) {
			r.Problems = append(r.Problems, Problem{Seq: -1, Size: -1, pos: math.MaxInt64,
				Message: fmt.Sprintf("key %s was given as trusted but was never in force in this ledger", fp)})
		}
	}
	return nil
}

// trust sets up the trusted keys: the caller's, or the embedded ones when
// allowed.
func (v *verifier) trust(embedded []PublicKeyRecord) error {
	keys := v.opts.Keys
	if len(keys) == 0 {
		if !v.opts.TrustEmbeddedKey {
			return ErrNoTrustedKey
		}
		v.report.TrustedEmbeddedKey = true
		for _, k := range embedded {
			pub, err := k.PublicKey()
			if err != nil {
				return fmt.Errorf("embedded key %s: %w", k.Fingerprint, err)
			}
			keys = append(keys, pub)
		}
	}
	v.trusted, v.verifier = map[string]crypto.PublicKey{}, map[string]note.Verifier{}
	for _, k := range keys {
		fp, err := Fingerprint(k)
		if err != nil {
			return err
		}
		nv, err := NewNoteVerifier(v.origin, k)
		if err != nil {
			return fmt.Errorf("trusted key %s: %w", fp, err)
		}
		v.trusted[fp], v.verifier[fp] = k, nv
	}
	return nil
}

func (v *verifier) readCheckpoints() error {
	rows, err := v.tx.QueryContext(v.ctx, `SELECT size, note FROM checkpoints ORDER BY size`)
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c storedCheckpoint
		if err := rows.Scan(&c.size, &c.note); err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		c.cp, c.err = ParseCheckpoint(c.note)
		v.stored = append(v.stored, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	v.report.Checkpoints = len(v.stored)
	if n := len(v.stored); n > 0 {
		v.report.Latest = v.stored[n-1].note
	}
	for _, b := range v.opts.Checkpoints {
		cp, err := ParseCheckpoint(b)
		if err != nil {
			return fmt.Errorf("given checkpoint: %w", err)
		}
		v.external = append(v.external, storedCheckpoint{size: cp.Size, note: b, cp: cp})
	}
	return nil
}

func (v *verifier) readUpperTiles() error {
	rows, err := v.tx.QueryContext(v.ctx, `SELECT level, idx, hashes FROM tiles WHERE level > 0`)
	if err != nil {
		return fmt.Errorf("read tiles: %w", err)
	}
	defer rows.Close()
	v.upper, v.upperN = map[tileKey][]byte{}, map[tileKey]int{}
	for rows.Next() {
		var k tileKey
		var h []byte
		if err := rows.Scan(&k.level, &k.idx, &h); err != nil {
			return fmt.Errorf("read tiles: %w", err)
		}
		v.upper[k] = h
	}
	return rows.Err()
}

// keyAt returns the key in force for a checkpoint of size size: the last
// key brought in by an entry before size.
func (v *verifier) keyAt(size int64) (string, bool) {
	fp, ok := "", false
	for _, k := range v.keys {
		if k.FromSeq < size {
			fp, ok = k.Fingerprint, true
		}
	}
	return fp, ok
}

// scanResult is what the leaf scan learned.
type scanResult struct {
	snapshots map[string]snapshotRef
}

type snapshotRef struct {
	seq    int64
	digest string
}

// merkle accumulates the RFC 6962 tree over leaf hashes: stack holds the
// roots of the perfect subtrees of the leaves so far, largest first.
type merkle struct {
	stack [64][32]byte
	depth int
	n     int64
	buf   [1 + 2*32]byte
}

func (m *merkle) node(l, r *[32]byte) [32]byte {
	m.buf[0] = 1
	copy(m.buf[1:33], l[:])
	copy(m.buf[33:], r[:])
	return sha256.Sum256(m.buf[:])
}

// push appends a leaf hash; visit is called for every completed node of a
// level that is a multiple of the tile height (other than 0).
func (m *merkle) push(h [32]byte, visit func(level int, index int64, hash *[32]byte)) {
	level, index := 0, m.n
	for n := m.n; n&1 == 1; n >>= 1 {
		m.depth--
		h = m.node(&m.stack[m.depth], &h)
		level++
		index >>= 1
		if level%tileHeight == 0 {
			visit(level, index, &h)
		}
	}
	m.stack[m.depth] = h
	m.depth++
	m.n++
}

func (m *merkle) root() []byte {
	if m.depth == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	r := m.stack[m.depth-1]
	for i := m.depth - 2; i >= 0; i-- {
		r = m.node(&m.stack[i], &r)
	}
	return r[:]
}

// level0 streams the level-0 tiles in order.
type level0 struct {
	rows  *sql.Rows
	next  int64 // index of the row in buf, or -1 when exhausted
	buf   []byte
	last  []byte // the last tile handed out (for the extent check)
	lastN int64  // its index
	err   error
}

func (t *level0) advance() {
	if t.rows.Next() {
		var h sql.RawBytes
		if t.err = t.rows.Scan(&t.next, &h); t.err != nil {
			t.next = -1
			return
		}
		t.buf = append(t.buf[:0], h...)
		return
	}
	t.err = t.rows.Err()
	t.next = -1
}

// tile copies tile idx into dst (empty when it is missing); tiles must be
// asked for in increasing order.
func (t *level0) tile(idx int64, dst []byte) []byte {
	dst = dst[:0]
	for t.next >= 0 && t.next < idx {
		t.advance()
	}
	if t.next == idx {
		dst = append(dst, t.buf...)
		t.last, t.lastN = append(t.last[:0], t.buf...), idx
		t.advance()
	}
	return dst
}

// chunk is up to one tile's worth of consecutive leaves, each stored after
// a 0x00 byte so that the RFC 6962 leaf hash is one sha256.Sum256 call, with
// the level-0 tile that covers them.
type chunk struct {
	first int64
	buf   []byte
	ends  []int // end offset of each leaf in buf
	tile  []byte
}

// leaf returns leaf i of the chunk with its 0x00 prefix.
func (c *chunk) leaf(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.buf[start:c.ends[i]]
}

// scan reads the entries in seq order on this goroutine (the SQLite side)
// and checks them on another (hashing, tiles, tree, checkpoints), so that
// the two costs overlap on two cores.
func (v *verifier) scan(total int64) (scanResult, error) {
	ctx := v.ctx
	res := scanResult{snapshots: map[string]snapshotRef{}}

	tilesRows, err := v.tx.QueryContext(ctx, `SELECT idx, hashes FROM tiles WHERE level = 0 ORDER BY idx`)
	if err != nil {
		return res, fmt.Errorf("read tiles: %w", err)
	}
	defer tilesRows.Close()
	tiles := &level0{rows: tilesRows, lastN: -1}
	tiles.advance()

	rows, err := v.tx.QueryContext(ctx, `SELECT leaf FROM entries ORDER BY seq`)
	if err != nil {
		return res, fmt.Errorf("read entries: %w", err)
	}
	defer rows.Close()

	// Signature checks run beside the scan, on every core: a ledger written
	// by polls has a checkpoint every few entries.
	jobs := make(chan sigJob, 64)
	results := make([]error, len(v.stored)+len(v.external))
	sigDone := make(chan struct{})
	var sigWorkers sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		sigWorkers.Go(func() {
			for j := range jobs {
				results[j.i] = v.checkSignature(j)
			}
		})
	}
	go func() {
		sigWorkers.Wait()
		close(sigDone)
	}()

	const inFlight = 32
	free, full := make(chan *chunk, inFlight), make(chan *chunk, inFlight)
	for i := 0; i < inFlight; i++ {
		free <- &chunk{buf: make([]byte, 0, 192<<10), ends: make([]int, 0, tileWidth), tile: make([]byte, 0, tileWidth*hashSize)}
	}
	c := checker{v: v, jobs: jobs, res: &res}
	checkDone := make(chan struct{})
	go func() {
		defer close(checkDone)
		for ch := range full {
			c.check(ch)
			free <- ch
		}
	}()

	var (
		pos  int64
		cur  *chunk
		leaf sql.RawBytes
	)
	send := func() {
		cur.tile = tiles.tile(cur.first>>tileHeight, cur.tile)
		full <- cur
		cur = nil
	}
	readErr := func() error {
		for rows.Next() {
			if err := rows.Scan(&leaf); err != nil {
				return err
			}
			if cur == nil {
				cur = <-free
				cur.first, cur.buf, cur.ends = pos, cur.buf[:0], cur.ends[:0]
			}
			cur.buf = append(cur.buf, 0)
			cur.buf = append(cur.buf, leaf...)
			cur.ends = append(cur.ends, len(cur.buf))
			pos++
			if pos&(tileWidth-1) == 0 {
				send()
				if pos&0xffff == 0 {
					if v.opts.Progress != nil {
						v.opts.Progress(pos, total)
					}
					if err := ctx.Err(); err != nil {
						return err
					}
				}
			}
		}
		if cur != nil {
			send()
		}
		return rows.Err()
	}()
	close(full)
	<-checkDone
	if readErr != nil {
		close(jobs)
		<-sigDone
		return res, fmt.Errorf("read entries: %w", readErr)
	}
	if tiles.err != nil {
		close(jobs)
		<-sigDone
		return res, fmt.Errorf("read tiles: %w", tiles.err)
	}
	if v.opts.Progress != nil {
		v.opts.Progress(pos, total)
	}
	c.finish(tiles, pos)
	close(jobs)
	<-sigDone
	r := v.report
	for i, err := range results {
		if err == nil {
			continue
		}
		if i < len(v.stored) {
			r.addCheckpoint(v.stored[i].size, "%v", err)
		} else {
			e := v.external[i-len(v.stored)]
			r.addCheckpoint(e.size, "kept checkpoint: %v", err)
		}
	}
	return res, nil
}

// checker is the checking side of the scan. It owns the tree and the report
// while the scan runs.
type checker struct {
	v    *verifier
	jobs chan<- sigJob
	res  *scanResult

	m            merkle
	pos          int64
	next         int   // next stored checkpoint to reach
	firstSeqBad  int64 // set once: -1 until then
	firstHashBad int64 // first leaf whose hash differs from its tile (-1: none yet)
	upperBad     *badNode
	upperSeen    bool
	started      bool
}

func (c *checker) check(ch *chunk) {
	if !c.started {
		c.started, c.firstSeqBad, c.firstHashBad = true, -1, -1
	}
	r := c.v.report
	for i := range ch.ends {
		leaf := ch.leaf(i)
		h := sha256.Sum256(leaf)
		leaf = leaf[1:]
		pos := c.pos
		if seq, ok := leafSeq(leaf); (!ok || seq != pos) && c.firstSeqBad < 0 {
			c.firstSeqBad = pos
			if ok {
				r.addSeq(pos, "the entry at this position says seq %d (entries deleted, inserted or reordered)", seq)
			} else {
				r.addSeq(pos, "the entry has no readable seq")
			}
		}
		if c.firstHashBad < 0 {
			off := int(pos&(tileWidth-1)) * hashSize
			if off+hashSize > len(ch.tile) || !bytes.Equal(ch.tile[off:off+hashSize], h[:]) {
				c.firstHashBad = pos
			}
		}
		if kind := leafKind(leaf); len(kind) > 0 && (kind[0] == 's' || kind[0] == 'k') {
			c.v.special(kind, leaf, pos, c.res)
		}
		c.m.push(h, c.visitUpper)
		c.pos++
		if c.next < len(c.v.stored) && c.v.stored[c.next].size <= c.pos {
			c.reach()
		}
	}
}

func (c *checker) visitUpper(level int, index int64, h *[32]byte) {
	k := tileKey{level / tileHeight, index >> tileHeight}
	off := int(index&(tileWidth-1)) * hashSize
	data := c.v.upper[k]
	c.v.upperN[k]++
	if !c.upperSeen && (off+hashSize > len(data) || !bytes.Equal(data[off:off+hashSize], h[:])) {
		c.upperBad, c.upperSeen = &badNode{level: level, index: index, tile: k}, true
	}
}

// classify decides, at a checkpoint of size size, what a leaf or node that
// differs from its tile means: a bad entry when the checkpoint fails too, a
// bad tile when the checkpoint verifies against the entries.
func (c *checker) classify(size int64, rootOK bool) {
	r := c.v.report
	if c.firstHashBad >= 0 && c.firstHashBad < size {
		if rootOK {
			r.addTile(0, c.firstHashBad>>tileHeight, c.firstHashBad, "leaf hash of seq %d does not match the entry, whose checkpoint at size %d verifies (bad tile)", c.firstHashBad, size)
		} else {
			r.addSeq(c.firstHashBad, "the leaf does not match the Merkle tree (its tile hash and the checkpoint at size %d)", size)
		}
		c.firstHashBad = math.MaxInt64
	}
	if b := c.upperBad; b != nil && b.firstLeaf() < size {
		if rootOK {
			r.addTile(b.tile.level, b.tile.idx, b.firstLeaf(), "node %d of level %d does not match the entries, whose checkpoint at size %d verifies (bad tile)", b.index, b.level, size)
		}
		c.upperBad = nil
	}
}

// reach checks every stored checkpoint of size c.pos.
func (c *checker) reach() {
	r := c.v.report
	for c.next < len(c.v.stored) && c.v.stored[c.next].size <= c.pos {
		i := c.next
		s := &c.v.stored[i]
		c.next++
		switch {
		case s.size < c.pos: // only a size below 1, never written
			r.addCheckpoint(s.size, "invalid tree size")
		case s.err != nil:
			r.addCheckpoint(s.size, "%v", s.err)
		case s.cp.Size != s.size:
			r.addCheckpoint(s.size, "the note says size %d", s.cp.Size)
		case s.cp.Origin != c.v.origin:
			r.addCheckpoint(s.size, "origin %q, the ledger's is %q", s.cp.Origin, c.v.origin)
		default:
			rootOK := bytes.Equal(c.m.root(), s.cp.Root)
			c.classify(s.size, rootOK)
			if !rootOK {
				r.addCheckpoint(s.size, "root hash does not match the entries")
			}
			c.v.queueSignature(c.jobs, i, s, false)
		}
	}
}

// finish runs the checks that need the whole scan.
func (c *checker) finish(tiles *level0, size int64) {
	v, r := c.v, c.v.report
	r.Entries = size
	if c.next < len(v.stored) {
		last := v.stored[len(v.stored)-1]
		r.addSeq(size, "entry missing: the checkpoint at size %d covers up to seq %d, the ledger ends before (entries removed)", last.size, last.size-1)
	}
	lastSigned := int64(0)
	if n := len(v.stored); n > 0 {
		lastSigned = v.stored[n-1].size
	}
	if size > lastSigned {
		r.Problems = append(r.Problems, Problem{Seq: lastSigned, Size: -1, pos: lastSigned,
			Message: fmt.Sprintf("unsigned tail from seq %d: entries %d to %d are covered by no checkpoint", lastSigned, lastSigned, size-1)})
	}
	v.checkTileExtents(tiles, size)
	root := c.m.root()
	for i := range v.external {
		v.checkExternal(c.jobs, i, size, root)
	}
}

// special decodes the rare entries verify needs to read: snapshot and
// key.rotated.
func (v *verifier) special(kind, leaf []byte, pos int64, res *scanResult) {
	switch string(kind) {
	case KindSnapshot:
		e, _, err := Decode(leaf)
		if err != nil {
			v.report.addSeq(pos, "unreadable snapshot entry: %v", err)
			return
		}
		d, _ := e.Payload["digest"].(string)
		res.snapshots[e.Source] = snapshotRef{seq: pos, digest: d}
	case KindKeyRotated:
		e, _, err := Decode(leaf)
		if err != nil {
			v.report.addSeq(pos, "unreadable key.rotated entry: %v", err)
			return
		}
		oldFP, _ := e.Payload["old"].(string)
		newFP, _ := e.Payload["new"].(string)
		cur, _ := v.keyAt(pos + 1)
		if len(v.keys) > 0 && oldFP != cur {
			v.report.addSeq(pos, "key.rotated from %s, but the key in force is %s", oldFP, cur)
		}
		v.keys = append(v.keys, KeyInForce{Fingerprint: newFP, FromSeq: pos})
	}
}

// queueSignature hands a checkpoint to the signature worker, or reports it
// when the key in force at its size is not trusted.
func (v *verifier) queueSignature(jobs chan<- sigJob, i int, c *storedCheckpoint, ext bool) {
	fp, ok := v.keyAt(c.size)
	if !ok {
		return // reported: no recorded key
	}
	nv, trusted := v.verifier[fp]
	if !trusted {
		what := "the key in force"
		if ext {
			what = "the key in force at its size"
		}
		v.report.addCheckpoint(c.size, "%s (%s) is not a trusted key", what, fp)
		return
	}
	jobs <- sigJob{i: i, v: nv, fp: fp, ext: ext}
}

// checkSignature verifies one checkpoint note with x/mod's note.Open and the
// independent verifier of the key in force.
func (v *verifier) checkSignature(j sigJob) error {
	var c *storedCheckpoint
	if j.ext {
		c = &v.external[j.i-len(v.stored)]
	} else {
		c = &v.stored[j.i]
	}
	n, err := note.Open(c.note, note.VerifierList(j.v))
	if err != nil {
		return fmt.Errorf("signature does not verify with key %s: %v", j.fp, err)
	}
	cp, err := parseCheckpointText(n.Text)
	if err != nil {
		return err
	}
	if cp.Size != c.cp.Size || !bytes.Equal(cp.Root, c.cp.Root) {
		return errors.New("signed text differs from the parsed checkpoint")
	}
	return nil
}

// checkExternal checks a kept checkpoint: signed by the key in force at its
// size, and extended by the ledger (consistency proof from the tiles between
// its tree and the tree of all entries, whose root was computed from the
// leaves).
func (v *verifier) checkExternal(jobs chan<- sigJob, i int, size int64, root []byte) {
	r := v.report
	c := &v.external[i]
	if c.cp.Origin != v.origin {
		r.addCheckpoint(c.size, "kept checkpoint of origin %q, the ledger's is %q", c.cp.Origin, v.origin)
		return
	}
	if c.size > size {
		r.addCheckpoint(c.size, "kept checkpoint covers %d entries but the ledger holds only %d (entries removed)", c.size, size)
		return
	}
	v.queueSignature(jobs, len(v.stored)+i, c, true)
	p, err := consistencyProof(newTileReader(v.ctx, v.tx), c.size, size, size)
	if err == nil {
		err = proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(c.size), uint64(size), p, c.cp.Root, root)
	}
	if c.size == 0 {
		err = nil
	}
	if err != nil {
		r.addCheckpoint(c.size, "the ledger does not extend the kept checkpoint: %v", err)
		return
	}
	r.ExternalCheckpoints++
}

// checkTileExtents reports stored tiles holding more hashes than the tree
// has nodes.
// (Tiles holding fewer hashes are caught by the comparisons.)
func (v *verifier) checkTileExtents(tiles *level0, size int64) {
	lastIdx := (size - 1) >> tileHeight
	if tiles.next >= 0 {
		v.report.addTile(0, tiles.next, size, "beyond the last entry")
	} else if size > 0 && tiles.lastN == lastIdx && int64(len(tiles.last)/hashSize) > size-lastIdx<<tileHeight {
		v.report.addTile(0, lastIdx, size, "holds %d hashes, the tree has %d leaves there", len(tiles.last)/hashSize, size-lastIdx<<tileHeight)
	}
	for k, data := range v.upper {
		if n := v.upperN[k]; len(data)/hashSize > n {
			v.report.addTile(k.level, k.idx, size, "holds %d hashes, the tree has %d nodes there", len(data)/hashSize, n)
		}
	}
}

// badNode is a level-8k node that differs from its tile.
type badNode struct {
	level int
	index int64
	tile  tileKey
}

// firstLeaf is the first leaf under the node.
func (b *badNode) firstLeaf() int64 { return b.index << b.level }

// checkStates compares each source's state row with its latest snapshot.
func (v *verifier) checkStates(snaps map[string]snapshotRef, states map[string][]byte) {
	names := make([]string, 0, len(snaps))
	for s := range snaps {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		ref := snaps[s]
		b, ok := states[s]
		if !ok {
			v.report.addSource(s, "state row missing (latest snapshot at seq %d)", ref.seq)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != strings.ToLower(ref.digest) {
			v.report.addSource(s, "state digest %s does not match the latest snapshot (seq %d, digest %s)", got, ref.seq, ref.digest)
			continue
		}
		v.report.Sources = append(v.report.Sources, s)
	}
}
