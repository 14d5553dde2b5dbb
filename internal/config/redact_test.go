package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
	"go.yaml.in/yaml/v3"
)

// Secret values used by the tests below; none may appear in any output.
var secretValues = map[string]string{
	"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/webhook-s3cret-1",
	"MLFLOW_PASSWORD":   "password-s3cret-2",
	"HEADER_VALUE":      "header-s3cret-3",
	"MISPLACED":         "misplaced-s3cret-4",
}

const (
	fileSecret       = "file-s3cret-5"
	inlineSecret     = "inline-s3cret-6"
	headerFileSecret = "header-file-s3cret-7"
)

func allSecrets() []string {
	out := []string{fileSecret, inlineSecret, headerFileSecret}
	for _, v := range secretValues {
		out = append(out, v)
	}
	return out
}

// secretConfig writes a config using every kind of secret and returns its path.
func secretConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"token": fileSecret + "\n", "header": headerFileSecret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `
alerts:
  slack:
    webhook_url: ${SLACK_WEBHOOK_URL}
sources:
  - name: mlflow-prod
    type: mlflow
    url: http://mlflow:5000
    username: alice
    password: ${MLFLOW_PASSWORD}
    headers: { X-Token: "${HEADER_VALUE}" }
    header_files: { X-Other: header }
  - name: databricks-prod
    type: databricks
    url: https://dbx.example.com
    token_file: token
  - name: wandb-prod
    type: wandb
    organization: acme
    rollback_objectives: { "modèle-*": 5m }
    api_key: ` + inlineSecret + `
` + extra
	file := filepath.Join(dir, "registrywatch.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range allSecrets() {
		if strings.Contains(out, s) {
			t.Errorf("%s shows secret %q:\n%s", what, s, out)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	cfg, err := Load(secretConfig(t, ""), envMap(secretValues))
	if err != nil {
		t.Fatal(err)
	}
	// The secrets were loaded, so the checks below can fail.
	got := []string{cfg.Alerts.Slack.WebhookURL.Reveal(), cfg.Sources[0].Password.Reveal(), cfg.Sources[0].Headers["X-Token"].Reveal(),
		cfg.Sources[0].Headers["X-Other"].Reveal(), cfg.Sources[1].Token.Reveal(), cfg.Sources[2].APIKey.Reveal()}
	want := []string{secretValues["SLACK_WEBHOOK_URL"], secretValues["MLFLOW_PASSWORD"], secretValues["HEADER_VALUE"], headerFileSecret, fileSecret, inlineSecret}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("secrets loaded %q, want %q", got, want)
	}

	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		logger := slog.New(h)
		logger.Info("loaded", "config", cfg, "value", *cfg, "source", cfg.Sources[0], "sources", cfg.Sources)
		logger.Info("slack", slog.Any("slack", cfg.Alerts.Slack), slog.Any("token", cfg.Sources[1].Token))
	}
	assertNoSecret(t, "logs", logs.String())
	if !strings.Contains(logs.String(), "config.alerts.slack.webhook_url=<secret>") || !strings.Contains(logs.String(), `"webhook_url":"<secret>"`) {
		t.Errorf("logs do not show the config:\n%s", logs.String())
	}

	assertNoSecret(t, "fmt", fmt.Sprintf("%v %+v %#v %s %v", cfg, *cfg, *cfg, cfg.Sources[0].Password, cfg.Sources[0].Headers))
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "yaml", string(y))
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json", string(j))
	assertNoSecret(t, "redacted", string(canonicalJSON(cfg.Redacted())))
}

