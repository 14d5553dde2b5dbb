package ledger

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// schemaVersion is the version of the DDL below, stored in meta.
const schemaVersion = "1"

// writerDriver is the go-sqlite3 driver used for writing: its ConnectHook
// refuses any connection whose synchronous setting is not FULL.
const writerDriver = "sqlite3_registrywatch_writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: assertSynchronousFull})
}

// assertSynchronousFull checks PRAGMA synchronous = 2 (FULL) on a new write
// connection: a commit must survive power loss before Append returns.
func assertSynchronousFull(c *sqlite3.SQLiteConn) error {
	rows, err := c.Query("PRAGMA synchronous", nil)
	if err != nil {
		return fmt.Errorf("read synchronous pragma: %w", err)
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return fmt.Errorf("read synchronous pragma: %w", err)
	}
	if n, ok := v[0].(int64); !ok || n != 2 {
		return fmt.Errorf("sqlite synchronous = %v on a write connection, want 2 (FULL)", v[0])
	}
	return nil
}

// escapePath makes a file path safe inside a file: URI.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// writerDSN is the DSN of the single write connection.
func writerDSN(path string) string {
	return "file:" + escapePath(path) + "?_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_busy_timeout=5000"
}

// readerDSN opens read-only: SQLite itself refuses writes on it, and one
// transaction gives one consistent snapshot.
func readerDSN(path string) string {
	return "file:" + escapePath(path) + "?mode=ro&_busy_timeout=5000"
}

// findingKindsSQL lists the finding kinds for the finding_id column.
func findingKindsSQL() string {
	kinds := []string{KindPromotion, KindRollback, KindRestored, KindRollbackOverdue, KindCoverageLate}
	for i, k := range kinds {
		kinds[i] = "'" + k + "'"
	}
	return strings.Join(kinds, ", ")
}

// jx is the generated-column expression reading one key of a leaf.
func jx(path string) string {
	return "json_extract(CAST(leaf AS TEXT), '" + path + "')"
}

// schemaDDL creates every table, index and trigger of a ledger. Statements
// are idempotent.
func schemaDDL() string {
	return `
CREATE TABLE IF NOT EXISTS entries (
	leaf BLOB NOT NULL,
	seq INTEGER GENERATED ALWAYS AS (` + jx("$.seq") + `) VIRTUAL,
	kind TEXT GENERATED ALWAYS AS (` + jx("$.kind") + `) VIRTUAL,
	source TEXT GENERATED ALWAYS AS (` + jx("$.source") + `) VIRTUAL,
	source_type TEXT GENERATED ALWAYS AS (` + jx("$.source_type") + `) VIRTUAL,
	model TEXT GENERATED ALWAYS AS (` + jx("$.model") + `) VIRTUAL,
	model_id TEXT GENERATED ALWAYS AS (` + jx("$.model_id") + `) VIRTUAL,
	version TEXT GENERATED ALWAYS AS (` + jx("$.version") + `) VIRTUAL,
	actor TEXT GENERATED ALWAYS AS (` + jx("$.actor") + `) VIRTUAL,
	observed_at TEXT GENERATED ALWAYS AS (` + jx("$.observed_at") + `) VIRTUAL,
	finding_id TEXT GENERATED ALWAYS AS (CASE WHEN kind IN (` + findingKindsSQL() + `) THEN ` + jx("$.payload.finding_id") + ` END) VIRTUAL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_seq ON entries(seq);
CREATE INDEX IF NOT EXISTS entries_kind ON entries(kind, seq);
CREATE INDEX IF NOT EXISTS entries_model ON entries(source, model, seq);
CREATE INDEX IF NOT EXISTS entries_version ON entries(source, model_id, version, kind);
CREATE UNIQUE INDEX IF NOT EXISTS entries_finding ON entries(finding_id) WHERE finding_id IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;

CREATE TABLE IF NOT EXISTS meta (
	key TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS meta_no_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger meta is write-once'); END;
CREATE TRIGGER IF NOT EXISTS meta_no_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger meta is write-once'); END;

CREATE TABLE IF NOT EXISTS tiles (
	level INTEGER NOT NULL,
	idx INTEGER NOT NULL,
	hashes BLOB NOT NULL CHECK (length(hashes) % 32 = 0 AND length(hashes) BETWEEN 32 AND 8192),
	PRIMARY KEY (level, idx)
);
CREATE TRIGGER IF NOT EXISTS tiles_extend_only BEFORE UPDATE ON tiles
WHEN NEW.level IS NOT OLD.level OR NEW.idx IS NOT OLD.idx
	OR length(NEW.hashes) <= length(OLD.hashes)
	OR substr(NEW.hashes, 1, length(OLD.hashes)) IS NOT OLD.hashes
BEGIN SELECT RAISE(ABORT, 'tiles may only be extended'); END;
CREATE TRIGGER IF NOT EXISTS tiles_no_delete BEFORE DELETE ON tiles
BEGIN SELECT RAISE(ABORT, 'tiles are append-only'); END;

CREATE TABLE IF NOT EXISTS checkpoints (
	size INTEGER PRIMARY KEY,
	note BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;

CREATE TABLE IF NOT EXISTS state (
	source TEXT PRIMARY KEY,
	bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS aux (
	source TEXT NOT NULL,
	key TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (source, key)
);
CREATE TABLE IF NOT EXISTS outbox (
	finding_id TEXT PRIMARY KEY,
	seq INTEGER NOT NULL
);
`
}
