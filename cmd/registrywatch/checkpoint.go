package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// checkpointCmd is `registrywatch checkpoint`.
type checkpointCmd struct{}

func init() { register(checkpointCmd{}) }

func (checkpointCmd) Name() string     { return "checkpoint" }
func (checkpointCmd) Synopsis() string { return "print the latest signed checkpoint" }

const checkpointHelp = `
Prints the ledger's latest signed checkpoint (a C2SP signed note: origin, tree
size, root hash, signature) on stdout and, on stderr, its note key ID and the
fingerprint of the key in force (hex SHA-256 of its PKIX DER). Keep it
somewhere the ledger's operator cannot write, and pass it back to
verify -checkpoint: the ledger must extend it. docs/AUDITOR.md shows how to
check its signature with openssl.`

func (checkpointCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "checkpoint", "-ledger FILE", checkpointHelp)
	ledgerPath := ledgerPathFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := ledgerPath()
	if err != nil {
		return err
	}
	l, err := ledger.OpenReadOnly(path)
	if err != nil {
		return usageErr(err)
	}
	defer l.Close()
	cp, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	if cp == nil {
		return checkErr(errors.New("the ledger has no checkpoint yet (no entries)"))
	}
	sigs, err := ledger.NoteSignatures(cp)
	if err != nil {
		return checkErr(err)
	}
	parsed, err := ledger.ParseCheckpoint(cp)
	if err != nil {
		return checkErr(err)
	}
	key, err := l.KeyAt(ctx, parsed.Size)
	if err != nil {
		return checkErr(err)
	}
	if _, err := env.Stdout.Write(cp); err != nil {
		return err
	}
	for _, s := range sigs {
		fmt.Fprintf(env.Stderr, "key ID %08x (%s)\n", s.KeyID, s.Name)
	}
	fmt.Fprintf(env.Stderr, "key in force: %s\n", key.Fingerprint)
	return nil
}