// TestSecretsNotInErrors: problems next to a secret, in a secret, or a secret
// put in the wrong key never quote the secret.
func TestSecretsNotInErrors(t *testing.T) {
	tests := []struct{ extra, want string }{
		{"    concurrency: lots\n", "sources[2].concurrency: must be a whole number"},
		{"    concurrency: ${MISPLACED}\n", "sources[2].concurrency: must be a whole number, not (the value of ${MISPLACED})"},
		{"    timeout: ${MISPLACED}\n", "sources[2].timeout: invalid duration (the value of ${MISPLACED})"},
		{"    schedule: ${MISPLACED}\n", "sources[2].schedule: invalid schedule (the value of ${MISPLACED})"},
		{"    url: ${MISPLACED}\n", "sources[2].url: invalid URL (the value of ${MISPLACED})"},
		{"    url: http://u:${MISPLACED}@h\n", "sources[2].url: must not contain credentials"},
		{"    url: \"http://u:${MISPLACED}@h:x\"\n", "sources[2].url: invalid URL"},
		{"    models: [\"${MISPLACED}[\"]\n", "sources[2].models[0]: invalid pattern (the value of ${MISPLACED})"},
		{"    production: { aliases: [latest], stages: [\"${MISPLACED}\"] }\n", "is not an MLflow stage"},
		{"  - name: x\n    type: ${MISPLACED}\n", "sources[3].type: unknown type (the value of ${MISPLACED})"},
		{"  - name: \"${MISPLACED} X\"\n    type: mlflow\n    url: http://m\n", "sources[3].name: (the value of ${MISPLACED}): use lowercase"},
		{"    api_key_file: /nonexistent\n", "sources[2].api_key_file: set api_key or api_key_file, not both"},
		{"    headers: { X-Bad: \"" + inlineSecret + "\\nX: y\" }\n", `sources[2].headers["X-Bad"]: value contains a line break`},
		{"log:\n  level: ${MISPLACED}\n", "log.level: must be debug, info, warn or error, not (the value of ${MISPLACED})"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Load(secretConfig(t, tt.extra), envMap(secretValues))
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
	// A webhook URL that is not a URL is not quoted either.
	_, err := parseString(t, "alerts:\n  slack:\n    webhook_url: ${MISPLACED}\n"+minimal, secretValues)
	if err == nil || !strings.Contains(err.Error(), "alerts.slack.webhook_url: is not an http or https URL") {
		t.Errorf("error %v", err)
	}
	assertNoSecret(t, "error", fmt.Sprint(err))
}

func TestDigestStable(t *testing.T) {
	a := mustParse(t, `
sources:
  - name: m
    type: mlflow
    url: http://m:5000
    token: ${T}
    rollback_objectives: { "b-*": 10m, "a-*": 1h30m }
`, map[string]string{"T": "one"})
	b := mustParse(t, `
# the same configuration, written differently, defaults spelled out
log: { level: info, format: text }
policy:
  rollback_objective: 1800s
sources:
- url: "http://m:5000"
  type: mlflow
  token: two
  name: m
  schedule: "@every 1m"
  rollback_objectives:
    a-*: 90m
    b-*: 600s
`, nil)
	if a.Digest() != b.Digest() {
		t.Errorf("equal configs, different digests:\n%s\n%s", canonicalJSON(a.Redacted()), canonicalJSON(b.Redacted()))
	}
	if len(a.Digest()) != 64 || strings.Trim(a.Digest(), "0123456789abcdef") != "" {
		t.Errorf("digest %q is not lowercase hex SHA-256", a.Digest())
	}
	for _, change := range []string{"    concurrency: 7\n", "    models: [x]\n", "    headers: { X-A: v }\n"} {
		c := mustParse(t, minimal+change, nil)
		if c.Digest() == mustParse(t, minimal, nil).Digest() {
			t.Errorf("adding %q does not change the digest", change)
		}
	}
	noToken := mustParse(t, minimal, nil)
	withToken := mustParse(t, minimal+"    token: x\n", nil)
	if noToken.Digest() == withToken.Digest() {
		t.Error("configuring a secret does not change the digest")
	}
	if got := withToken.Redacted()["sources"].([]any)[0].(map[string]any)["token"]; got != "<secret>" {
		t.Errorf("redacted token = %v", got)
	}
}

func TestRedactedPlainTypes(t *testing.T) {
	cfg, err := Load(secretConfig(t, ""), envMap(secretValues))
	if err != nil {
		t.Fatal(err)
	}
	red := cfg.Redacted()
	var check func(path string, v any)
	check = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if strings.Trim(k, "abcdefghijklmnopqrstuvwxyz_") != "" {
					t.Errorf("%s: key %q is not a YAML key name", path, k)
				}
				check(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				check(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string, int, bool:
		default:
			t.Errorf("%s: %T is not a plain type", path, v)
		}
	}
	check("", red)
	src := red["sources"].([]any)[0].(map[string]any)
	for key, want := range map[string]any{"timeout": "30s", "schedule": "@every 1m", "concurrency": 8, "password": "<secret>", "token": "", "rollback_objective": ""} {
		if src[key] != want {
			t.Errorf("sources[0].%s = %#v, want %#v", key, src[key], want)
		}
	}
	wantHeaders := []any{map[string]any{"key": "X-Other", "value": "<secret>"}, map[string]any{"key": "X-Token", "value": "<secret>"}}
	if h := src["headers"]; !reflect.DeepEqual(h, wantHeaders) {
		t.Errorf("headers = %v, want %v", h, wantHeaders)
	}
	if ct := src["cloudtrail"].(map[string]any); ct["enabled"] != true || ct["lookback"] != "30m" {
		t.Errorf("cloudtrail = %v", ct)
	}
	// A config built in code, with CloudTrail.Enabled nil, reports the effective value.
	if got := (Config{Sources: []Source{{}}}).Redacted()["sources"].([]any)[0].(map[string]any)["cloudtrail"].(map[string]any)["enabled"]; got != true {
		t.Errorf("nil cloudtrail.enabled redacted as %v", got)
	}
}

func TestCanonicalJSON(t *testing.T) {
	v := map[string]any{
		"b": []any{"<>&", "\u2028\u2029", "\x00\x1f\"\\\b\f\n\r\t", "é", "\xff"},
		"a": map[string]any{"\U0001F600": 1, "\uFB33": 2, "z": true, "": -5},
		"c": []any{},
		"d": map[string]any{},
	}
	got := canonicalJSON(v)
	want, err := jcs.Transform(got)
	if err != nil {
		t.Fatalf("jcs: %v\n%s", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("not canonical:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(string(got), `"\u0000\u001f\"\\\b\f\n\r\t"`) || !strings.Contains(string(got), "\"\uFFFD\"") {
		t.Errorf("escapes: %s", got)
	}
}
