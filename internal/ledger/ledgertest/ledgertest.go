// Package ledgertest builds ledgers with realistic content and tampers with
// ledger files the way an attacker holding the file would: raw SQL after
// dropping the defensive triggers. Tests of the ledger and of the CLI use it.
package ledgertest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// Sources are the sources Fill writes, alternating by batch.
var Sources = []string{"mlflow-prod", "wandb-prod"}

// Start is the observed_at of the first batch Fill writes.
var Start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// NewSigner returns a new in-memory signer of keyType (ledger.KeyTypeEd25519
// or ledger.KeyTypeECDSAP256), loaded the way LoadSigner loads key files,
// with its private key PEM.
func NewSigner(keyType string) (signature.Signer, []byte, error) {
	priv, _, _, err := ledger.GenerateKey(keyType, nil)
	if err != nil {
		return nil, nil, err
	}
	s, err := ledger.ParseSigner(priv, nil)
	return s, priv, err
}

// PublicKey returns the public key of s.
func PublicKey(s signature.Signer) crypto.PublicKey {
	pub, err := s.PublicKey()
	if err != nil {
		panic(err)
	}
	return pub
}

// Batch returns batch number n as Fill writes it: perBatch-1 version.created
// entries and a snapshot entry for source Sources[n%2], with the state row
// whose digest the snapshot records.
func Batch(n, perBatch int) ledger.Batch {
	src := Sources[n%len(Sources)]
	at := Start.Add(time.Duration(n) * time.Minute)
	var b ledger.Batch
	for i := 0; i < perBatch-1; i++ {
		m := n*perBatch + i
		b.Entries = append(b.Entries, ledger.Entry{
			Kind: "version.created", Source: src, SourceType: "mlflow",
			Model: "fraud-model-" + strconv.Itoa(m%97), ModelID: "fraud-model-" + strconv.Itoa(m%97) + "@2025-01-01T00:00:00.000Z",
			Version: strconv.Itoa(m), Actor: "alice@example.com", ObservedAt: at,
			OccurredFrom: at.Add(-30 * time.Second), OccurredTo: at,
			Payload: map[string]any{
				"aliases":     []string{},
				"creator":     "alice@example.com",
				"description": "retrained on the " + at.Format("January 2") + " window",
				"source":      "s3://models/fraud/" + strconv.Itoa(m) + "/artifacts",
				"stage":       "None",
				"tags":        []any{map[string]any{"key": "team", "value": "risk"}},
				"url":         "https://mlflow.example.com/#/models/fraud/versions/" + strconv.Itoa(m),
			},
		})
	}
	state := []byte(fmt.Sprintf(`{"models":[{"id":"fraud@%d","name":"fraud","versions":[]}]}`, n))
	sum := sha256.Sum256(state)
	b.Entries = append(b.Entries, ledger.Entry{
		Kind: ledger.KindSnapshot, Source: src, SourceType: "mlflow", Actor: ledger.ActorRegistrywatch, ObservedAt: at,
		Payload: map[string]any{"digest": hex.EncodeToString(sum[:]), "models": 1, "versions": perBatch - 1},
	})
	b.States = []ledger.State{{Source: src, Bytes: state}}
	return b
}

// Fill appends batches number from..to-1 (see Batch).
func Fill(ctx context.Context, l *ledger.Ledger, from, to, perBatch int) error {
	for n := from; n < to; n++ {
		if _, err := l.Append(ctx, Batch(n, perBatch)); err != nil {
			return err
		}
	}
	return nil
}

// Build creates a ledger at path signed by s with the given origin, filled
// with batches of perBatch entries, and closes it.
func Build(path string, s signature.Signer, origin string, batches, perBatch int) error {
	l, err := ledger.Open(path, ledger.Options{Signer: s, Origin: origin})
	if err != nil {
		return err
	}
	if err := Fill(context.Background(), l, 0, batches, perBatch); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}

