// Package ledger is registrywatch's signed, tamper-evident ledger: one SQLite
// file holding append-only JCS leaves (DESIGN.md section 3), the RFC 6962
// Merkle tree over them as C2SP tlog-tiles, a signed C2SP checkpoint per
// batch, each source's last state, auxiliary rows and the alert outbox
// (section 5).
//
// A Ledger opened with Open is the single writer (an exclusive lock on
// <path>.lock); OpenReadOnly and Verify take no lock and read one consistent
// snapshot per call.
package ledger

import (
	"context"
	"crypto"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
)

// Errors callers branch on.
var (
	// ErrLocked means another process holds the ledger's write lock; the
	// message names the holder.
	ErrLocked = errors.New("ledger is locked by another writer")
	// ErrOriginMismatch means the configured origin differs from the one the
	// ledger was created with.
	ErrOriginMismatch = errors.New("ledger origin mismatch")
	// ErrSign means the checkpoint could not be signed; the batch was rolled
	// back.
	ErrSign = errors.New("sign checkpoint")
	// ErrTampered means the ledger does not match its own Merkle tree,
	// checkpoints, signatures or state digests.
	ErrTampered = errors.New("ledger tampered")
	// ErrReadOnly is returned by writes on a ledger opened read-only.
	ErrReadOnly = errors.New("ledger opened read-only")
)

// Options configures Open.
type Options struct {
	// Signer signs checkpoints (required). Load it with LoadSigner.
	Signer signature.Signer
	// Origin is the checkpoint origin; "" keeps the stored one, or generates
	// registrywatch.local/<32 hex> for a new ledger.
	Origin string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time for entries the ledger writes itself
	// (key.rotated); nil means time.Now.
	Now func() time.Time
}

// Ledger is an open ledger file. Reads are safe for concurrent use; Append
// calls are serialized.
type Ledger struct {
	path   string
	origin string
	rdb    *sql.DB // read-only pool (mode=ro)

	// Writer only.
	wdb    *sql.DB // the single write connection
	lock   *os.File
	logger *slog.Logger
	now    func() time.Time

	mu     sync.Mutex // serializes Append and guards the fields below
	signer note.Signer
	tree   treeState
	enc    leafEncoder
	closed bool
}

// PublicKeyRecord is a signing key recorded in the ledger, in the order keys
// came into force.
type PublicKeyRecord struct {
	Fingerprint string `json:"fingerprint"`
	PEM         string `json:"pem"`
}

// PublicKey parses the recorded PEM.
func (k PublicKeyRecord) PublicKey() (crypto.PublicKey, error) {
	return ParsePublicKeyPEM([]byte(k.PEM))
}

const (
	metaOrigin        = "origin"
	metaSchemaVersion = "schema_version"
	metaKeyPrefix     = "key/"
)

// Open opens the ledger at path for writing, creating it if absent. It takes
// the exclusive write lock, checks the origin, restores the Merkle tree from
// its tiles (authenticated against the last signed checkpoint) and, when
// opts.Signer's key differs from the last key recorded, appends key.rotated
// signed by the new key.
func Open(path string, opts Options) (*Ledger, error) {
	if opts.Signer == nil {
		return nil, errors.New("open ledger: no signer")
	}
	if opts.Origin != "" {
		if err := ValidOrigin(opts.Origin); err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
	}
	pub, err := opts.Signer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("open ledger: signer public key: %w", err)
	}
	if err := checkKeyType(pub); err != nil {
		return nil, fmt.Errorf("open ledger: signer: %w", err)
	}
	lock, err := acquireLock(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	l := &Ledger{path: path, lock: lock, logger: opts.Logger, now: opts.Now}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.open(opts, pub); err != nil {
		l.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	return l, nil
}

func (l *Ledger) open(opts Options, pub crypto.PublicKey) error {
	var err error
	if l.wdb, err = sql.Open(writerDriver, writerDSN(l.path)); err != nil {
		return err
	}
	l.wdb.SetMaxOpenConns(1)
	l.wdb.SetConnMaxLifetime(0)
	ctx := context.Background()
	if err := l.initSchema(ctx, opts.Origin); err != nil {
		return err
	}
	if l.rdb, err = openReader(l.path); err != nil {
		return err
	}
	if l.signer, err = NewNoteSigner(l.origin, opts.Signer); err != nil {
		return err
	}
	keys, err := l.KeysInForce(ctx)
	if err != nil {
		return err
	}
	if err := l.restoreTree(ctx, keys); err != nil {
		return err
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return err
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return fmt.Errorf("encode public key: %w", err)
	}
	rec := PublicKeyRecord{Fingerprint: fp, PEM: string(pemBytes)}
	switch {
	case len(keys) == 0:
		return l.recordFirstKey(ctx, rec)
	case keys[len(keys)-1].Fingerprint != fp:
		return l.rotateKey(ctx, keys, rec)
	}
	l.logger.Debug("ledger opened", "path", l.path, "origin", l.origin, "size", l.tree.size)
	return nil
}

// initSchema creates the schema and checks or records the origin.
func (l *Ledger) initSchema(ctx context.Context, origin string) error {
	tx, err := l.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, schemaDDL()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	stored, ok, err := metaValue(ctx, tx, metaOrigin)
	if err != nil {
		return err
	}
	if ok {
		version, _, err := metaValue(ctx, tx, metaSchemaVersion)
		if err != nil {
			return err
		}
		if string(version) != schemaVersion {
			return fmt.Errorf("ledger schema version %q, this build reads %q", version, schemaVersion)
		}
		if origin != "" && origin != string(stored) {
			return fmt.Errorf("%w: the ledger's origin is %q, the configuration says %q", ErrOriginMismatch, stored, origin)
		}
		l.origin = string(stored)
		return tx.Commit()
	}
	if origin == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		origin = "registrywatch.local/" + hex.EncodeToString(b[:])
	}
	for k, v := range map[string]string{metaOrigin: origin, metaSchemaVersion: schemaVersion} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)`, k, []byte(v)); err != nil {
			return fmt.Errorf("write meta: %w", err)
		}
	}
	l.origin = origin
	return tx.Commit()
}

// queryer is what both *sql.DB and *sql.Tx offer for reads.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func metaValue(ctx context.Context, q queryer, key string) ([]byte, bool, error) {
	var v []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read meta %s: %w", key, err)
	}
	return v, true, nil
}

// readKeys returns the recorded public keys in the order they came into force.
func readKeys(ctx context.Context, q queryer) ([]PublicKeyRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM meta WHERE key >= ? AND key < ?`, metaKeyPrefix, "key0")
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	type numbered struct {
		n   int
		rec PublicKeyRecord
	}
	var keys []numbered
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read keys: %w", err)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(k, metaKeyPrefix))
		if err != nil {
			return nil, fmt.Errorf("read keys: bad meta key %q", k)
		}
		var rec PublicKeyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("read keys: %s: %w", k, err)
		}
		keys = append(keys, numbered{n, rec})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].n < keys[j].n })
	out := make([]PublicKeyRecord, len(keys))
	for i, k := range keys {
		out[i] = k.rec
	}
	return out, nil
}

