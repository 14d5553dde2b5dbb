package ledger_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

// auditorCommands returns the shell blocks of docs/AUDITOR.md, by the name
// of the "auditor-test" marker before each.
func auditorCommands(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "AUDITOR.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- auditor-test: ([a-z0-9]+) -->\n```sh\n(.*?)```")
	blocks := map[string]string{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		blocks[string(m[1])] = string(m[2])
	}
	for _, name := range []string{"extract", "ed25519", "ecdsa", "keyid"} {
		if blocks[name] == "" {
			t.Fatalf("docs/AUDITOR.md has no %q command block", name)
		}
	}
	return blocks
}

// TestAuditorOpenSSL runs the exact commands of docs/AUDITOR.md with stock
// openssl on real checkpoints of both key types.
func TestAuditorOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	blocks := auditorCommands(t)
	for _, tc := range []struct{ keyType, block, ok string }{
		{ledger.KeyTypeEd25519, "ed25519", "Signature Verified Successfully"},
		{ledger.KeyTypeECDSAP256, "ecdsa", "Verified OK"},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			dir := t.TempDir()
			s := newSigner(t, tc.keyType)
			path := filepath.Join(dir, "ledger.db")
			if err := ledgertest.Build(path, s, testOrigin, 3, 5); err != nil {
				t.Fatal(err)
			}
			l, err := ledger.OpenReadOnly(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cp, err := l.LatestCheckpoint(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(ledgertest.PublicKey(s))
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string, b []byte) {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("ledger.pub", pubPEM)
			write("checkpoint", cp)
			sh := func(script string) (string, error) {
				cmd := exec.Command("sh", "-e", "-c", script)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if out, err := sh(blocks["extract"]); err != nil {
				t.Fatalf("extract: %v\n%s", err, out)
			}
			body, _ := os.ReadFile(filepath.Join(dir, "body"))
			if want := cp[:bytes.Index(cp, []byte("\n\n"))+1]; !bytes.Equal(body, want) {
				t.Fatalf("extracted body %q, want %q", body, want)
			}
			out, err := sh(blocks[tc.block])
			if err != nil || !strings.Contains(out, tc.ok) {
				t.Fatalf("openssl does not verify the checkpoint: %v\n%s", err, out)
			}
			out, err = sh(blocks["keyid"])
			sigs, _ := ledger.NoteSignatures(cp)
			want := fmt.Sprintf("%08x\n%08x\n", sigs[0].KeyID, sigs[0].KeyID)
			if err != nil || out != want {
				t.Fatalf("key ID commands printed %q (%v), want %q", out, err, want)
			}

			// A changed root, or a signature from another key, fails.
			tampered := bytes.Clone(cp)
			lines := bytes.SplitN(tampered, []byte("\n"), 3)
			lines[2][0] ^= 0x01 // first character of the root hash
			write("checkpoint", tampered)
			if out, err := sh(blocks["extract"] + blocks[tc.block]); err == nil {
				t.Fatalf("openssl verified a tampered checkpoint:\n%s", out)
			}
			other := newSigner(t, tc.keyType)
			otherPEM, _ := cryptoutils.MarshalPublicKeyToPEM(ledgertest.PublicKey(other))
			write("checkpoint", cp)
			write("ledger.pub", otherPEM)
			if out, err := sh(blocks["extract"] + blocks[tc.block]); err == nil {
				t.Fatalf("openssl verified with another key:\n%s", out)
			}
		})
	}
}
