package export

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
)

// Format names the bundle layout this package writes and verifies.
const Format = "registrywatch-bundle/1"

// Names of the files of a bundle.
const (
	FileManifest   = "manifest.json"
	FileSignature  = "manifest.sig"
	FileSums       = "SHA256SUMS"
	FileReadme     = "README.txt"
	FileCheckpoint = "checkpoint"
	FileEvents     = "events.jsonl"
	FileCarryIn    = "carry_in.jsonl"
	FileProofs     = "proofs.jsonl"
	FilePopulation = "population.csv"
	FileXLSX       = "population.xlsx"
	FileExceptions = "exceptions.csv"
	FileHistory    = "production_history.csv"
	FileCoverage   = "coverage.csv"
	FileInventory  = "inventory.csv"
	FileReport     = "report.html"
	DirSamples     = "samples"
	sampleEntries  = "entries.jsonl"
	sampleProofs   = "proofs.json"
	sampleReadme   = "README.txt"
)

// Manifest is manifest.json: what the bundle holds and the proofs that tie
// it to a signed checkpoint of the ledger. manifest.sig signs its exact
// bytes.
type Manifest struct {
	Format string `json:"format"`
	// Tool is the exporting program and its version.
	Tool      string `json:"tool"`
	CreatedAt string `json:"created_at"`
	// Origin is the ledger's checkpoint origin.
	Origin     string     `json:"origin"`
	Parameters Parameters `json:"parameters"`
	// Complete is false when the export was filtered by source or model.
	Complete bool  `json:"complete"`
	Range    Range `json:"range"`
	// Counts are the exported entries of the period per source and kind
	// (source "" for entries about no source).
	Counts map[string]map[string]int64 `json:"counts"`
	// ConfigApplied lists the config.applied digests: the one in force at
	// the start of the period (carry_in) and those applied during it.
	ConfigApplied []configDigest `json:"config_applied"`
	// Population is the number of population rows.
	Population int64 `json:"population"`
	// Files lists every file of the bundle but manifest.json and
	// manifest.sig, with its SHA-256 (hex) and size.
	Files []FileHash `json:"files"`
	// Checkpoint is the signed checkpoint (also the file "checkpoint") the
	// proofs lead to.
	Checkpoint string `json:"checkpoint"`
	// Key is the ledger key in force at the checkpoint's size.
	Key KeyInForce `json:"key"`
	// SignedBy is the fingerprint of the key that signed manifest.sig.
	SignedBy string `json:"signed_by"`
	// RangeProof lets the checkpoint's root be recomputed from the leaves
	// of events.jsonl (complete exports only).
	RangeProof *RangeProof `json:"range_proof,omitempty"`
	// CarryIn proves each line of carry_in.jsonl.
	CarryIn []EntryProof `json:"carry_in"`
	// Consistency proves that the checkpoint extends an earlier one
	// (-since-checkpoint).
	Consistency *Consistency `json:"consistency,omitempty"`
	// Samples are the ledger_seq of the sampled population rows.
	Samples []int64 `json:"samples"`
}

// Parameters are the export's arguments.
type Parameters struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Source string `json:"source,omitempty"`
	Model  string `json:"model,omitempty"`
	Sample int    `json:"sample,omitempty"`
	Seed   string `json:"seed,omitempty"`
}

// Range is the span of seqs events.jsonl covers: every entry from First to
// Last (Last = First-1 when the period holds no entry). Boundary counts the
// entries of the span whose observed_at falls outside the period.
type Range struct {
	First    int64 `json:"first"`
	Last     int64 `json:"last"`
	Entries  int64 `json:"entries"`
	Boundary int64 `json:"boundary"`
	// Exported is the number of lines of events.jsonl.
	Exported int64 `json:"exported"`
}

// FileHash is one file of the bundle.
type FileHash struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// KeyInForce names the ledger key that signs checkpoints of the checkpoint's
// size: the first key until the first key.rotated entry, then each one's
// new key.
type KeyInForce struct {
	Fingerprint string `json:"fingerprint"`
	FromSeq     int64  `json:"from_seq"`
}

// RangeProof holds the compact ranges [0, first) and [last+1, size) of the
// checkpoint's tree, as hex node hashes, left to right.
type RangeProof struct {
	Size  int64    `json:"size"`
	Left  []string `json:"left"`
	Right []string `json:"right"`
}

// EntryProof is an inclusion proof of one entry in the checkpoint's tree.
type EntryProof struct {
	Seq      int64    `json:"seq"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
}

// Consistency proves that the bundle's checkpoint extends Checkpoint.
type Consistency struct {
	Checkpoint string   `json:"checkpoint"`
	Size       int64    `json:"size"`
	Proof      []string `json:"proof"`
}

func hexList(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

func unhexList(ss []string) ([][]byte, error) {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("bad hash %q", s)
		}
		out[i] = b
	}
	return out, nil
}

func (m *Manifest) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", FileManifest, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %q, this version reads %q", FileManifest, m.Format, Format)
	}
	return &m, nil
}

// signManifest signs manifest.json: pure Ed25519, or ECDSA P-256 (ASN.1
// DER) over its SHA-256, as the ledger's signers do. The signature is
// checked with the standard library before it is used, so a signer that
// prehashes or encodes differently fails the export instead of writing a
// signature nobody can check.
func signManifest(s signature.Signer, manifest []byte) ([]byte, error) {
	sig, err := s.SignMessage(bytes.NewReader(manifest))
	if err != nil {
		return nil, fmt.Errorf("sign manifest: %w", err)
	}
	pub, err := s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("sign manifest: public key: %w", err)
	}
	if err := checkSignature(pub, manifest, sig); err != nil {
		return nil, fmt.Errorf("sign manifest: the signer produced a signature that does not verify (wrong algorithm or prehash?): %w", err)
	}
	return sig, nil
}

var errBadSignature = errors.New("signature does not verify")

// checkSignature verifies a raw manifest signature: Ed25519 over the bytes,
// or ECDSA (ASN.1 DER) over their SHA-256 — what openssl pkeyutl -rawin and
// openssl dgst -sha256 check.
func checkSignature(pub crypto.PublicKey, msg, sig []byte) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return errBadSignature
		}
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			return errBadSignature
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}
