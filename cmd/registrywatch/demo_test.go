package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoUsageErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"demo", "-dir", dir}, "directory is not empty: give -force"},
		{[]string{"demo", "-speed", "2"}, "flag provided but not defined: -speed"},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
	} {
		code, stdout, stderr := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.out) {
			t.Errorf("%v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", tc.args, code, exitUsage, stdout, stderr, tc.out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "notes.txt")); err != nil || string(b) != "mine" {
		t.Fatalf("the refused demo touched the directory: %q %v", b, err)
	}
}