// insertKey records rec as key number n.
func insertKey(ctx context.Context, tx *sql.Tx, n int, rec PublicKeyRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)`, metaKeyPrefix+strconv.Itoa(n), v); err != nil {
		return fmt.Errorf("record key: %w", err)
	}
	return nil
}

func (l *Ledger) recordFirstKey(ctx context.Context, rec PublicKeyRecord) error {
	if l.tree.size != 0 {
		return fmt.Errorf("%w: the ledger has entries but no recorded key", ErrTampered)
	}
	tx, err := l.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertKey(ctx, tx, 0, rec); err != nil {
		return err
	}
	l.logger.Info("ledger created", "path", l.path, "origin", l.origin, "key", rec.Fingerprint)
	return tx.Commit()
}

// rotateKey appends key.rotated, signed by the new key, and records the key.
func (l *Ledger) rotateKey(ctx context.Context, keys []PublicKeyRecord, rec PublicKeyRecord) error {
	old := keys[len(keys)-1].Fingerprint
	e := Entry{
		Kind: KindKeyRotated, SourceType: SourceTypeRegistrywatch, Actor: ActorRegistrywatch,
		ObservedAt: l.now().UTC(),
		Payload:    map[string]any{"old": old, "new": rec.Fingerprint},
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.appendLocked(ctx, Batch{Entries: []Entry{e}}, func(tx *sql.Tx) error {
		return insertKey(ctx, tx, len(keys), rec)
	})
	if err != nil {
		return fmt.Errorf("record key rotation: %w", err)
	}
	l.logger.Warn("signing key rotated", "old", old, "new", rec.Fingerprint)
	return nil
}

// OpenReadOnly opens an existing ledger for reading. It takes no lock; each
// read runs in its own transaction and sees one consistent snapshot.
func OpenReadOnly(path string) (*Ledger, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	rdb, err := openReader(path)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	l := &Ledger{path: path, rdb: rdb}
	origin, ok, err := metaValue(context.Background(), rdb, metaOrigin)
	if err != nil || !ok {
		rdb.Close()
		if err == nil {
			err = errors.New("not a registrywatch ledger (no origin)")
		}
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	l.origin = string(origin)
	return l, nil
}

func openReader(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", readerDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

// Close releases the database and the write lock.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if l.rdb != nil {
		errs = append(errs, l.rdb.Close())
	}
	if l.wdb != nil {
		errs = append(errs, l.wdb.Close())
	}
	if l.lock != nil {
		errs = append(errs, l.lock.Close())
	}
	return errors.Join(errs...)
}

// Path returns the ledger's file path.
func (l *Ledger) Path() string { return l.path }

// Origin returns the checkpoint origin, fixed when the ledger was created.
func (l *Ledger) Origin() string { return l.origin }

// KeysInForce returns the signing keys recorded in the ledger, in the order
// they came into force (the first key, then each key.rotated's new key).
func (l *Ledger) KeysInForce(ctx context.Context) ([]PublicKeyRecord, error) {
	db := l.rdb
	if db == nil {
		db = l.wdb
	}
	return readKeys(ctx, db)
}
