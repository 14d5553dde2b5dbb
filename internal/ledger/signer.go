package ledger

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key types accepted by GenerateKey and keygen.
const (
	KeyTypeEd25519   = "ed25519"
	KeyTypeECDSAP256 = "ecdsa-p256"
)

// SignerFactory loads a signer from a URI such as awskms://… or
// hashivault://…. It MUST return an Ed25519 signer that signs the message
// itself (no prehash) or an ECDSA P-256 signer over SHA-256.
type SignerFactory func(ctx context.Context, uri string) (signature.Signer, error)

var (
	schemesMu sync.RWMutex
	schemes   = map[string]SignerFactory{}
)

// RegisterSignerScheme makes LoadSigner hand refs of the form scheme://… to
// f. KMS providers call it from an init function.
func RegisterSignerScheme(scheme string, f SignerFactory) {
	schemesMu.Lock()
	defer schemesMu.Unlock()
	schemes[scheme] = f
}

// LoadSigner returns the signer named by ref: a registered scheme://… URI,
// else a key file written by keygen (PEM Ed25519 or ECDSA P-256, plain or
// encrypted in sigstore's format). passphrase is called only for an
// encrypted key file; it may be nil otherwise.
func LoadSigner(ctx context.Context, ref string, passphrase func() ([]byte, error)) (signature.Signer, error) {
	if scheme, _, ok := strings.Cut(ref, "://"); ok {
		schemesMu.RLock()
		f := schemes[scheme]
		schemesMu.RUnlock()
		if f == nil {
			return nil, fmt.Errorf("signer %s: no provider for scheme %q in this build", scheme+"://…", scheme)
		}
		s, err := f(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("signer %s: %w", scheme+"://…", err)
		}
		return s, nil
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	s, err := ParseSigner(b, passphrase)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	return s, nil
}

// ParseSigner loads a PEM private key as LoadSigner does for key files.
func ParseSigner(pemBytes []byte, passphrase func() ([]byte, error)) (signature.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	pf := cryptoutils.SkipPassword
	if strings.HasPrefix(block.Type, "ENCRYPTED ") {
		if passphrase == nil {
			return nil, errors.New("the key is encrypted and no passphrase was given")
		}
		pw, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if len(pw) == 0 {
			return nil, errors.New("the key is encrypted and the passphrase is empty")
		}
		pf = cryptoutils.StaticPasswordFunc(pw)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	if err != nil {
		// The decryption error says nothing about the passphrase itself.
		return nil, fmt.Errorf("decode private key: %w", err)
	}
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		return signature.LoadSigner(k, crypto.Hash(0))
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("unsupported ECDSA curve %s: want P-256", k.Curve.Params().Name)
		}
		return signature.LoadSigner(k, crypto.SHA256)
	default:
		return nil, fmt.Errorf("unsupported private key type %T: want Ed25519 or ECDSA P-256", priv)
	}
}

// GenerateKey makes a new signing key of type KeyTypeEd25519 or
// KeyTypeECDSAP256. With a non-nil passphrase the private key is encrypted in
// sigstore's format. It returns the private and public (PKIX) PEM and the
// public key's fingerprint.
func GenerateKey(keyType string, passphrase []byte) (privPEM, pubPEM []byte, fingerprint string, err error) {
	var priv crypto.Signer
	switch keyType {
	case KeyTypeEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case KeyTypeECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, nil, "", fmt.Errorf("unknown key type %q: want %s or %s", keyType, KeyTypeEd25519, KeyTypeECDSAP256)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate key: %w", err)
	}
	if passphrase != nil {
		if len(passphrase) == 0 {
			return nil, nil, "", errors.New("empty passphrase")
		}
		der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(passphrase))
		if err != nil {
			return nil, nil, "", fmt.Errorf("encrypt key: %w", err)
		}
		privPEM = cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der)
	} else if privPEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv); err != nil {
		return nil, nil, "", fmt.Errorf("encode key: %w", err)
	}
	if pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public()); err != nil {
		return nil, nil, "", fmt.Errorf("encode public key: %w", err)
	}
	if fingerprint, err = Fingerprint(priv.Public()); err != nil {
		return nil, nil, "", err
	}
	return privPEM, pubPEM, fingerprint, nil
}

// Fingerprint returns the lowercase hex SHA-256 of the key's PKIX DER.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParsePublicKeyPEM parses a PKIX PEM public key and checks it is Ed25519 or
// ECDSA P-256.
func ParsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	if err := checkKeyType(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

func checkKeyType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("unsupported ECDSA curve %s: want P-256", k.Curve.Params().Name)
		}
		return nil
	default:
		return fmt.Errorf("unsupported public key type %T: want Ed25519 or ECDSA P-256", pub)
	}
}

// ReadPublicKey reads a PKIX PEM public key file.
func ReadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	pub, err := ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}
