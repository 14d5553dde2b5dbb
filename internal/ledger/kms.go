package ledger

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms/aws"
	"github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// KMS signers. Both providers come from sigstore (pinned with the rest of
// sigstore) and are called directly, never through sigstore's kms.Get, which
// falls back to running plugin binaries found on PATH.
//
// The hash each key signs with is fixed by DESIGN.md section 5, so that
// checkpoints stay C2SP signed notes:
//   - Ed25519 signs the message itself (pure Ed25519). The hashivault
//     provider hashes the message with the hash it is given and sends the
//     digest as the input, so it MUST be given crypto.Hash(0); it then
//     calls transit/sign/<key> without a hash suffix and with
//     prehashed=false, and Vault signs the raw bytes.
//   - ECDSA P-256 signs SHA-256 of the message, ASN.1 DER: hashivault with
//     crypto.SHA256 (transit/sign/<key>/sha2-256, prehashed=true, Vault's
//     default asn1 marshaling); awskms with crypto.SHA256 (Sign with
//     MessageType DIGEST and the key's only algorithm, ECDSA_SHA_256).
//
// Every loaded key signs a fixed test message that is checked with the
// standard library before the signer is returned, so a key that signs
// differently fails at start, not at the first batch.

// Signer schemes of the KMS providers compiled into this build.
const (
	SchemeAWSKMS     = "awskms"
	SchemeHashiVault = "hashivault"
)

func init() {
	RegisterSignerScheme(SchemeAWSKMS, loadAWSKMS)
	RegisterSignerScheme(SchemeHashiVault, loadVault)
}

// kmsTimeout bounds every call to a KMS: loading a key, and each signature
// (the Vault provider takes no context, so the wait is abandoned instead).
const kmsTimeout = 30 * time.Second

// kmsProbeMessage is what a KMS key signs when it is loaded. It is not a
// checkpoint (one line, no tree size), so the signature cannot be passed
// off as one.
var kmsProbeMessage = []byte("registrywatch signer self-test\n")

// loadAWSKMS loads awskms://[endpoint]/<key id, key ARN, alias or alias ARN>.
// Credentials, region and CA bundle come from the AWS SDK's usual sources
// (environment, shared config, web identity, instance role).
func loadAWSKMS(ctx context.Context, uri string) (signature.Signer, error) {
	ctx, cancel := context.WithTimeout(ctx, kmsTimeout)
	defer cancel()
	sv, err := aws.LoadSignerVerifier(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("aws kms: %w", redactSecrets(err))
	}
	pub, err := callKMS(ctx, func() (crypto.PublicKey, error) { return sv.PublicKey(options.WithContext(ctx)) })
	if err != nil {
		return nil, fmt.Errorf("aws kms: read key: %w", err)
	}
	if !isP256(pub) {
		return nil, fmt.Errorf("aws kms: key type %s is not supported: create the key with --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY", keyTypeName(pub))
	}
	s := &kmsSigner{name: "aws kms", sv: sv, pub: pub, opts: []signature.SignOption{options.WithCryptoSignerOpts(crypto.SHA256)}}
	if _, err := s.probe(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// loadVault loads hashivault://<transit key name>. The address, token, CA
// and namespace come from the Vault client's environment (VAULT_ADDR,
// VAULT_TOKEN or ~/.vault-token, VAULT_CACERT, VAULT_NAMESPACE, ...), the
// transit mount from TRANSIT_SECRET_ENGINE_PATH (default transit).
func loadVault(ctx context.Context, uri string) (signature.Signer, error) {
	ctx, cancel := context.WithTimeout(ctx, kmsTimeout)
	defer cancel()
	// The hash given here only sets the default; each signature passes the
	// hash of the key's type explicitly.
	sv, err := hashivault.LoadSignerVerifier(uri, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("vault: %w", redactSecrets(err))
	}
	pub, err := callKMS(ctx, func() (crypto.PublicKey, error) { return sv.PublicKey() })
	if err != nil {
		return nil, fmt.Errorf("vault: read key: %w", err)
	}
	var hash crypto.Hash
	switch {
	case isEd25519(pub):
		hash = crypto.Hash(0) // pure Ed25519: Vault signs the message itself
	case isP256(pub):
		hash = crypto.SHA256
	default:
		return nil, fmt.Errorf("vault: key type %s is not supported: create the transit key with type=ed25519 or type=ecdsa-p256", keyTypeName(pub))
	}
	s := &kmsSigner{name: "vault", sv: sv, pub: pub, opts: []signature.SignOption{options.WithCryptoSignerOpts(hash)}}
	// Pin the key version that signed the test message, so that rotating
	// the transit key in Vault changes nothing until the next start (which
	// records key.rotated) instead of failing every batch.
	version, err := s.probe(ctx)
	if err != nil {
		return nil, err
	}
	if version != "" {
		s.opts = append(s.opts, options.WithKeyVersion(version))
	}
	return s, nil
}

// kmsSigner is a sigstore KMS signer whose public key was checked at load
// time, signing with a fixed hash and a bounded wait.
type kmsSigner struct {
	name string // "aws kms" or "vault", for errors
	sv   signature.Signer
	pub  crypto.PublicKey
	opts []signature.SignOption
}

// PublicKey returns the key loaded and checked at start. The KMS is not
// asked again: if the key behind the URI changes, signatures stop verifying
// and batches fail until a restart records key.rotated.
func (s *kmsSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return s.pub, nil
}

// SignMessage signs message through the KMS, waiting at most kmsTimeout.
func (s *kmsSigner) SignMessage(message io.Reader, opts ...signature.SignOption) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	return s.sign(ctx, message, opts...)
}

func (s *kmsSigner) sign(ctx context.Context, message io.Reader, opts ...signature.SignOption) ([]byte, error) {
	all := append(append([]signature.SignOption{options.WithContext(ctx)}, s.opts...), opts...)
	sig, err := callKMS(ctx, func() ([]byte, error) { return s.sv.SignMessage(message, all...) })
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", s.name, err)
	}
	return sig, nil
}

