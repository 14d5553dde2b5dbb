package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/registrywatch/registrywatch/internal/export/exporttest"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

func init() {
	scriptCmds["mkstory"] = cmdMkstory
	scriptCmds["replace"] = cmdReplace
	scriptCmds["delline"] = cmdDelline
}

// cmdMkstory: mkstory [-origin O] KEYFILE LEDGER MODEL... writes the story
// of exporttest.WriteStory for each model (days from 2026-03-02 to
// 2026-03-09) into a new ledger signed with KEYFILE.
func cmdMkstory(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkstory")
	}
	fs := flag.NewFlagSet("mkstory", flag.ContinueOnError)
	origin := fs.String("origin", "example.com/ledger", "origin")
	if err := fs.Parse(args); err != nil || fs.NArg() < 3 {
		ts.Fatalf("usage: mkstory [-origin O] KEYFILE LEDGER MODEL...")
	}
	s, err := ledger.LoadSigner(context.Background(), ts.MkAbs(fs.Arg(0)), nil)
	ts.Check(err)
	l, err := ledger.Open(ts.MkAbs(fs.Arg(1)), ledger.Options{Signer: s, Origin: *origin})
	ts.Check(err)
	_, err = exporttest.WriteStory(context.Background(), l, fs.Args()[2:])
	ts.Check(err)
	ts.Check(l.Close())
}

// cmdReplace: replace FILE OLD NEW replaces the first OLD in FILE by NEW,
// as someone editing a bundle by hand would.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	if !bytes.Contains(b, []byte(args[1])) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(path, bytes.Replace(b, []byte(args[1]), []byte(args[2]), 1), 0o644))
}

// cmdDelline: delline FILE N removes line N (from 1) of FILE.
func cmdDelline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: delline FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	lines := bytes.SplitAfter(b, []byte("\n"))
	if n < 1 || n > len(lines) {
		ts.Fatalf("%s has no line %d", args[0], n)
	}
	ts.Check(os.WriteFile(path, bytes.Join(append(lines[:n-1], lines[n:]...), nil), 0o644))
}
