package export_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

func BenchmarkZZBuild(b *testing.B) {
	small, large := "/tmp/bl/100k", "/tmp/bl/1M"
	os.MkdirAll(small, 0o755)
	os.MkdirAll(large, 0o755)
	priv, pub, _, _ := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
	for _, d := range []string{small, large} {
		os.WriteFile(filepath.Join(d, "ledger.key"), priv, 0o600)
		os.WriteFile(filepath.Join(d, "ledger.pub"), pub, 0o644)
	}
	buildLedger(b, small, 0, 100)
	copyFile(b, filepath.Join(small, "ledger.db"), filepath.Join(large, "ledger.db"))
	buildLedger(b, large, 100, 1000)
}
