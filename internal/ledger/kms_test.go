package ledger_test

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
	"golang.org/x/mod/sumdb/note"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/kmsfake"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

// vaultTestToken is the fake Vault's token; no error may quote it.
const vaultTestToken = "hvs.kmsfake-token-7f3c9a1e5b"

// kmsEnv is a fake AWS KMS and a fake Vault, with the process environment
// pointing the sigstore providers at them.
type kmsEnv struct {
	aws   *kmsfake.AWS
	vault *kmsfake.Vault
}

func startKMS(t *testing.T) *kmsEnv {
	t.Helper()
	dir := t.TempDir()
	e := &kmsEnv{aws: kmsfake.NewAWS(), vault: kmsfake.NewVault(vaultTestToken)}
	t.Cleanup(e.aws.Close)
	t.Cleanup(e.vault.Close)
	for _, envf := range []func(string) (map[string]string, error){e.aws.Env, e.vault.Env} {
		env, err := envf(dir)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
	}
	return e
}

// addKey creates a key of keyType named name in the KMS of scheme and
// returns its URI and private key.
func (e *kmsEnv) addKey(t *testing.T, scheme, keyType, name string) (string, crypto.Signer) {
	t.Helper()
	priv, err := kmsfake.NewKey(keyType)
	if err != nil {
		t.Fatal(err)
	}
	switch scheme {
	case ledger.SchemeAWSKMS:
		if _, err := e.aws.AddKey(priv, "alias/"+name); err != nil {
			t.Fatal(err)
		}
		return e.aws.URI("alias/" + name), priv
	case ledger.SchemeHashiVault:
		if err := e.vault.AddKey(name, priv); err != nil {
			t.Fatal(err)
		}
		return e.vault.URI(name), priv
	}
	t.Fatalf("scheme %q", scheme)
	return "", nil
}

// secrets are the credentials the fakes hand out.
func (e *kmsEnv) secrets() []string {
	return []string{vaultTestToken, e.aws.SecretAccessKey}
}

func (e *kmsEnv) checkNoSecret(t *testing.T, err error) {
	t.Helper()
	for _, s := range e.secrets() {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes a secret: %v", err)
		}
	}
}

func loadKMSSigner(t *testing.T, uri string) signature.Signer {
	t.Helper()
	s, err := ledger.LoadSigner(t.Context(), uri, nil)
	if err != nil {
		t.Fatalf("load %s: %v", uri, err)
	}
	return s
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePublicKeyPEM exports a public key as PKIX PEM, as an operator would
// publish it, and reads it back the way verify -key does.
func writePublicKeyPEM(t *testing.T, dir, name string, pub crypto.PublicKey) (string, crypto.PublicKey) {
	t.Helper()
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, name, b)
	read, err := ledger.ReadPublicKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, read
}

