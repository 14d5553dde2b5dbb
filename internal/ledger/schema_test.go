package ledger

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriterDriverRequiresSynchronousFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	db, err := sql.Open(writerDriver, "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "synchronous") {
		t.Fatalf("a write connection without synchronous=FULL was accepted: %v", err)
	}
	ok, err := sql.Open(writerDriver, writerDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	var mode int
	if err := ok.QueryRow(`PRAGMA synchronous`).Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("synchronous = %d, %v", mode, err)
	}
	var journal string
	if err := ok.QueryRow(`PRAGMA journal_mode`).Scan(&journal); err != nil || journal != "wal" {
		t.Fatalf("journal_mode = %q, %v", journal, err)
	}
}

func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd dir?x=1#y%20z")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "l.db")
	priv, _, _, err := GenerateKey(KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Kind: "tag.set", SourceType: "mlflow", Actor: "a", ObservedAt: time.Now()}
	if _, err := l.Append(t.Context(), Batch{Entries: []Entry{e}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the ledger is not where asked: %v", err)
	}
	if r, err := Verify(t.Context(), path, VerifyOptions{TrustEmbeddedKey: true}); err != nil || r.Entries != 1 {
		t.Fatalf("verify: %+v %v", r, err)
	}
}
