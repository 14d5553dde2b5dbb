package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// exportCmd is `registrywatch export`.
type exportCmd struct{}

func init() { register(exportCmd{}) }

func (exportCmd) Name() string     { return "export" }
func (exportCmd) Synopsis() string { return "export an evidence bundle for auditors" }

const exportHelp = `
Writes the evidence bundle of a period for an auditor: every ledger entry
observed in [-from, -to) with the proofs that tie them to a signed checkpoint,
population.csv and population.xlsx (every production change with its approval
verdict), exceptions.csv, production_history.csv, coverage.csv, inventory.csv,
report.html, README.txt, and manifest.json signed into manifest.sig.
docs/AUDITOR.md explains every file.

DATE is YYYY-MM-DD (UTC midnight) or RFC 3339. -out is a directory or a .zip
file; an existing non-empty one is refused. The ledger is first verified
against -key (repeatable); without -key it is verified against the key it
records, which proves integrity against accidents only, and a warning says so.

The manifest is signed with -signer (a key file or KMS URI; an encrypted key's
passphrase comes from -passphrase-file or $REGISTRYWATCH_PASSPHRASE), else with
ledger.signer of the config (-config, else $REGISTRYWATCH_CONFIG, else
./registrywatch.yaml), which also gives the default -ledger.

-since-checkpoint FILE adds the proof that the ledger extends a checkpoint kept
from an earlier export. -sample N -seed S writes an evidence packet for the N
population rows with the smallest SHA-256 of "S\nledger_seq". -source and -model
restrict the export (the bundle is then not complete; each entry carries its
own inclusion proof).

Exit status 1 if the ledger does not verify.`

func (exportCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "export", "-from DATE -to DATE -out DIR|FILE.zip [-ledger FILE] [-config FILE | -signer KEY|URI [-passphrase-file F]] [-key PUB...] [-since-checkpoint FILE] [-sample N -seed S] [-source S] [-model M]", exportHelp)
	from := fs.String("from", "", "start of the period, `DATE` (included)")
	to := fs.String("to", "", "end of the period, `DATE` (excluded)")
	out := fs.String("out", "", "the bundle to write: a `DIR`ectory or a FILE.zip")
	ledgerFlag := fs.String("ledger", "", "the ledger `FILE` (default ledger.path of the config)")
	configFlag := fs.String("config", "", "config `FILE` for the default ledger and signer")
	signerFlag := fs.String("signer", "", "signing `KEY` file or KMS URI for the manifest (default ledger.signer of the config)")
	passphraseFile := fs.String("passphrase-file", "", "`FILE` holding the passphrase of an encrypted -signer key")
	var keyFiles multiFlag
	fs.Var(&keyFiles, "key", "trusted public key `PUB` (PEM) the ledger is verified against; repeatable")
	since := fs.String("since-checkpoint", "", "a signed checkpoint `FILE` kept from an earlier export")
	sample := fs.Int("sample", 0, "`N` population rows to sample into evidence packets")
	seed := fs.String("seed", "", "the sample's `SEED`")
	source := fs.String("source", "", "export only the entries of `SOURCE`")
	model := fs.String("model", "", "export only the entries of the model named `M`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := export.Options{Out: *out, Sample: *sample, Seed: *seed, Source: *source, Model: *model, Tool: "registrywatch " + versionString()}
	var err error
	switch {
	case *from == "" || *to == "":
		return usageErrf("-from and -to are required")
	case *out == "":
		return usageErrf("-out is required")
	case *sample < 0:
		return usageErrf("-sample must not be negative")
	case *sample > 0 && *seed == "":
		return usageErrf("-sample needs -seed")
	}
	if opts.From, err = export.ParseDate(*from); err != nil {
		return usageErr(fmt.Errorf("-from: %w", err))
	}
	if opts.To, err = export.ParseDate(*to); err != nil {
		return usageErr(fmt.Errorf("-to: %w", err))
	}
	if opts.Ledger, err = config.LedgerPath(*ledgerFlag, *configFlag, env.Getenv); err != nil {
		return usageErr(err)
	}
	if _, err := os.Stat(opts.Ledger); err != nil {
		return usageErr(err)
	}
	for _, f := range keyFiles {
		pub, err := ledger.ReadPublicKey(f)
		if err != nil {
			return usageErr(err)
		}
		opts.Keys = append(opts.Keys, pub)
	}
	if *since != "" {
		if opts.SinceCheckpoint, err = os.ReadFile(*since); err != nil {
			return usageErr(err)
		}
	}
	if opts.Signer, err = exportSigner(ctx, env, *signerFlag, *passphraseFile, *configFlag); err != nil {
		return usageErr(err)
	}
	if isTerminal(env.Stderr) {
		opts.Progress = phaseProgress(env.Stderr)
	}
	sum, err := export.Run(ctx, opts)
	if opts.Progress != nil {
		fmt.Fprint(env.Stderr, "\r\033[K")
	}
	switch {
	case errors.Is(err, export.ErrUsage), errors.Is(err, export.ErrOutExists):
		return usageErr(err)
	case err != nil:
		return checkErr(err)
	}
	printSummary(env.Stdout, sum)
	if sum.TrustedEmbeddedKey {
		fmt.Fprintln(env.Stderr, "warning: no -key given; the ledger was verified against the key embedded in it. This proves")
		fmt.Fprintln(env.Stderr, "         integrity against accidents, not against whoever holds the file.")
	}
	return nil
}