func noteBody(cp []byte) []byte {
	return cp[:bytes.Index(cp, []byte("\n\n"))+1]
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// TestKMSSigners writes a ledger through each KMS key type, checks every
// checkpoint with the auditors' verifiers (x/mod note.Open, transparency-dev
// log.ParseCheckpoint) and with openssl, verifies the ledger with the
// exported public key, and checks what went over the wire.
func TestKMSSigners(t *testing.T) {
	for _, tc := range []struct{ scheme, keyType string }{
		{ledger.SchemeAWSKMS, ledger.KeyTypeECDSAP256},
		{ledger.SchemeHashiVault, ledger.KeyTypeEd25519},
		{ledger.SchemeHashiVault, ledger.KeyTypeECDSAP256},
	} {
		t.Run(tc.scheme+"/"+tc.keyType, func(t *testing.T) {
			ctx := t.Context()
			e := startKMS(t)
			uri, priv := e.addKey(t, tc.scheme, tc.keyType, "registrywatch")
			s := loadKMSSigner(t, uri)
			if !priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(ledgertest.PublicKey(s)) {
				t.Fatal("the signer's public key is not the KMS key's")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "ledger.db")
			if err := ledgertest.Build(path, s, testOrigin, 3, 5); err != nil {
				t.Fatal(err)
			}
			l, err := ledger.OpenReadOnly(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var last []byte
			for _, size := range []int64{5, 10, 15} {
				cp, err := l.Checkpoint(ctx, size)
				if err != nil {
					t.Fatal(err)
				}
				if c := openCheckpoint(t, cp, priv.Public()); c.Size != uint64(size) {
					t.Fatalf("checkpoint says size %d, want %d", c.Size, size)
				}
				last = cp
			}

			// What the provider sent for the last checkpoint.
			body := noteBody(last)
			switch tc.scheme {
			case ledger.SchemeAWSKMS:
				calls := e.aws.Calls()
				c := calls[len(calls)-1]
				if c.Operation != "Sign" || c.MessageType != "DIGEST" || c.SigningAlgorithm != "ECDSA_SHA_256" || !bytes.Equal(c.Message, sha256Of(body)) {
					t.Fatalf("last AWS call %+v, want Sign of SHA-256(note body) as DIGEST with ECDSA_SHA_256", c)
				}
			case ledger.SchemeHashiVault:
				calls := e.vault.Calls()
				c := calls[len(calls)-1]
				want := kmsfake.VaultCall{Method: "PUT", Path: "/v1/transit/sign/registrywatch", Input: body, SignatureAlgorithm: "pkcs1v15", KeyVersion: "1"}
				if tc.keyType == ledger.KeyTypeECDSAP256 {
					want.Path += "/sha2-256"
					want.HashAlgorithm = "sha2-256"
					want.Prehashed = true
					want.Input = sha256Of(body)
				}
				if diff := cmp.Diff(want, c); diff != "" {
					t.Fatalf("last Vault call (-want +got):\n%s", diff)
				}
			}

			pubFile, pub := writePublicKeyPEM(t, dir, "ledger.pub", ledgertest.PublicKey(s))
			r, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}})
			if err != nil {
				t.Fatalf("verify with the KMS public key: %v", err)
			}
			if fp, _ := ledger.Fingerprint(priv.Public()); len(r.Keys) != 1 || r.Keys[0].Fingerprint != fp || r.Entries != 15 {
				t.Fatalf("report %+v", r)
			}

			t.Run("openssl", func(t *testing.T) {
				if _, err := exec.LookPath("openssl"); err != nil {
					t.Skip("openssl is not installed")
				}
				blocks := auditorCommands(t)
				block, ok := "ecdsa", "Verified OK"
				if tc.keyType == ledger.KeyTypeEd25519 {
					block, ok = "ed25519", "Signature Verified Successfully"
				}
				odir := t.TempDir()
				pemBytes, err := os.ReadFile(pubFile)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, odir, "ledger.pub", pemBytes)
				writeFile(t, odir, "checkpoint", last)
				cmd := exec.Command("sh", "-e", "-c", blocks["extract"]+blocks[block])
				cmd.Dir = odir
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), ok) {
					t.Fatalf("openssl does not verify the checkpoint: %v\n%s", err, out)
				}
			})
		})
	}
}

// TestKMSRefusedKeyTypes checks that keys of other types are refused at
// load, by a message naming the type, before anything is signed.
func TestKMSRefusedKeyTypes(t *testing.T) {
	for _, tc := range []struct{ scheme, keyType, want string }{
		{ledger.SchemeAWSKMS, "ecdsa-p384", "key type ECDSA P-384 is not supported"},
		{ledger.SchemeAWSKMS, "rsa-2048", "key type RSA 2048 is not supported"},
		{ledger.SchemeAWSKMS, "ed25519", "key type Ed25519 is not supported"},
		{ledger.SchemeHashiVault, "ecdsa-p384", "key type ECDSA P-384 is not supported"},
		{ledger.SchemeHashiVault, "rsa-2048", "key type RSA 2048 is not supported"},
	} {
		t.Run(tc.scheme+"/"+tc.keyType, func(t *testing.T) {
			e := startKMS(t)
			uri, _ := e.addKey(t, tc.scheme, tc.keyType, "other")
			_, err := ledger.LoadSigner(t.Context(), uri, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			e.checkNoSecret(t, err)
			for _, c := range e.aws.Calls() {
				if c.Operation == "Sign" {
					t.Fatal("a refused AWS key was asked to sign")
				}
			}
			for _, c := range e.vault.Calls() {
				if strings.Contains(c.Path, "/sign/") {
					t.Fatal("a refused Vault key was asked to sign")
				}
			}
		})
	}
}

// TestKMSLoadErrors covers a missing key, a bad reference and a rejected
// token; no error may quote a credential, even when the server echoes it.
func TestKMSLoadErrors(t *testing.T) {
	e := startKMS(t)
	e.vault.SetQuirks(kmsfake.VaultQuirks{EchoToken: true})
	for _, tc := range []struct{ uri, want string }{
		{e.aws.URI("alias/missing"), "NotFoundException"},
		{e.vault.URI("missing"), "vault: read key: could not read data from transit key path"},
		{"hashivault://bad/key", "in the format hashivault://<key>"},
		{"awskms://not-a-key", "in the format awskms://"},
	} {
		_, err := ledger.LoadSigner(t.Context(), tc.uri, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.uri, err, tc.want)
		}
		e.checkNoSecret(t, err)
	}
	uri, _ := e.addKey(t, ledger.SchemeHashiVault, ledger.KeyTypeEd25519, "registrywatch")
	e.vault.SetToken("hvs.another-token")
	_, err := ledger.LoadSigner(t.Context(), uri, nil)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "<vault_token>") {
		t.Fatalf("rejected token: %v", err)
	}
	e.checkNoSecret(t, err)
}