// vaultVersionPrefix matches the "vault:v<N>:" prefix of a Vault signature.
var vaultVersionPrefix = regexp.MustCompile(`^vault:v([0-9]+):$`)

// probe signs kmsProbeMessage and checks the signature with the standard
// library: pure Ed25519 over the message, or ECDSA P-256 ASN.1 DER over its
// SHA-256. It returns the Vault key version that signed ("" for AWS).
func (s *kmsSigner) probe(ctx context.Context) (string, error) {
	var used string
	sig, err := s.sign(ctx, bytes.NewReader(kmsProbeMessage), options.ReturnKeyVersionUsed(&used))
	if err != nil {
		return "", err
	}
	var ok bool
	var want string
	switch k := s.pub.(type) {
	case ed25519.PublicKey:
		ok, want = ed25519.Verify(k, kmsProbeMessage, sig), "a pure Ed25519 signature over the message (was it prehashed?)"
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(kmsProbeMessage)
		ok, want = ecdsa.VerifyASN1(k, sum[:], sig), "an ASN.1 DER ECDSA P-256 signature over the SHA-256 of the message"
	}
	if !ok {
		return "", fmt.Errorf("%s: the key's test signature is not %s", s.name, want)
	}
	if m := vaultVersionPrefix.FindStringSubmatch(used); m != nil {
		return m[1], nil
	}
	return "", nil
}

// callKMS runs f and waits for it until ctx ends. The Vault provider takes
// no context; its call then finishes in the background, bounded by the Vault
// client's own timeout.
func callKMS[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, redactSecrets(r.err)
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("no answer from the KMS: %w", ctx.Err())
	}
}

// secretEnv names the environment variables whose values must never appear
// in an error, whatever a KMS or a proxy in front of it echoes back.
var secretEnv = []string{"VAULT_TOKEN", "BAO_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// redactedError replaces the message of an error that quoted a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactSecrets returns err with the values of secretEnv blanked out of its
// message.
func redactSecrets(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, name := range secretEnv {
		if v := strings.TrimSpace(os.Getenv(name)); len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "<"+strings.ToLower(name)+">")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

func isEd25519(pub crypto.PublicKey) bool {
	_, ok := pub.(ed25519.PublicKey)
	return ok
}

func isP256(pub crypto.PublicKey) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && k.Curve == elliptic.P256()
}

// keyTypeName names a public key's type for errors: "Ed25519", "ECDSA
// P-384", "RSA 2048".
func keyTypeName(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	default:
		return fmt.Sprintf("%T", pub)
	}
}

// KeyAt returns the key in force at tree size size: the key that signs the
// checkpoint of that size. That is the first key recorded, or the new key of
// the last key.rotated entry before size (found through the kind index;
// Verify learns the same from the leaves it scans). The key.rotated entry
// and the recorded keys must agree, or the error wraps ErrTampered.
func (l *Ledger) KeyAt(ctx context.Context, size int64) (PublicKeyRecord, error) {
	var rec PublicKeyRecord
	err := l.read(ctx, func(tx *sql.Tx) error {
		keys, err := readKeys(ctx, tx)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("the ledger records no key: %w", ErrNotFound)
		}
		const rotations = `FROM entries WHERE kind = ? AND seq < ?`
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) `+rotations, KindKeyRotated, size).Scan(&n); err != nil {
			return err
		}
		if n >= len(keys) {
			return fmt.Errorf("%w: %d key.rotated entries before size %d, but %d keys recorded", ErrTampered, n, size, len(keys))
		}
		if n > 0 {
			var leaf []byte
			if err := tx.QueryRowContext(ctx, `SELECT leaf `+rotations+` ORDER BY seq DESC LIMIT 1`, KindKeyRotated, size).Scan(&leaf); err != nil {
				return err
			}
			e, _, err := Decode(leaf)
			if err != nil {
				return fmt.Errorf("%w: unreadable key.rotated entry: %v", ErrTampered, err)
			}
			if fp, _ := e.Payload["new"].(string); fp != keys[n].Fingerprint {
				return fmt.Errorf("%w: key.rotated names key %s, the ledger records %s", ErrTampered, fp, keys[n].Fingerprint)
			}
		}
		rec = keys[n]
		return nil
	})
	if err != nil {
		return PublicKeyRecord{}, fmt.Errorf("key in force at size %d: %w", size, err)
	}
	return rec, nil
}
