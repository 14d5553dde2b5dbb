package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// keygenCmd is `registrywatch keygen`.
type keygenCmd struct{}

func init() { register(keygenCmd{}) }

func (keygenCmd) Name() string     { return "keygen" }
func (keygenCmd) Synopsis() string { return "make a key pair to sign the ledger's checkpoints" }

const keygenHelp = `
Writes PREFIX.key (the private key, mode 0600) and PREFIX.pub (the public key,
PKIX PEM, for auditors and verify -key), and prints the public key's
fingerprint: the hex SHA-256 of its PKIX DER. Existing files are never
overwritten.

With -encrypt the private key is encrypted in sigstore's format; the passphrase
comes from $REGISTRYWATCH_PASSPHRASE, else it is asked twice on the terminal.`

// passphraseEnv names the variable holding a key file's passphrase.
const passphraseEnv = "REGISTRYWATCH_PASSPHRASE"

func (keygenCmd) Run(_ context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "keygen", "[-type ed25519|ecdsa-p256] [-out PREFIX] [-encrypt]", keygenHelp)
	keyType := fs.String("type", ledger.KeyTypeEd25519, "key `type`: ed25519 or ecdsa-p256")
	prefix := fs.String("out", "ledger", "write `PREFIX`.key and PREFIX.pub")
	encrypt := fs.Bool("encrypt", false, "encrypt the private key with a passphrase")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyType != ledger.KeyTypeEd25519 && *keyType != ledger.KeyTypeECDSAP256 {
		return usageErrf("-type %q: want ed25519 or ecdsa-p256", *keyType)
	}
	keyPath, pubPath := *prefix+".key", *prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return usageErrf("%s exists: refusing to overwrite it", p)
		}
	}
	var passphrase []byte
	if *encrypt {
		var err error
		if passphrase, err = newPassphrase(env); err != nil {
			return err
		}
	}
	priv, pub, fingerprint, err := ledger.GenerateKey(*keyType, passphrase)
	if err != nil {
		return err
	}
	if err := writeNewFile(keyPath, priv, 0o600); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, pub, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	fmt.Fprintln(env.Stdout, fingerprint)
	fmt.Fprintf(env.Stderr, "wrote %s (private: keep it secret) and %s (%s public key, fingerprint above)\n", keyPath, pubPath, *keyType)
	return nil
}

// newPassphrase reads a new passphrase from the environment, else twice from
// the terminal.
func newPassphrase(env *Env) ([]byte, error) {
	if p := env.Getenv(passphraseEnv); p != "" {
		return []byte(p), nil
	}
	f, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, usageErrf("-encrypt needs $%s or a terminal to ask for the passphrase", passphraseEnv)
	}
	read := func(prompt string) ([]byte, error) {
		fmt.Fprint(env.Stderr, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		return p, err
	}
	p1, err := read("Passphrase for the new key: ")
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p1) == 0 {
		return nil, usageErrf("empty passphrase")
	}
	p2, err := read("Same passphrase again: ")
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if !bytes.Equal(p1, p2) {
		return nil, usageErrf("the passphrases differ")
	}
	return p1, nil
}

// writeNewFile writes data to a temporary file beside path, then links it
// into place, failing if path exists: a reader never sees a partial file and
// nothing is ever overwritten.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeAndClose(tmp, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return usageErrf("%s exists: refusing to overwrite it", path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeAndClose(f *os.File, data []byte, perm os.FileMode) error {
	_, err := io.Copy(f, bytes.NewReader(data))
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
