package config

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse checks that the loader never panics, and that whatever it accepts
// holds the invariants validation promises.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "../../configs/registrywatch.example.yaml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(minimal))
	f.Add([]byte("sources:\n  - &a\n    name: a\n    type: mlflow\n    url: http://m\n  - <<: *a\n    name: b\n"))
	f.Add([]byte("sources: &a [*a]"))
	f.Add([]byte("sources:\n  - name: x\n    type: wandb\n    organization: ${V}\n    api_key: $$${V}\n"))

	env := envMap(map[string]string{"V": "a\nb: {c}", "SLACK_WEBHOOK_URL": "https://h/x", "MLFLOW_TOKEN": "t",
		"DATABRICKS_TOKEN": "t", "WANDB_API_KEY": "k"})
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(t.TempDir(), "registrywatch.yaml")
		cfg, err := Parse(data, file, env)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if len(cfg.Sources) == 0 || cfg.Ledger.Publish.Schedule == nil {
			t.Fatalf("accepted config breaks invariants: %+v", cfg)
		}
		for _, s := range cfg.Sources {
			if s.Schedule.Schedule == nil || s.Concurrency < 1 || s.Concurrency > 64 || s.Timeout <= 0 || s.Name == "" {
				t.Fatalf("accepted source breaks invariants: %+v", s)
			}
		}
		if len(cfg.Digest()) != 64 || cfg.LogValue().Kind().String() != "Group" {
			t.Fatal("bad digest or log value")
		}
		if _, err := yaml.Marshal(cfg); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