// Edit opens the ledger file with the plain driver, drops every trigger and
// runs fn in one transaction.
func Edit(path string, fn func(tx *sql.Tx) error) (err error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := tx.Exec(`DROP TRIGGER "` + n + `"`); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func leafAt(tx *sql.Tx, seq int64) ([]byte, error) {
	var leaf []byte
	if err := tx.QueryRow(`SELECT leaf FROM entries WHERE seq = ?`, seq).Scan(&leaf); err != nil {
		return nil, fmt.Errorf("entry %d: %w", seq, err)
	}
	return leaf, nil
}

func setLeaf(tx *sql.Tx, seq int64, leaf []byte) error {
	res, err := tx.Exec(`UPDATE entries SET leaf = ? WHERE rowid = (SELECT rowid FROM entries WHERE seq = ?)`, leaf, seq)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("entry %d not updated", seq)
	}
	return nil
}

// FlipLeafByte changes one byte inside the payload of entry seq (the seq
// field stays intact).
func FlipLeafByte(path string, seq int64) error {
	return Edit(path, func(tx *sql.Tx) error {
		leaf, err := leafAt(tx, seq)
		if err != nil {
			return err
		}
		i := bytes.Index(leaf, []byte(`"payload":{`))
		if i < 0 {
			return errors.New("no payload")
		}
		j := i + len(`"payload":{"`) + 1
		leaf[j] ^= 0x01
		return setLeaf(tx, seq, leaf)
	})
}

// DeleteEntry removes entry seq.
func DeleteEntry(path string, seq int64) error {
	return Edit(path, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM entries WHERE seq = ?`, seq)
		return err
	})
}

// InsertEntry inserts a forged copy of entry seq, claiming the same seq, as
// an extra row (the unique index on seq is dropped first).
func InsertEntry(path string, seq int64) error {
	return Edit(path, func(tx *sql.Tx) error {
		leaf, err := leafAt(tx, seq)
		if err != nil {
			return err
		}
		forged := bytes.Replace(leaf, []byte(`"actor":"`), []byte(`"actor":"mallory `), 1)
		if _, err := tx.Exec(`DROP INDEX entries_seq`); err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO entries(leaf) VALUES (?)`, forged)
		return err
	})
}

// AppendEntry appends a forged entry after the last one, with the next seq,
// and no checkpoint.
func AppendEntry(path string) error {
	return Edit(path, func(tx *sql.Tx) error {
		var size int64
		if err := tx.QueryRow(`SELECT MAX(seq) + 1 FROM entries`).Scan(&size); err != nil {
			return err
		}
		leaf, err := leafAt(tx, size-1)
		if err != nil {
			return err
		}
		forged := withSeq(leaf, size-1, size)
		_, err = tx.Exec(`INSERT INTO entries(leaf) VALUES (?)`, forged)
		return err
	})
}

func withSeq(leaf []byte, from, to int64) []byte {
	old := []byte(`,"seq":` + strconv.FormatInt(from, 10) + `,`)
	i := bytes.LastIndex(leaf, old)
	out := append([]byte(nil), leaf[:i]...)
	out = append(out, `,"seq":`+strconv.FormatInt(to, 10)+`,`...)
	return append(out, leaf[i+len(old):]...)
}

// SwapEntries exchanges the contents of entries a and b, each keeping its
// own seq field, as if they had been recorded in the other order.
func SwapEntries(path string, a, b int64) error {
	return Edit(path, func(tx *sql.Tx) error {
		la, err := leafAt(tx, a)
		if err != nil {
			return err
		}
		lb, err := leafAt(tx, b)
		if err != nil {
			return err
		}
		if err := setLeaf(tx, a, withSeq(lb, b, a)); err != nil {
			return err
		}
		return setLeaf(tx, b, withSeq(la, a, b))
	})
}

// CorruptCheckpoint alters the checkpoint of tree size size: its root hash
// (the body), or with sig a byte of its signature.
func CorruptCheckpoint(path string, size int64, sig bool) error {
	return Edit(path, func(tx *sql.Tx) error {
		var n []byte
		if err := tx.QueryRow(`SELECT note FROM checkpoints WHERE size = ?`, size).Scan(&n); err != nil {
			return err
		}
		if sig {
			i := bytes.LastIndex(n, []byte(" ")) + 10
			if n[i] == 'A' {
				n[i] = 'B'
			} else {
				n[i] = 'A'
			}
		} else {
			cp, err := ledger.ParseCheckpoint(n)
			if err != nil {
				return err
			}
			root := append([]byte(nil), cp.Root...)
			root[0] ^= 0xff
			old := []byte(strconv.FormatInt(size, 10) + "\n")
			i := bytes.Index(n, old) + len(old)
			j := bytes.IndexByte(n[i:], '\n') + i
			n = append(append(append([]byte(nil), n[:i]...), b64(root)...), n[j:]...)
		}
		_, err := tx.Exec(`UPDATE checkpoints SET note = ? WHERE size = ?`, n, size)
		return err
	})
}

