package ledger

import (
	"os"
	"testing"
)

// TestMain removes the BenchmarkVerify fixture after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if verifyFixture.dir != "" {
		os.RemoveAll(verifyFixture.dir)
	}
	os.Exit(code)
}
