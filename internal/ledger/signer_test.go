package ledger_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

func TestKeyFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	for _, tc := range []struct {
		keyType    string
		passphrase []byte
	}{
		{ledger.KeyTypeEd25519, nil},
		{ledger.KeyTypeECDSAP256, nil},
		{ledger.KeyTypeEd25519, []byte("correct horse")},
		{ledger.KeyTypeECDSAP256, []byte("battery staple")},
	} {
		name := tc.keyType
		if tc.passphrase != nil {
			name += "-encrypted"
		}
		t.Run(name, func(t *testing.T) {
			if testing.Short() && tc.passphrase != nil && tc.keyType == ledger.KeyTypeEd25519 {
				t.Skip("scrypt is slow; the ECDSA case covers encrypted keys")
			}
			priv, pubPEM, fp, err := ledger.GenerateKey(tc.keyType, tc.passphrase)
			if err != nil {
				t.Fatal(err)
			}
			if tc.passphrase != nil && !strings.Contains(string(priv), string(cryptoutils.EncryptedSigstorePrivateKeyPEMType)) {
				t.Fatalf("encrypted key PEM:\n%s", priv)
			}
			path := filepath.Join(dir, name+".key")
			if err := os.WriteFile(path, priv, 0o600); err != nil {
				t.Fatal(err)
			}
			pw := func() ([]byte, error) { return tc.passphrase, nil }
			s, err := ledger.LoadSigner(ctx, path, pw)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ledger.ParsePublicKeyPEM(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalPKIXPublicKey(pub)
			sum := sha256.Sum256(der)
			if fp != hex.EncodeToString(sum[:]) {
				t.Fatalf("fingerprint %s, want sha256 of the PKIX DER", fp)
			}
			// The loaded signer signs checkpoints an auditor can verify.
			ns, err := ledger.NewNoteSigner(testOrigin, s)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := note.Sign(&note.Note{Text: testOrigin + "\n1\n" + strings.Repeat("A", 43) + "=\n"}, ns)
			if err != nil {
				t.Fatal(err)
			}
			v := auditorVerifier(t, testOrigin, pub)
			if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
				t.Fatalf("auditor cannot verify: %v", err)
			}
			if ns.KeyHash() != v.KeyHash() {
				t.Fatalf("key ID %08x, auditor computes %08x", ns.KeyHash(), v.KeyHash())
			}
			sigs, err := ledger.NoteSignatures(signed)
			if err != nil || len(sigs) != 1 || sigs[0].KeyID != v.KeyHash() || sigs[0].Name != testOrigin {
				t.Fatalf("NoteSignatures = %+v, %v", sigs, err)
			}
			if tc.passphrase != nil {
				if _, err := ledger.LoadSigner(ctx, path, func() ([]byte, error) { return []byte("wrong"), nil }); err == nil {
					t.Fatal("wrong passphrase accepted")
				} else if strings.Contains(err.Error(), "wrong") {
					t.Fatalf("error shows the passphrase: %v", err)
				}
				if _, err := ledger.LoadSigner(ctx, path, nil); err == nil || !strings.Contains(err.Error(), "encrypted") {
					t.Fatalf("encrypted key without passphrase: %v", err)
				}
			}
		})
	}
	if _, _, _, err := ledger.GenerateKey("rsa", nil); err == nil {
		t.Fatal("unknown key type accepted")
	}
}

func TestKeyIDs(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := signature.LoadSigner(edPriv, crypto.Hash(0))
	ns, err := ledger.NewNoteSigner(testOrigin, ed)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte(testOrigin+"\n\x01"), edPub...))
	if ns.KeyHash() != binary.BigEndian.Uint32(h[:4]) {
		t.Fatalf("Ed25519 key ID %08x", ns.KeyHash())
	}
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec, _ := signature.LoadSigner(ecPriv, crypto.SHA256)
	ns, err = ledger.NewNoteSigner(testOrigin, ec)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(ecPriv.Public())
	h = sha256.Sum256(der)
	if ns.KeyHash() != binary.BigEndian.Uint32(h[:4]) {
		t.Fatalf("ECDSA key ID %08x", ns.KeyHash())
	}
}

func TestRefusedKeys(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, k := range map[string]crypto.Signer{"rsa": rsaKey, "p384": p384} {
		privPEM, err := cryptoutils.MarshalPrivateKeyToPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".key")
		if err := os.WriteFile(path, privPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ledger.LoadSigner(t.Context(), path, nil); err == nil || !strings.Contains(err.Error(), "want Ed25519 or ECDSA P-256") && !strings.Contains(err.Error(), "want P-256") {
			t.Errorf("%s private key: %v", name, err)
		}
		pubPEM, _ := cryptoutils.MarshalPublicKeyToPEM(k.Public())
		if _, err := ledger.ParsePublicKeyPEM(pubPEM); err == nil {
			t.Errorf("%s public key accepted", name)
		}
	}
	if _, err := ledger.LoadSigner(t.Context(), filepath.Join(dir, "missing.key"), nil); err == nil {
		t.Error("missing key file accepted")
	}
}

func TestSignerSchemes(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	want, _ := signature.LoadSigner(priv, crypto.Hash(0))
	var got string
	ledger.RegisterSignerScheme("testkms", func(_ context.Context, uri string) (signature.Signer, error) {
		got = uri
		if strings.HasSuffix(uri, "/broken") {
			return nil, errors.New("key disabled")
		}
		return want, nil
	})
	s, err := ledger.LoadSigner(t.Context(), "testkms://keys/ledger", nil)
	if err != nil || s != want || got != "testkms://keys/ledger" {
		t.Fatalf("registered scheme: %v %v", s, err)
	}
	if _, err := ledger.LoadSigner(t.Context(), "testkms://keys/broken", nil); err == nil || !strings.Contains(err.Error(), "key disabled") {
		t.Fatalf("provider error: %v", err)
	}
	_, err = ledger.LoadSigner(t.Context(), "nokms://secret-token@host/key", nil)
	if err == nil || strings.Contains(err.Error(), "secret-token") || !strings.Contains(err.Error(), `"nokms"`) {
		t.Fatalf("unknown scheme: %v", err)
	}
}