// DeleteLastCheckpoint removes the newest checkpoint, leaving its batch
// unsigned.
func DeleteLastCheckpoint(path string) error {
	return Edit(path, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM checkpoints WHERE size = (SELECT MAX(size) FROM checkpoints)`)
		return err
	})
}

// EditState changes the state bytes of source.
func EditState(path, source string) error {
	return Edit(path, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE state SET bytes = bytes || X'20' WHERE source = ?`, source)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("no state for %q", source)
		}
		return nil
	})
}

// DeleteState removes the state row of source.
func DeleteState(path, source string) error {
	return Edit(path, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM state WHERE source = ?`, source)
		return err
	})
}

// Rekey replaces the recorded keys by the key of s and re-signs every
// checkpoint with it: what an operator holding the file could do.
func Rekey(path string, s signature.Signer) error {
	return Edit(path, func(tx *sql.Tx) error {
		var origin string
		if err := tx.QueryRow(`SELECT CAST(value AS TEXT) FROM meta WHERE key = 'origin'`).Scan(&origin); err != nil {
			return err
		}
		signer, err := ledger.NewNoteSigner(origin, s)
		if err != nil {
			return err
		}
		pub := PublicKey(s)
		fp, err := ledger.Fingerprint(pub)
		if err != nil {
			return err
		}
		pemBytes, err := pemOf(pub)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM meta WHERE key LIKE 'key/%'`); err != nil {
			return err
		}
		rec := fmt.Sprintf(`{"fingerprint":%q,"pem":%q}`, fp, pemBytes)
		if _, err := tx.Exec(`INSERT INTO meta(key, value) VALUES ('key/0', ?)`, []byte(rec)); err != nil {
			return err
		}
		rows, err := tx.Query(`SELECT size, note FROM checkpoints`)
		if err != nil {
			return err
		}
		resigned := map[int64][]byte{}
		for rows.Next() {
			var size int64
			var n []byte
			if err := rows.Scan(&size, &n); err != nil {
				rows.Close()
				return err
			}
			text := n[:bytes.Index(n, []byte("\n\n"))+1]
			if resigned[size], err = note.Sign(&note.Note{Text: string(text)}, signer); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		for size, n := range resigned {
			if _, err := tx.Exec(`UPDATE checkpoints SET note = ? WHERE size = ?`, n, size); err != nil {
				return err
			}
		}
		return nil
	})
}

// TruncateBatches cuts a ledger written by Fill back to its first keep
// batches, consistently: entries, checkpoints and tiles beyond are removed
// and each source's state row is put back to its last kept snapshot, so that
// only a checkpoint kept elsewhere can tell.
func TruncateBatches(path string, keep, perBatch int) error {
	return Edit(path, func(tx *sql.Tx) error {
		for n := max(0, keep-len(Sources)); n < keep; n++ {
			for _, st := range Batch(n, perBatch).States {
				if _, err := tx.Exec(`UPDATE state SET bytes = ? WHERE source = ?`, st.Bytes, st.Source); err != nil {
					return err
				}
			}
		}
		return truncate(tx, int64(keep*perBatch))
	})
}

func truncate(tx *sql.Tx, keep int64) error {
	if _, err := tx.Exec(`DELETE FROM entries WHERE seq >= ?`, keep); err != nil {
		return err
	}
	if _, err := tx.Exec(`DELETE FROM checkpoints WHERE size > ?`, keep); err != nil {
		return err
	}
	for level := 0; level < 8; level++ {
		nodes := keep >> (8 * level)
		full, w := nodes>>8, nodes&255
		if _, err := tx.Exec(`DELETE FROM tiles WHERE level = ? AND (idx > ? OR (idx = ? AND ? = 0))`, level, full, full, w); err != nil {
			return err
		}
		if w > 0 {
			if _, err := tx.Exec(`UPDATE tiles SET hashes = substr(hashes, 1, ?) WHERE level = ? AND idx = ?`, w*32, level, full); err != nil {
				return err
			}
		}
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func pemOf(pub crypto.PublicKey) (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	return string(b), err
}