// exportSigner loads the manifest's signer: -signer, else ledger.signer of
// the config. An encrypted key's passphrase comes from -passphrase-file,
// else $REGISTRYWATCH_PASSPHRASE, else ledger.passphrase_file.
func exportSigner(ctx context.Context, env *Env, ref, passphraseFile, configFlag string) (signature.Signer, error) {
	if ref == "" {
		path := config.ResolvePath(configFlag, env.Getenv)
		led, err := config.LoadLedger(path, env.Getenv)
		if err != nil {
			return nil, fmt.Errorf("no -signer given; ledger.signer from config: %w", err)
		}
		ref = led.Signer
		if passphraseFile == "" {
			passphraseFile = led.PassphraseFile
		}
	}
	passphrase := func() ([]byte, error) {
		if passphraseFile != "" {
			b, err := os.ReadFile(passphraseFile)
			if err != nil {
				return nil, fmt.Errorf("passphrase file: %w", err)
			}
			return []byte(strings.TrimRight(string(b), "\r\n")), nil
		}
		if p := env.Getenv(passphraseEnv); p != "" {
			return []byte(p), nil
		}
		return nil, fmt.Errorf("the signing key is encrypted: give -passphrase-file or set $%s", passphraseEnv)
	}
	return ledger.LoadSigner(ctx, ref, passphrase)
}

func printSummary(w io.Writer, s *export.Summary) {
	fmt.Fprintf(w, "exported %s (origin %s)\n", s.Out, s.Origin)
	if s.Last >= s.First {
		fmt.Fprintf(w, "  entries:     seq %d to %d: %d in the period, %d at its boundary, %d carried in\n", s.First, s.Last, s.Entries, s.Boundary, s.CarryIn)
	} else {
		fmt.Fprintf(w, "  entries:     none in the period, %d carried in\n", s.CarryIn)
	}
	fmt.Fprintf(w, "  population:  %d rows\n", s.Population)
	fmt.Fprintf(w, "  exceptions:  %d (%d open at period end)\n", s.Exceptions, s.Open)
	if len(s.Samples) > 0 {
		seqs := make([]string, len(s.Samples))
		for i, q := range s.Samples {
			seqs[i] = fmt.Sprint(q)
		}
		fmt.Fprintf(w, "  sample:      %s\n", strings.Join(seqs, " "))
	}
	complete := "yes"
	if !s.Complete {
		complete = "no (filtered)"
	}
	fmt.Fprintf(w, "  complete:    %s\n", complete)
	fmt.Fprintf(w, "  checkpoint:  size %d (keep the bundle's checkpoint file for the next export's -since-checkpoint)\n", s.CheckpointSize)
}

// phaseProgress returns a Progress function that redraws one status line at
// most ten times a second.
func phaseProgress(w io.Writer) func(phase string, done, total int64) {
	var last time.Time
	return func(phase string, done, total int64) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || done == total {
			last = now
			fmt.Fprintf(w, "\r%s: %d / %d entries\033[K", map[string]string{"verify": "verifying", "export": "exporting"}[phase], done, total)
		}
	}
}

// verifyBundle is `registrywatch verify -bundle`: it checks an evidence
// bundle offline with export.VerifyBundle.
func verifyBundle(ctx context.Context, env *Env, bundle string, keyFiles, checkpointFiles []string) error {
	if len(keyFiles) == 0 {
		return usageErrf("-bundle needs -key: the public key of the bundle's signer and of the ledger")
	}
	var opts export.VerifyOptions
	for _, f := range keyFiles {
		pub, err := ledger.ReadPublicKey(f)
		if err != nil {
			return usageErr(err)
		}
		opts.Keys = append(opts.Keys, pub)
	}
	for _, f := range checkpointFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return usageErr(err)
		}
		opts.Checkpoints = append(opts.Checkpoints, b)
	}
	if _, err := os.Stat(bundle); err != nil {
		return usageErr(err)
	}
	r, err := export.VerifyBundle(ctx, bundle, opts)
	switch {
	case errors.Is(err, export.ErrBundleInvalid):
		for i, p := range r.Problems {
			if i == 20 {
				fmt.Fprintf(env.Stderr, "  ... and %d more\n", len(r.Problems)-20)
				break
			}
			fmt.Fprintf(env.Stderr, "  FAIL %s\n", p)
		}
		return checkErr(err)
	case err != nil:
		return checkErr(err)
	}
	m := r.Manifest
	fmt.Fprintf(env.Stdout, "ok: bundle %s verifies (origin %s)\n", bundle, m.Origin)
	fmt.Fprintf(env.Stdout, "  period:      %s to %s\n", m.Parameters.From, m.Parameters.To)
	fmt.Fprintf(env.Stdout, "  checkpoint:  size %d, signed by the key in force %s\n", r.Checkpoint.Size, m.Key.Fingerprint)
	proof := "the range proof leads to its root"
	if !m.Complete {
		proof = "each has a valid inclusion proof (filtered export)"
	}
	fmt.Fprintf(env.Stdout, "  entries:     %d in events.jsonl (%s), %d carried in\n", r.Events, proof, r.CarryIn)
	fmt.Fprintf(env.Stdout, "  files:       %d match the signed manifest; the derived files match events.jsonl\n", r.Files)
	if r.Samples > 0 {
		fmt.Fprintf(env.Stdout, "  samples:     %d packets (the smallest ranks for seed %q)\n", r.Samples, m.Parameters.Seed)
	}
	if r.Extends > 0 {
		fmt.Fprintf(env.Stdout, "  extends:     %d kept checkpoint(s)\n", r.Extends)
	}
	return nil
}
