package ledger

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sigstore/sigstore/pkg/signature"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Signature types of C2SP signed notes.
const (
	sigTypeEd25519    = 0x01
	sigTypeECDSAP256  = 0x02
	checkpointRootLen = sha256.Size
)

// Checkpoint is a parsed C2SP tlog-checkpoint: the tree of Size leaves with
// root hash Root, as signed in Note.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   []byte
	// Note is the whole signed note.
	Note []byte
}

// ValidOrigin reports whether origin is a valid C2SP signed-note key name:
// non-empty UTF-8 without spaces or '+'.
func ValidOrigin(origin string) error {
	if origin == "" || !utf8.ValidString(origin) || strings.IndexFunc(origin, unicode.IsSpace) >= 0 || strings.Contains(origin, "+") {
		return fmt.Errorf("invalid origin %q: want a non-empty name without spaces or '+', such as example.com/ledger", origin)
	}
	return nil
}

// checkpointText is the body of a checkpoint note.
func checkpointText(origin string, size int64, root []byte) string {
	return origin + "\n" + strconv.FormatInt(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root) + "\n"
}

// ParseCheckpoint parses a signed checkpoint note without checking its
// signatures. Use VerifyCheckpoint to trust it.
func ParseCheckpoint(signed []byte) (Checkpoint, error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, errors.New("malformed checkpoint: no signature block")
	}
	cp, err := parseCheckpointText(string(signed[:i+1]))
	if err != nil {
		return Checkpoint{}, err
	}
	cp.Note = signed
	return cp, nil
}

func parseCheckpointText(text string) (Checkpoint, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("malformed checkpoint: %d lines, want origin, size and root", len(lines))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		return Checkpoint{}, fmt.Errorf("malformed checkpoint: size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != checkpointRootLen {
		return Checkpoint{}, fmt.Errorf("malformed checkpoint: root hash %q", lines[2])
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// VerifyCheckpoint checks that signed is a checkpoint of origin carrying a
// valid signature by pub (Ed25519 or ECDSA P-256), and parses it.
func VerifyCheckpoint(signed []byte, origin string, pub crypto.PublicKey) (Checkpoint, error) {
	v, err := NewNoteVerifier(origin, pub)
	if err != nil {
		return Checkpoint{}, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	cp, err := parseCheckpointText(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Origin != origin {
		return Checkpoint{}, fmt.Errorf("checkpoint origin %q, want %q", cp.Origin, origin)
	}
	cp.Note = signed
	return cp, nil
}

// NewNoteVerifier returns a signed-note verifier for pub under the key name
// origin: x/mod's Ed25519 verifier (type 0x01) or transparency-dev's ECDSA
// P-256 verifier (type 0x02). It never uses a signer's own verification.
func NewNoteVerifier(origin string, pub crypto.PublicKey) (note.Verifier, error) {
	if err := ValidOrigin(origin); err != nil {
		return nil, err
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		vkey, err := note.NewEd25519VerifierKey(origin, k)
		if err != nil {
			return nil, fmt.Errorf("ed25519 verifier key: %w", err)
		}
		return note.NewVerifier(vkey)
	case *ecdsa.PublicKey:
		der, err := ecdsaP256DER(k)
		if err != nil {
			return nil, err
		}
		vkey := fmt.Sprintf("%s+%08x+%s", origin, ecdsaKeyID(der), base64.StdEncoding.EncodeToString(append([]byte{sigTypeECDSAP256}, der...)))
		return fnote.NewECDSAVerifier(vkey)
	default:
		return nil, fmt.Errorf("unsupported public key type %T: want Ed25519 or ECDSA P-256", pub)
	}
}

func ecdsaP256DER(k *ecdsa.PublicKey) ([]byte, error) {
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("unsupported ECDSA curve %s: want P-256", k.Curve.Params().Name)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return der, nil
}

func ecdsaKeyID(der []byte) uint32 {
	sum := sha256.Sum256(der)
	return binary.BigEndian.Uint32(sum[:4])
}

// noteSigner signs checkpoint notes with a sigstore signer and checks each
// signature with the independent verifier before it is used, so a signer
// that hashes or encodes differently fails the batch instead of writing
// checkpoints nobody can verify.
type noteSigner struct {
	name   string
	hash   uint32
	signer signature.Signer
	check  note.Verifier
}

// NewNoteSigner wraps a sigstore signer (Ed25519 loaded with crypto.Hash(0),
// or ECDSA P-256 loaded with crypto.SHA256) as a C2SP signed-note signer
// named origin.
func NewNoteSigner(origin string, s signature.Signer) (note.Signer, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("signer public key: %w", err)
	}
	v, err := NewNoteVerifier(origin, pub)
	if err != nil {
		return nil, err
	}
	return &noteSigner{name: origin, hash: v.KeyHash(), signer: s, check: v}, nil
}

func (s *noteSigner) Name() string    { return s.name }
func (s *noteSigner) KeyHash() uint32 { return s.hash }

// Sign signs msg and verifies the result.
func (s *noteSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.signer.SignMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	if !s.check.Verify(msg, sig) {
		return nil, errors.New("signer produced a signature that does not verify (wrong algorithm or prehash?)")
	}
	return sig, nil
}

// NoteSignature is one signature line of a signed note.
type NoteSignature struct {
	Name  string
	KeyID uint32
}

// NoteSignatures lists the signature lines of a signed note (without
// checking them), e.g. to print the key ID of a checkpoint.
func NoteSignatures(signed []byte) ([]NoteSignature, error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return nil, errors.New("malformed note: no signature block")
	}
	var sigs []NoteSignature
	for _, line := range strings.Split(strings.TrimSuffix(string(signed[i+2:]), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		name, b64, ok2 := strings.Cut(rest, " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || !ok2 || err != nil || len(raw) < 5 {
			return nil, fmt.Errorf("malformed note signature line %q", line)
		}
		sigs = append(sigs, NoteSignature{Name: name, KeyID: binary.BigEndian.Uint32(raw[:4])})
	}
	return sigs, nil
}