// TestVaultEd25519PureSignature shows why the Vault provider is loaded with
// crypto.Hash(0) for Ed25519: given a hash, it sends the digest as the input
// and Vault signs the digest, which no note verifier accepts. LoadSigner
// refuses a Vault whose Ed25519 signatures are not over the message.
func TestVaultEd25519PureSignature(t *testing.T) {
	e := startKMS(t)
	uri, priv := e.addKey(t, ledger.SchemeHashiVault, ledger.KeyTypeEd25519, "registrywatch")
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte(testOrigin + "\n1\n" + strings.Repeat("A", 43) + "=\n")

	sv, err := hashivault.LoadSignerVerifier(uri, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if ed25519.Verify(pub, msg, sig) || !ed25519.Verify(pub, sha256Of(msg), sig) {
		t.Fatal("with crypto.SHA256 the provider was expected to sign SHA-256(message)")
	}

	sv, err = hashivault.LoadSignerVerifier(uri, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if sig, err = sv.SignMessage(bytes.NewReader(msg)); err != nil || !ed25519.Verify(pub, msg, sig) {
		t.Fatalf("with crypto.Hash(0) the provider must sign the message itself: %v", err)
	}

	e.vault.SetQuirks(kmsfake.VaultQuirks{Ed25519SignsDigest: true})
	_, err = ledger.LoadSigner(t.Context(), uri, nil)
	if err == nil || !strings.Contains(err.Error(), "not a pure Ed25519 signature over the message") {
		t.Fatalf("a Vault signing digests was accepted: %v", err)
	}
}

// TestKMSUnreachable checks that a batch whose checkpoint cannot be signed
// commits nothing and fails with ErrSign, and that the same batch commits
// once the KMS answers again.
func TestKMSUnreachable(t *testing.T) {
	for _, tc := range []struct{ scheme, keyType string }{
		{ledger.SchemeAWSKMS, ledger.KeyTypeECDSAP256},
		{ledger.SchemeHashiVault, ledger.KeyTypeEd25519},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			ctx := t.Context()
			e := startKMS(t)
			uri, _ := e.addKey(t, tc.scheme, tc.keyType, "registrywatch")
			setDown := e.aws.SetDown
			if tc.scheme == ledger.SchemeHashiVault {
				setDown = e.vault.SetDown
			}

			setDown(true)
			_, err := ledger.LoadSigner(ctx, uri, nil)
			if err == nil {
				t.Fatal("loaded a signer from an unreachable KMS")
			}
			e.checkNoSecret(t, err)
			setDown(false)

			s := loadKMSSigner(t, uri)
			dir := t.TempDir()
			path := filepath.Join(dir, "ledger.db")
			l := openLedger(t, path, s)
			if err := ledgertest.Fill(ctx, l, 0, 2, 10); err != nil {
				t.Fatal(err)
			}
			b := ledgertest.Batch(2, 10)
			b.Aux = []ledger.Aux{{Source: b.States[0].Source, Key: "cursor", Value: []byte("2")}}
			stateBefore, _, err := l.State(ctx, b.States[0].Source)
			if err != nil {
				t.Fatal(err)
			}

			setDown(true)
			_, err = l.Append(ctx, b)
			if !errors.Is(err, ledger.ErrSign) {
				t.Fatalf("append with the KMS down: %v, want ErrSign", err)
			}
			e.checkNoSecret(t, err)
			if n, _ := l.Size(ctx); n != 20 {
				t.Fatalf("size %d after a failed batch, want 20", n)
			}
			if cp, _ := l.LatestCheckpoint(ctx); cp == nil || !bytes.HasPrefix(noteBody(cp), []byte(testOrigin+"\n20\n")) {
				t.Fatalf("latest checkpoint after a failed batch:\n%s", cp)
			}
			if state, _, _ := l.State(ctx, b.States[0].Source); !bytes.Equal(state, stateBefore) {
				t.Fatal("the failed batch changed the state row")
			}
			if _, ok, _ := l.Aux(ctx, b.Aux[0].Source, "cursor"); ok {
				t.Fatal("the failed batch wrote an aux row")
			}

			setDown(false)
			res, err := l.Append(ctx, b)
			if err != nil {
				t.Fatalf("append once the KMS is back: %v", err)
			}
			if res.Size != 30 || res.Seqs[len(res.Seqs)-1] != 29 {
				t.Fatalf("result %+v", res)
			}
			if rec, err := l.Record(ctx, 29); err != nil || rec.Kind != ledger.KindSnapshot {
				t.Fatalf("record 29: %+v %v", rec, err)
			}
			if state, _, _ := l.State(ctx, b.States[0].Source); !bytes.Equal(state, b.States[0].Bytes) {
				t.Fatal("the retried batch did not write its state")
			}
			l.Close()
			_, pub := writePublicKeyPEM(t, dir, "ledger.pub", ledgertest.PublicKey(s))
			if _, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}}); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

// resignCheckpoint replaces the checkpoint of size with one over the same
// text signed by s, with raw SQL.
func resignCheckpoint(t *testing.T, path string, size int64, s signature.Signer) {
	t.Helper()
	signer, err := ledger.NewNoteSigner(testOrigin, s)
	if err != nil {
		t.Fatal(err)
	}
	err = ledgertest.Edit(path, func(tx *sql.Tx) error {
		var n []byte
		if err := tx.QueryRow(`SELECT note FROM checkpoints WHERE size = ?`, size).Scan(&n); err != nil {
			return err
		}
		resigned, err := note.Sign(&note.Note{Text: string(noteBody(n))}, signer)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE checkpoints SET note = ? WHERE size = ?`, resigned, size)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKMSKeyRotation rotates a ledger from a Vault Ed25519 key (A) to an
// AWS KMS ECDSA key (B) and back, and checks what verify accepts.
func TestKMSKeyRotation(t *testing.T) {
	ctx := t.Context()
	e := startKMS(t)
	uriA, privA := e.addKey(t, ledger.SchemeHashiVault, ledger.KeyTypeEd25519, "ledger-a")
	uriB, privB := e.addKey(t, ledger.SchemeAWSKMS, ledger.KeyTypeECDSAP256, "ledger-b")
	a, b := loadKMSSigner(t, uriA), loadKMSSigner(t, uriB)
	fpA, _ := ledger.Fingerprint(privA.Public())
	fpB, _ := ledger.Fingerprint(privB.Public())
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	_, pubA := writePublicKeyPEM(t, dir, "a.pub", ledgertest.PublicKey(a))
	_, pubB := writePublicKeyPEM(t, dir, "b.pub", ledgertest.PublicKey(b))

	if err := ledgertest.Build(path, a, testOrigin, 3, 10); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(path, ledger.Options{Signer: b})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := l.Record(ctx, 30)
	if err != nil || rec.Kind != ledger.KindKeyRotated || rec.Payload["old"] != fpA || rec.Payload["new"] != fpB {
		t.Fatalf("entry 30: %+v %v", rec, err)
	}
	cp, err := l.Checkpoint(ctx, 31)
	if err != nil {
		t.Fatal(err)
	}
	openCheckpoint(t, cp, privB.Public()) // key.rotated is signed by the new key
	if err := ledgertest.Fill(ctx, l, 3, 5, 10); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size int64
		fp   string
	}{{0, fpA}, {10, fpA}, {30, fpA}, {31, fpB}, {51, fpB}} {
		if k, err := l.KeyAt(ctx, tc.size); err != nil || k.Fingerprint != tc.fp {
			t.Errorf("key at size %d: %s %v, want %s", tc.size, k.Fingerprint, err, tc.fp)
		}
	}
	l.Close()

	// Reopening with the key in force rotates nothing.
	l, err = ledger.Open(path, ledger.Options{Signer: b})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := l.Size(ctx); n != 51 {
		t.Fatalf("size %d after reopening with the same key, want 51", n)
	}
	l.Close()

	r, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pubA, pubB}})
	if err != nil {
		t.Fatalf("verify -key A -key B: %v", err)
	}
	want := []ledger.KeyInForce{{Fingerprint: fpA, FromSeq: 0, Trusted: true}, {Fingerprint: fpB, FromSeq: 30, Trusted: true}}
	if diff := cmp.Diff(want, r.Keys); diff != "" {
		t.Fatalf("keys in force (-want +got):\n%s", diff)
	}
	r, err = ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pubA}})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 31 || !strings.Contains(err.Error(), fpB+") is not a trusted key") {
		t.Fatalf("verify -key A: %v", err)
	}
	r, err = ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pubB}})
	if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != 10 || !strings.Contains(err.Error(), fpA+") is not a trusted key") {
		t.Fatalf("verify -key B: %v", err)
	}
	for _, p := range r.Problems {
		if p.Size > 30 {
			t.Fatalf("verify -key B reports a checkpoint B signed: %s", p)
		}
	}

	// Back to A: a second rotation; both keys still verify their parts.
	l, err = ledger.Open(path, ledger.Options{Signer: a})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := l.KeyAt(ctx, 52); err != nil || k.Fingerprint != fpA {
		t.Fatalf("key at 52: %s %v", k.Fingerprint, err)
	}
	l.Close()
	r, err = ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pubA, pubB}})
	if err != nil || len(r.Keys) != 3 || r.Keys[2].Fingerprint != fpA || r.Keys[2].FromSeq != 51 {
		t.Fatalf("verify after rotating back: %+v %v", r, err)
	}

	// The recorded keys and the key.rotated entries must agree.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	forged := writeFile(t, t.TempDir(), "ledger.db", data)
	err = ledgertest.Edit(forged, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE meta SET value = replace(CAST(value AS TEXT), ?, ?) WHERE key = 'key/1'`, fpB, strings.Repeat("0", 64))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := ledger.OpenReadOnly(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.KeyAt(ctx, 31); !errors.Is(err, ledger.ErrTampered) {
		t.Fatalf("key at 31 with a forged key record: %v", err)
	}
	if k, err := ro.KeyAt(ctx, 30); err != nil || k.Fingerprint != fpA {
		t.Fatalf("key at 30 with a forged later key record: %s %v", k.Fingerprint, err)
	}
	ro.Close()

	// Checkpoints after the first rotation re-signed with the retired key A
	// (the rotation's own and a later one) are named.
	for _, size := range []int64{31, 41} {
		tampered := writeFile(t, t.TempDir(), "ledger.db", data)
		resignCheckpoint(t, tampered, size, a)
		r, err = ledger.Verify(ctx, tampered, ledger.VerifyOptions{Keys: []crypto.PublicKey{pubA, pubB}})
		if !errors.Is(err, ledger.ErrTampered) || r.Problems[0].Size != size || !strings.Contains(err.Error(), "signature does not verify with key "+fpB) {
			t.Fatalf("checkpoint %d signed by A after the rotation: %v", size, err)
		}
	}
}

// TestVaultKeyVersionPinned rotates the transit key inside Vault while the
// ledger is open: signing goes on with the version loaded at start, and the
// next start records the new version as key.rotated.
func TestVaultKeyVersionPinned(t *testing.T) {
	ctx := t.Context()
	e := startKMS(t)
	uri, v1 := e.addKey(t, ledger.SchemeHashiVault, ledger.KeyTypeEd25519, "registrywatch")
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	l := openLedger(t, path, loadKMSSigner(t, uri))
	if err := ledgertest.Fill(ctx, l, 0, 1, 5); err != nil {
		t.Fatal(err)
	}
	v2, _ := kmsfake.NewKey(ledger.KeyTypeEd25519)
	if err := e.vault.RotateKey("registrywatch", v2, false); err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(ctx, ledgertest.Batch(1, 5))
	if err != nil {
		t.Fatalf("append after a rotation inside Vault: %v", err)
	}
	openCheckpoint(t, res.Checkpoint, v1.Public())
	l.Close()

	s2 := loadKMSSigner(t, uri)
	if !v2.Public().(ed25519.PublicKey).Equal(ledgertest.PublicKey(s2)) {
		t.Fatal("a new start did not load the latest key version")
	}
	l = openLedger(t, path, s2)
	rec, err := l.Record(ctx, 10)
	if fp, _ := ledger.Fingerprint(v2.Public()); err != nil || rec.Kind != ledger.KindKeyRotated || rec.Payload["new"] != fp {
		t.Fatalf("entry 10: %+v %v", rec, err)
	}

	// Retiring the version in use (min_encryption_version) stops signing.
	v3, _ := kmsfake.NewKey(ledger.KeyTypeEd25519)
	if err := e.vault.RotateKey("registrywatch", v3, true); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, ledgertest.Batch(2, 5)); !errors.Is(err, ledger.ErrSign) {
		t.Fatalf("append with a retired key version: %v, want ErrSign", err)
	}
	l.Close()
	_, pub1 := writePublicKeyPEM(t, dir, "v1.pub", v1.Public())
	_, pub2 := writePublicKeyPEM(t, dir, "v2.pub", v2.Public())
	if _, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub1, pub2}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// operationsCommands returns the shell blocks of docs/OPERATIONS.md, by the
// name of the "operations-test" marker before each.
func operationsCommands(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- operations-test: ([a-z0-9-]+) -->\n```sh\n(.*?)```")
	blocks := map[string]string{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		blocks[string(m[1])] = string(m[2])
	}
	for _, name := range []string{"fingerprint", "aws-pem", "vault-pem"} {
		if blocks[name] == "" {
			t.Fatalf("docs/OPERATIONS.md has no %q command block", name)
		}
	}
	return blocks
}

// TestOperationsPublicKeyCommands runs the commands of docs/OPERATIONS.md
// that turn what AWS KMS and Vault give into the PEM public key auditors
// take, and print its fingerprint.
func TestOperationsPublicKeyCommands(t *testing.T) {
	for _, tool := range []string{"openssl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	blocks := operationsCommands(t)
	e := startKMS(t)
	sh := func(dir, script string) string {
		t.Helper()
		cmd := exec.Command("sh", "-e", "-c", script)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s\n%s", err, script, out)
		}
		return string(out)
	}
	check := func(dir string, want crypto.PublicKey) {
		t.Helper()
		got, err := ledger.ReadPublicKey(filepath.Join(dir, "ledger.pub"))
		if err != nil {
			t.Fatal(err)
		}
		if !want.(interface{ Equal(crypto.PublicKey) bool }).Equal(got) {
			t.Fatal("ledger.pub is not the KMS key")
		}
		fp, _ := ledger.Fingerprint(want)
		if out := sh(dir, blocks["fingerprint"]); out != fp+"\n" {
			t.Fatalf("fingerprint command printed %q, want %s", out, fp)
		}
	}

	t.Run("aws", func(t *testing.T) {
		_, priv := e.addKey(t, ledger.SchemeAWSKMS, ledger.KeyTypeECDSAP256, "registrywatch")
		der, _ := x509.MarshalPKIXPublicKey(priv.Public())
		dir := t.TempDir()
		// What `aws kms get-public-key --query PublicKey --output text` prints.
		writeFile(t, dir, "key.b64", []byte(base64.StdEncoding.EncodeToString(der)+"\n"))
		sh(dir, blocks["aws-pem"])
		check(dir, priv.Public())
	})
	for _, keyType := range []string{ledger.KeyTypeEd25519, ledger.KeyTypeECDSAP256} {
		t.Run("vault/"+keyType, func(t *testing.T) {
			name := "registrywatch-" + keyType
			e.addKey(t, ledger.SchemeHashiVault, keyType, name)
			latest, _ := kmsfake.NewKey(keyType)
			if err := e.vault.RotateKey(name, latest, false); err != nil {
				t.Fatal(err)
			}
			// What `vault read -format=json transit/keys/<name>` prints.
			req, _ := http.NewRequest(http.MethodGet, e.vault.URL()+"/v1/transit/keys/"+name, nil)
			req.Header.Set("X-Vault-Token", vaultTestToken)
			resp, err := e.vault.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			dir := t.TempDir()
			writeFile(t, dir, "key.json", body)
			sh(dir, blocks["vault-pem"])
			check(dir, latest.Public())
		})
	}
}

// TestOperationsDocNamesSchemes checks that docs/OPERATIONS.md describes
// every KMS scheme compiled in.
func TestOperationsDocNamesSchemes(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{ledger.SchemeAWSKMS, ledger.SchemeHashiVault} {
		if !bytes.Contains(doc, []byte("`"+s+"://")) {
			t.Errorf("docs/OPERATIONS.md does not describe %s://", s)
		}
	}
}
