package ledger

import (
	"os"
	"testing"
)

// TestMain removes the BenchmarkVerify fixture after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{verifyFixture.dir, smallFixture.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
