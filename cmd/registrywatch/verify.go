package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// verifyCmd is `registrywatch verify`.
type verifyCmd struct{}

func init() { register(verifyCmd{}) }

func (verifyCmd) Name() string     { return "verify" }
func (verifyCmd) Synopsis() string { return "check the ledger's integrity, signatures and states" }

const verifyHelp = `
Checks the whole ledger offline, reading it without a lock: every entry against
the Merkle tree, every checkpoint's root and signature against the key in force
at its size, every source's state against its latest snapshot, and, with
-checkpoint, that the ledger extends checkpoints kept from earlier. Entries after
the last checkpoint are a failure ("unsigned tail").

-key is the trusted public key (repeat it for each key the ledger was rotated
through). Without -key, verify refuses unless -trust-embedded-key is given: the
key recorded in the ledger proves integrity against accidents, not against
whoever holds the file.

With -bundle, checks an evidence bundle written by export instead, offline and
without the ledger (see docs/AUDITOR.md).

Exit status 1 names the first bad seq, checkpoint or source.`

// ledgerPathFlag registers -ledger (and -config, unless the command already
// registered it) and returns the function that yields the ledger path once
// the flags are parsed: -ledger, else ledger.path of the config file (-config,
// else $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml). Every command that
// reads or writes a ledger gets its path here.
func ledgerPathFlag(fs *flag.FlagSet) func() (string, error) {
	path := fs.String("ledger", "", "the ledger `FILE` (default: ledger.path of the config file)")
	if fs.Lookup("config") == nil {
		fs.String("config", "", "config `FILE` giving ledger.path when -ledger is not set (default $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml)")
	}
	return func() (string, error) {
		if *path != "" {
			return *path, nil
		}
		configFlag := fs.Lookup("config").Value.String()
		if configFlag == "" && os.Getenv(config.EnvConfig) == "" {
			if _, err := os.Stat(config.DefaultPath); errors.Is(err, os.ErrNotExist) {
				return "", usageErrf("-ledger is required (or a config file giving ledger.path: -config, $%s or ./%s)", config.EnvConfig, config.DefaultPath)
			}
		}
		p, err := config.LedgerPath("", configFlag, os.Getenv)
		if err != nil {
			return "", usageErr(err)
		}
		return p, nil
	}
}

func (verifyCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "verify", "-ledger FILE -key PUB... [-checkpoint FILE...] [-trust-embedded-key] | -bundle DIR|FILE.zip -key PUB... [-checkpoint FILE...]", verifyHelp)
	ledgerPath := ledgerPathFlag(fs)
	var keyFiles, checkpointFiles multiFlag
	fs.Var(&keyFiles, "key", "trusted public key `PUB` (PEM); repeatable")
	fs.Var(&checkpointFiles, "checkpoint", "a signed checkpoint `FILE` kept from earlier; repeatable")
	trustEmbedded := fs.Bool("trust-embedded-key", false, "without -key, trust the key recorded in the ledger")
	bundle := fs.String("bundle", "", "check an evidence bundle `DIR|FILE.zip` (made by export) instead of a ledger")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *bundle != "" {
		return verifyBundle(ctx, env, *bundle, keyFiles, checkpointFiles)
	}
	path, err := ledgerPath()
	if err != nil {
		return err
	}
	opts := ledger.VerifyOptions{TrustEmbeddedKey: *trustEmbedded}
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
	if _, err := os.Stat(path); err != nil {
		return usageErr(err)
	}
	if isTerminal(env.Stderr) {
		opts.Progress = progressPrinter(env.Stderr)
	}
	r, err := ledger.Verify(ctx, path, opts)
	if opts.Progress != nil {
		fmt.Fprint(env.Stderr, "\r\033[K")
	}
	switch {
	case errors.Is(err, ledger.ErrTampered):
		printProblems(env.Stderr, r.Problems)
		return checkErr(err)
	case err != nil:
		return checkErr(err)
	}
	printReport(env.Stdout, path, r)
	return nil
}

func printProblems(w io.Writer, problems []ledger.Problem) {
	const max = 20
	for i, p := range problems {
		if i == max {
			fmt.Fprintf(w, "  ... and %d more\n", len(problems)-max)
			break
		}
		fmt.Fprintf(w, "  FAIL %s\n", p.Message)
	}
}

func printReport(w io.Writer, path string, r *ledger.Report) {
	latest := "none"
	if r.Latest != nil {
		if cp, err := ledger.ParseCheckpoint(r.Latest); err == nil {
			latest = fmt.Sprintf("latest at size %d", cp.Size)
		}
	}
	fmt.Fprintf(w, "ok: %s verifies (origin %s)\n", path, r.Origin)
	fmt.Fprintf(w, "  entries:     %d\n", r.Entries)
	fmt.Fprintf(w, "  checkpoints: %d (%s)", r.Checkpoints, latest)
	if r.ExternalCheckpoints > 0 {
		fmt.Fprintf(w, "; extends %d kept checkpoint(s)", r.ExternalCheckpoints)
	}
	fmt.Fprintln(w)
	var keys []string
	for _, k := range r.Keys {
		keys = append(keys, fmt.Sprintf("%s (from seq %d)", k.Fingerprint, k.FromSeq))
	}
	fmt.Fprintf(w, "  keys:        %s\n", strings.Join(keys, ", "))
	sources := "none"
	if len(r.Sources) > 0 {
		sources = strings.Join(r.Sources, ", ") + " (state matches the latest snapshot)"
	}
	fmt.Fprintf(w, "  sources:     %s\n", sources)
	if r.TrustedEmbeddedKey {
		fmt.Fprintln(w, "  warning:     no -key given; the key embedded in the ledger was trusted. This proves")
		fmt.Fprintln(w, "               integrity against accidents, not against whoever holds the file.")
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressPrinter returns a Progress function that redraws one status line
// at most ten times a second.
func progressPrinter(w io.Writer) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || done == total {
			last = now
			fmt.Fprintf(w, "\rverifying: %d / %d entries", done, total)
		}
	}
}
