package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

// TestMain lets scripts run the binary as "registrywatch" (testscript
// re-executes the test binary under that name).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"registrywatch": func() {
			env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
			os.Exit(run(context.Background(), env, os.Args[1:]))
		},
	})
}

// TestScripts runs the command-line sessions in testdata/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata",
		Cmds: scriptCmds,
	})
}

// scriptCmds are the commands scripts use to build and tamper with ledgers;
// the shipped binary has no such commands.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"mkledger": cmdMkledger,
	"tamper":   cmdTamper,
	"filemode": cmdFilemode,
}

// cmdFilemode: filemode FILE PERM checks a file's permission bits (octal).
func cmdFilemode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o (want %s%#o)", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdMkledger: mkledger [-origin O] [-batches N] [-per N] KEYFILE LEDGER
// writes a ledger signed with KEYFILE (passphrase from
// $REGISTRYWATCH_PASSPHRASE), filled as ledgertest.Fill does: batch n is
// observed at 2025-06-01T12:00Z + n minutes, for source mlflow-prod (even n)
// or wandb-prod (odd n), and ends with a snapshot entry.
func cmdMkledger(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkledger")
	}
	fs := flag.NewFlagSet("mkledger", flag.ContinueOnError)
	origin := fs.String("origin", "example.com/ledger", "origin")
	batches := fs.Int("batches", 3, "batches")
	per := fs.Int("per", 4, "entries per batch")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		ts.Fatalf("usage: mkledger [-origin O] [-batches N] [-per N] KEYFILE LEDGER")
	}
	pw := func() ([]byte, error) { return []byte(ts.Getenv(passphraseEnv)), nil }
	s, err := ledger.LoadSigner(context.Background(), ts.MkAbs(fs.Arg(0)), pw)
	ts.Check(err)
	path := ts.MkAbs(fs.Arg(1))
	l, err := ledger.Open(path, ledger.Options{Signer: s, Origin: *origin})
	ts.Check(err)
	ts.Check(ledgertest.Fill(context.Background(), l, 0, *batches, *per))
	ts.Check(l.Close())
}

// cmdTamper: tamper LEDGER HOW [ARGS] edits a ledger file with raw SQL, as
// someone holding the file could. HOW is one of: leaf SEQ, delete SEQ,
// insert SEQ, append, swap SEQ SEQ, checkpoint SIZE, signature SIZE,
// drop-last-checkpoint, state SOURCE, delete-state SOURCE, rekey KEYFILE,
// truncate BATCHES PER.
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! tamper")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: tamper LEDGER HOW [ARGS]")
	}
	path, how, rest := ts.MkAbs(args[0]), args[1], args[2:]
	num := func(i int) int64 {
		if i >= len(rest) {
			ts.Fatalf("tamper %s: missing argument", how)
		}
		n, err := strconv.ParseInt(rest[i], 10, 64)
		ts.Check(err)
		return n
	}
	arg := func(i int) string {
		if i >= len(rest) {
			ts.Fatalf("tamper %s: missing argument", how)
		}
		return rest[i]
	}
	var err error
	switch how {
	case "leaf":
		err = ledgertest.FlipLeafByte(path, num(0))
	case "delete":
		err = ledgertest.DeleteEntry(path, num(0))
	case "insert":
		err = ledgertest.InsertEntry(path, num(0))
	case "append":
		err = ledgertest.AppendEntry(path)
	case "swap":
		err = ledgertest.SwapEntries(path, num(0), num(1))
	case "checkpoint":
		err = ledgertest.CorruptCheckpoint(path, num(0), false)
	case "signature":
		err = ledgertest.CorruptCheckpoint(path, num(0), true)
	case "drop-last-checkpoint":
		err = ledgertest.DeleteLastCheckpoint(path)
	case "state":
		err = ledgertest.EditState(path, arg(0))
	case "delete-state":
		err = ledgertest.DeleteState(path, arg(0))
	case "rekey":
		s, lerr := ledger.LoadSigner(context.Background(), ts.MkAbs(arg(0)), nil)
		ts.Check(lerr)
		err = ledgertest.Rekey(path, s)
	case "truncate":
		err = ledgertest.TruncateBatches(path, int(num(0)), int(num(1)))
	default:
		err = fmt.Errorf("unknown tampering %q", how)
	}
	ts.Check(err)
}

// runCmd runs the CLI in-process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	code = run(t.Context(), env, args)
	return code, out.String(), errOut.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ledger")
	if code, _, stderr := runCmd(t, "keygen", "-out", prefix); code != exitOK {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	s, err := ledger.LoadSigner(t.Context(), prefix+".key", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ledger.db")
	if err := ledgertest.Build(path, s, "example.com/ledger", 3, 10); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.db")
	if err := ledgertest.Build(tampered, s, "example.com/ledger", 3, 10); err != nil {
		t.Fatal(err)
	}
	if err := ledgertest.FlipLeafByte(tampered, 12); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"verify", "-ledger", path, "-key", prefix + ".pub"}, exitOK, "ok: "},
		{[]string{"verify", "-ledger", tampered, "-key", prefix + ".pub"}, exitCheck, "seq 12: "},
		{[]string{"verify", "-ledger", path}, exitCheck, "no trusted key"},
		{[]string{"verify", "-key", prefix + ".pub"}, exitUsage, "-ledger is required"},
		{[]string{"verify", "-ledger", filepath.Join(dir, "missing.db"), "-key", prefix + ".pub"}, exitUsage, "missing.db"},
		{[]string{"verify", "-ledger", path, "-key", filepath.Join(dir, "missing.pub")}, exitUsage, "missing.pub"},
		{[]string{"verify", "-ledger", path, "-bogus"}, exitUsage, "bogus"},
		{[]string{"keygen", "-out", prefix}, exitUsage, "refusing to overwrite"},
		{[]string{"keygen", "-out", filepath.Join(dir, "x"), "-encrypt"}, exitUsage, "REGISTRYWATCH_PASSPHRASE"},
		{[]string{"checkpoint", "-ledger", path}, exitOK, "example.com/ledger\n30\n"},
		{[]string{"log", "-ledger", path, "-since", "soon"}, exitUsage, "-since"},
		{[]string{"version"}, exitOK, "registrywatch "},
	} {
		code, stdout, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
			t.Errorf("%v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", tc.args, code, tc.code, stdout, stderr, tc.out)
		}
	}
}

func TestVersionFromLinker(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	code, stdout, _ := runCmd(t, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "registrywatch v1.2.3 (go") {
		t.Fatalf("version: %d %q", code, stdout)
	}
}
