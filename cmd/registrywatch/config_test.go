package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/registrywatch/registrywatch/internal/config"
	"go.yaml.in/yaml/v3"
)

// runCLI runs the command line with env vars vars and returns the exit code,
// stdout and stderr.
func runCLI(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }}
	code := run(t.Context(), env, args)
	return code, stdout.String(), stderr.String()
}

const checkConfig = `
ledger:
  path: data/ledger.db
alerts:
  slack:
    webhook_url: ${SLACK_WEBHOOK_URL}
sources:
  - name: mlflow-prod
    type: mlflow
    url: http://mlflow:5000
    token: ${MLFLOW_TOKEN}
`

var checkEnv = map[string]string{
	"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/hook-s3cret",
	"MLFLOW_TOKEN":      "token-s3cret",
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "registrywatch.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func noSecrets(t *testing.T, out ...string) {
	t.Helper()
	for _, o := range out {
		for _, s := range checkEnv {
			if strings.Contains(o, s) {
				t.Errorf("output shows secret %q:\n%s", s, o)
			}
		}
	}
}

func TestConfigCheckOK(t *testing.T) {
	file := writeConfig(t, checkConfig)
	code, stdout, stderr := runCLI(t, checkEnv, "config", "check", "-config", file)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	noSecrets(t, stdout, stderr)
	if !strings.Contains(stderr, "config OK: "+file) {
		t.Errorf("stderr = %q", stderr)
	}
	cfg, err := config.Load(file, func(k string) string { return checkEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "# config "+file+"\n# digest "+cfg.Digest()+"\n") {
		t.Errorf("header:\n%s", stdout)
	}
	var printed struct {
		Ledger struct{ Path string }
		Alerts struct {
			Slack struct {
				WebhookURL string `yaml:"webhook_url"`
			}
		}
		Sources []map[string]any
	}
	if err := yaml.Unmarshal([]byte(stdout), &printed); err != nil {
		t.Fatalf("stdout is not YAML: %v\n%s", err, stdout)
	}
	src := printed.Sources[0]
	if printed.Ledger.Path != filepath.Join(filepath.Dir(file), "data/ledger.db") || printed.Alerts.Slack.WebhookURL != "<secret>" ||
		src["token"] != "<secret>" || src["schedule"] != "@every 1m" || src["timeout"] != "30s" || src["concurrency"] != 8 {
		t.Errorf("printed config:\n%s", stdout)
	}
}

func TestConfigCheckFindsConfig(t *testing.T) {
	file := writeConfig(t, checkConfig)
	env := map[string]string{"REGISTRYWATCH_CONFIG": file}
	for k, v := range checkEnv {
		env[k] = v
	}
	if code, stdout, stderr := runCLI(t, env, "config", "check"); code != exitOK || !strings.Contains(stdout, "# config "+file) {
		t.Errorf("$REGISTRYWATCH_CONFIG: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Chdir(filepath.Dir(file))
	if code, stdout, stderr := runCLI(t, checkEnv, "config", "check"); code != exitOK || !strings.Contains(stdout, "# config "+file) {
		t.Errorf("./registrywatch.yaml: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestConfigCheckErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		env       map[string]string
		want      []string
	}{
		{"unset variable", checkConfig, map[string]string{"MLFLOW_TOKEN": "token-s3cret"},
			[]string{"is not valid:", "registrywatch.yaml:6: alerts.slack.webhook_url: environment variable SLACK_WEBHOOK_URL is not set"}},
		{"several problems beside secrets", checkConfig + "    concurrency: 0\n    schedule: \"@every 0s\"\n", checkEnv,
			[]string{"registrywatch.yaml:12: sources[0].concurrency: must be between 1 and 64, not 0",
				"registrywatch.yaml:13: sources[0].schedule: invalid schedule \"@every 0s\": @every interval must be at least 1s"}},
		{"unknown key", checkConfig + "    tokn: x\n", checkEnv, []string{"registrywatch.yaml:12: sources[0].tokn: unknown key (did you mean token?)"}},
		{"secret in the wrong key", checkConfig + "    region: x\n    timeout: ${MLFLOW_TOKEN}\n", checkEnv,
			[]string{"sources[0].timeout: invalid duration (the value of ${MLFLOW_TOKEN})"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeConfig(t, tt.doc)
			code, stdout, stderr := runCLI(t, tt.env, "config", "check", "-config", file)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout = %q", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			noSecrets(t, stderr)
		})
	}

	code, _, stderr := runCLI(t, nil, "config", "check", "-config", filepath.Join(t.TempDir(), "none.yaml"))
	if code != exitUsage || !regexp.MustCompile(`read config: open .*none.yaml: no such file`).MatchString(stderr) {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

func TestConfigUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config"}, exitUsage, "config needs a subcommand: check"},
		{[]string{"config", "verify"}, exitUsage, `unknown config subcommand "verify"`},
		{[]string{"config", "-h"}, exitOK, "Usage: registrywatch config check [-config FILE]"},
		{[]string{"help", "config"}, exitOK, "Usage: registrywatch config check [-config FILE]"},
		{[]string{"config", "check", "-h"}, exitOK, "-config file"},
		{[]string{"config", "check", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"config", "check", "-bogus"}, exitUsage, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
