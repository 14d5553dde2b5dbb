package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// envMap returns a getenv backed by m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// parseString parses a config written in a temporary directory's file name, so
// relative paths resolve there.
func parseString(t *testing.T, doc string, env map[string]string) (*Config, error) {
	t.Helper()
	return Parse([]byte(doc), filepath.Join(t.TempDir(), "registrywatch.yaml"), envMap(env))
}

func mustParse(t *testing.T, doc string, env map[string]string) *Config {
	t.Helper()
	cfg, err := parseString(t, doc, env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// problems returns the individual errors joined in err.
func problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

const minimal = `
sources:
  - name: mlflow-prod
    type: mlflow
    url: http://mlflow:5000
`

var ignoreCron = cmpopts.IgnoreFields(Schedule{}, "Schedule")

func TestParseDefaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "registrywatch.yaml")
	cfg, err := Parse([]byte(minimal), file, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	on := true
	want := &Config{
		Path: file,
		Ledger: Ledger{
			Path:            "/var/lib/registrywatch/ledger.db",
			Signer:          "/etc/registrywatch/ledger.key",
			PublishSchedule: "@daily",
			Publish:         Schedule{Spec: "@daily"},
		},
		HTTP: HTTP{Listen: "127.0.0.1:9090"},
		Log:  Log{Format: "text", Level: "info"},
		Policy: Policy{
			RollbackObjective: Duration(30 * time.Minute),
			EmergencyTag:      "emergency_change",
			RetireTag:         "retired",
			Approval:          Approval{MaxAge: Duration(720 * time.Hour)},
		},
		Alerts: Alerts{CoverageGap: Duration(15 * time.Minute), PollDeadline: Duration(30 * time.Second)},
		Sources: []Source{{
			Name:         "mlflow-prod",
			Type:         "mlflow",
			URL:          "http://mlflow:5000",
			ScheduleSpec: "@every 1m",
			Schedule:     Schedule{Spec: "@every 1m"},
			Timeout:      Duration(30 * time.Second),
			Concurrency:  8,
			Production:   Production{Stages: []string{"Production"}},
			Approval:     SourceApproval{Tag: "approved_by"},
			CloudTrail:   CloudTrail{Enabled: &on, Lookback: Duration(30 * time.Minute)},
		}},
	}
	if diff := cmp.Diff(want, cfg, ignoreCron); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if cfg.Sources[0].Schedule.Schedule == nil || cfg.Ledger.Publish.Schedule == nil {
		t.Fatal("schedules not parsed")
	}
	ref := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)
	if got := cfg.Sources[0].Schedule.Next(ref); !got.Equal(ref.Add(time.Minute)) {
		t.Errorf("@every 1m next = %v", got)
	}
	if got, want := cfg.Ledger.Publish.Next(ref), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("@daily next = %v, want %v (UTC midnight)", got, want)
	}
}

func TestSourceTypeDefaults(t *testing.T) {
	tests := []struct {
		name, source string
		want         func(s Source) string
	}{
		{"mlflow", "type: mlflow\n    url: http://m:5000", func(s Source) string {
			return sprint(s.Production.Stages, s.Approval.Tag, s.URL)
		}},
		{"databricks", "type: databricks\n    url: https://dbx", func(s Source) string {
			return sprint(s.Production.Stages, s.Approval.Tag, s.URL)
		}},
		{"sagemaker", "type: sagemaker\n    region: us-east-1", func(s Source) string {
			return sprint(s.Production.ApprovalStatus, s.Approval, s.CloudTrail.On(), s.CloudTrail.Lookback)
		}},
		{"wandb", "type: wandb\n    organization: acme", func(s Source) string {
			return sprint(s.Production.Aliases, s.Approval, s.URL, s.Registries)
		}},
		{"wandb legacy", "type: wandb\n    legacy_entities: [team]", func(s Source) string {
			return sprint(s.Registries)
		}},
		{"explicit approval {} stays empty", "type: mlflow\n    url: http://m:5000\n    approval: {}", func(s Source) string {
			return sprint(s.Approval)
		}},
		{"explicit production replaces default", "type: mlflow\n    url: http://m:5000\n    production: {aliases: [champion]}", func(s Source) string {
			return sprint(s.Production.Stages, s.Production.Aliases)
		}},
		{"cloudtrail off", "type: sagemaker\n    region: us-east-1\n    cloudtrail: {enabled: false}", func(s Source) string {
			return sprint(s.CloudTrail.On(), s.CloudTrail.Lookback)
		}},
		{"empty duration keeps default", "type: mlflow\n    url: http://m:5000\n    timeout: \"\"\n    rollback_objective: \"\"", func(s Source) string {
			return sprint(s.Timeout, s.RollbackObjective == 0)
		}},
	}
	want := map[string]string{
		"mlflow":                               "[Production] approved_by http://m:5000",
		"databricks":                           "[Production] approved_by https://dbx",
		"sagemaker":                            "Approved {   false} true 30m",
		"wandb":                                "[production] {   false} https://api.wandb.ai [model]",
		"wandb legacy":                         "[]",
		"explicit approval {} stays empty":     "{   false}",
		"explicit production replaces default": "[] [champion]",
		"cloudtrail off":                       "false 30m",
		"empty duration keeps default":         "30s true",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, "sources:\n  - name: s\n    "+tt.source+"\n", nil)
			if got := tt.want(cfg.Sources[0]); got != want[tt.name] {
				t.Errorf("got %q, want %q", got, want[tt.name])
			}
		})
	}
}

// sprint formats its operands separated by spaces.
func sprint(a ...any) string { return strings.TrimSuffix(fmt.Sprintln(a...), "\n") }

func TestNullKeepsDefault(t *testing.T) {
	cfg := mustParse(t, "ledger:\nhttp:\n  listen:\npolicy:\n  rollback_objective: ~\n"+minimal, nil)
	if cfg.Ledger.Path != DefaultLedgerPath || cfg.HTTP.Listen != "127.0.0.1:9090" || cfg.Policy.RollbackObjective.D() != 30*time.Minute {
		t.Errorf("null values did not keep defaults: %+v %+v %v", cfg.Ledger, cfg.HTTP, cfg.Policy.RollbackObjective)
	}
}

// TestBadConfigs loads each testdata/bad/*.yaml. The first lines say what to
// expect: "# want: <field>: <message>" and optional "# env: NAME=value"; the
// line the error must name ends with "# <-".
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want string
			env := map[string]string{}
			line := 0
			for i, l := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(l, "# want: "); ok {
					want = w
				}
				if e, ok := strings.CutPrefix(l, "# env: "); ok {
					k, v, _ := strings.Cut(e, "=")
					env[k] = v
				}
				if strings.HasSuffix(l, "# <-") {
					line = i + 1
				}
			}
			if want == "" || line == 0 {
				t.Fatal("fixture needs a '# want: ' line and a line ending in '# <-'")
			}
			cfg, err := Load(file, envMap(env))
			if err == nil {
				t.Fatalf("loaded without error: %+v", cfg)
			}
			if n := len(problems(err)); n != 1 {
				t.Errorf("%d problems, want 1:\n%v", n, err)
			}
			prefix := fmt.Sprintf("%s:%d: ", file, line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n  %v\nwant it to start with %q and contain %q", err, prefix, want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line != line || ce.File != file {
				t.Errorf("errors.As *Error = %+v", ce)
			}
		})
	}
}

func TestSeveralProblemsAllReported(t *testing.T) {
	_, err := parseString(t, `
log:
  format: logfmt
sources:
  - name: a
    type: mlflow
    url: http://m:5000
    concurrency: 0
    schedule: often
`, nil)
	got := problems(err)
	if len(got) != 3 {
		t.Fatalf("got %d problems, want 3: %v", len(got), err)
	}
	for i, want := range []string{":3: log.format", ":8: sources[0].concurrency", ":9: sources[0].schedule"} {
		if !strings.Contains(got[i].Error(), want) {
			t.Errorf("problem %d = %v, want %q", i, got[i], want)
		}
	}
}

func TestExpand(t *testing.T) {
	env := envMap(map[string]string{"A": "x", "B_2": "y$z"})
	tests := []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "pre-${A}-${B_2}-post", want: "pre-x-y$z-post"},
		{in: "cost $$5 and $$${A}", want: "cost $5 and $x"},
		{in: "pa$word $ 1$", want: "pa$word $ 1$"},
		{in: "$${A}", want: "${A}"},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "${A", err: "unterminated ${"},
		{in: "${}", err: `invalid variable name ""`},
		{in: "${1A}", err: `invalid variable name "1A"`},
	}
	for _, tt := range tests {
		got, _, err := expand(tt.in, env)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestEnvCannotInjectYAML: an environment value that looks like YAML stays one
// string in the key that referenced it.
func TestEnvCannotInjectYAML(t *testing.T) {
	for _, v := range []string{"a\nb: c", "{x: 1}", "[1, 2]", "*anchor", "~", "true", "8", "'q'", "#x", "a: b\nsources: []"} {
		t.Run(v, func(t *testing.T) {
			cfg := mustParse(t, `
policy:
  emergency_tag: ${V}
alerts:
  slack:
    token: ${V}
    channel: "${V}"
sources:
  - name: m
    type: mlflow
    url: http://m:5000
    rollback_request_tag: pre-${V}
`, map[string]string{"V": v})
			got := []string{cfg.Policy.EmergencyTag, cfg.Alerts.Slack.Token.Reveal(), cfg.Alerts.Slack.Channel, cfg.Sources[0].RollbackRequestTag}
			want := []string{v, v, v, "pre-" + v}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			if len(cfg.Sources) != 1 || cfg.Sources[0].Name != "m" {
				t.Errorf("sources changed: %+v", cfg.Sources)
			}
		})
	}
}

func TestEnvInNonStringKeys(t *testing.T) {
	cfg := mustParse(t, `
sources:
  - name: m
    type: mlflow
    url: ${URL}
    concurrency: "${N}"
    timeout: ${T}
    cloudtrail: { enabled: "${ON}" }
`, map[string]string{"URL": "https://m.example.com", "N": "16", "T": "1m30s", "ON": "false"})
	s := cfg.Sources[0]
	if s.URL != "https://m.example.com" || s.Concurrency != 16 || s.Timeout.D() != 90*time.Second || s.CloudTrail.On() {
		t.Errorf("got %q %d %v %v", s.URL, s.Concurrency, s.Timeout, s.CloudTrail.On())
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("t0k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "registrywatch.yaml")
	doc := `
ledger:
  path: data/ledger.db
  signer: keys/ledger.key
  passphrase_file: keys/pass
  publish_path: /abs/checkpoints
sources:
  - name: m
    type: mlflow
    url: http://m:5000
    token_file: token
    ca_file: ca.pem
  - name: w
    type: wandb
    organization: o
`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.Ledger.Path, cfg.Ledger.Signer, cfg.Ledger.PassphraseFile, cfg.Ledger.PublishPath, cfg.Sources[0].TokenFile, cfg.Sources[0].CAFile}
	want := []string{filepath.Join(dir, "data/ledger.db"), filepath.Join(dir, "keys/ledger.key"), filepath.Join(dir, "keys/pass"), "/abs/checkpoints", filepath.Join(dir, "token"), filepath.Join(dir, "ca.pem")}
	if !slices.Equal(got, want) {
		t.Errorf("paths:\n got %q\nwant %q", got, want)
	}
	if cfg.Sources[0].Token.Reveal() != "t0k" {
		t.Errorf("token from file = %q", cfg.Sources[0].Token.Reveal())
	}

	kms := mustParse(t, "ledger:\n  signer: awskms:///alias/registrywatch\n"+minimal, nil)
	if kms.Ledger.Signer != "awskms:///alias/registrywatch" {
		t.Errorf("KMS URI changed: %q", kms.Ledger.Signer)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct{ content, want, err string }{
		{content: "secret\n", want: "secret"},
		{content: "secret", want: "secret"},
		{content: "secret\r\n", want: "secret"},
		{content: "secret\n\n", want: "secret\n"},
		{content: " spaced \n", want: " spaced "},
		{content: "\n", err: "is empty"},
		{content: strings.Repeat("x", maxSecretFile+1), err: "larger than 64 KiB"},
	}
	for i, tt := range tests {
		p := write(fmt.Sprintf("s%d", i), tt.content)
		cfg, err := parseString(t, fmt.Sprintf(`
alerts:
  slack:
    token_file: %s
    channel: "#c"
sources:
  - name: w
    type: wandb
    organization: o
    api_key_file: %[1]s
    header_files: { X-Key: %[1]s }
`, p), nil)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.content, err, tt.err)
			}
			continue
		}
		if err != nil && tt.want != "secret\n" {
			t.Errorf("%q: %v", tt.content, err)
			continue
		}
		if tt.want == "secret\n" {
			// A line break inside a header value is refused; the other
			// secrets keep it.
			if err == nil || !strings.Contains(err.Error(), `header_files["X-Key"]: value contains a line break`) {
				t.Errorf("header with newline: %v", err)
			}
			continue
		}
		s := cfg.Sources[0]
		if got := []string{cfg.Alerts.Slack.Token.Reveal(), s.APIKey.Reveal(), s.Headers["X-Key"].Reveal()}; !slices.Equal(got, []string{tt.want, tt.want, tt.want}) {
			t.Errorf("%q: got %q, want %q", tt.content, got, tt.want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	ref := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		spec string
		next time.Time
		err  string
	}{
		{spec: "0 6 * * *", next: time.Date(2026, 6, 2, 6, 0, 0, 0, time.UTC)},
		{spec: "CRON_TZ=Europe/Paris 0 6 * * *", next: time.Date(2026, 6, 2, 4, 0, 0, 0, time.UTC)},
		{spec: "@hourly", next: ref.Add(time.Hour)},
		{spec: " @every 1s ", next: ref.Add(time.Second)},
		{spec: "@every 0s", err: "at least 1s"},
		{spec: "@every -5m", err: "at least 1s"},
		{spec: "@every soon", err: "@every needs a duration"},
		{spec: "CRON_TZ=UTC", err: "must be followed by a space"},
		{spec: "TZ=UTC\t@daily", err: "must be followed by a space"},
		{spec: "0 0 30 2 *", err: "never fires"},
		{spec: "* * * * * *", err: "expected exactly 5 fields"},
		{spec: "", err: "empty schedule"},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSchedule(%q) error = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.spec, err)
			continue
		}
		if got := s.Next(ref); !got.Equal(tt.next) {
			t.Errorf("ParseSchedule(%q).Next = %v, want %v", tt.spec, got, tt.next)
		}
		if s.Spec != tt.spec {
			t.Errorf("Spec = %q, want %q", s.Spec, tt.spec)
		}
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	cfg := mustParse(t, `
sources:
  - &common
    name: a
    type: mlflow
    url: http://a:5000
    timeout: 10s
    models: &models ["fraud-*"]
    production: { stages: [Production], aliases: [champion] }
  - <<: *common
    name: b
    url: http://b:5000
    concurrency: 2
  - name: c
    type: sagemaker
    region: us-east-1
    model_package_groups: *models
`, nil)
	a, b, c := cfg.Sources[0], cfg.Sources[1], cfg.Sources[2]
	if a.Concurrency != 8 || b.Concurrency != 2 || b.Type != "mlflow" || b.Timeout.D() != 10*time.Second || b.URL != "http://b:5000" {
		t.Errorf("merge: a=%+v\nb=%+v", a, b)
	}
	if !slices.Equal(b.Production.Aliases, []string{"champion"}) || !slices.Equal(c.ModelPackageGroups, []string{"fraud-*"}) {
		t.Errorf("aliases: %v %v", b.Production.Aliases, c.ModelPackageGroups)
	}

	for _, doc := range []string{"sources: &a [*a]\n", "sources:\n  - &s\n    name: x\n    <<: *s\n"} {
		if _, err := parseString(t, doc, nil); err == nil {
			t.Errorf("%q: self-referring alias accepted", doc)
		}
	}
}

func TestUnknownKeyNamesPathAndLine(t *testing.T) {
	_, err := parseString(t, "sources:\n  - name: a\n    type: mlflow\n    url: http://m\n    production:\n      stage: [Production]\n", nil)
	if err == nil || !strings.Contains(err.Error(), "registrywatch.yaml:6: sources[0].production.stage: unknown key (did you mean stages?)") {
		t.Errorf("error = %v", err)
	}
}

func TestRollbackObjectiveFor(t *testing.T) {
	s := Source{
		RollbackObjective:  Duration(time.Hour),
		RollbackObjectives: map[string]Duration{"*": Duration(time.Minute), "fraud-*": Duration(2 * time.Minute), "fraud-v?": Duration(3 * time.Minute), "fraud-*x": Duration(4 * time.Minute)},
	}
	def := Duration(30 * time.Minute)
	for model, want := range map[string]time.Duration{"churn": time.Minute, "fraud-a": 2 * time.Minute, "fraud-v2": 3 * time.Minute, "fraud-ax": 4 * time.Minute} {
		if got := s.RollbackObjectiveFor(model, def).D(); got != want {
			t.Errorf("%s: %v, want %v", model, got, want)
		}
	}
	s.RollbackObjectives = nil
	if got := s.RollbackObjectiveFor("x", def).D(); got != time.Hour {
		t.Errorf("source objective: %v", got)
	}
	s.RollbackObjective = 0
	if got := s.RollbackObjectiveFor("x", def); got != def {
		t.Errorf("default objective: %v", got)
	}
}

func TestMatches(t *testing.T) {
	s := Source{Type: "mlflow", Models: []string{"fraud-*", "churn"}}
	for name, want := range map[string]bool{"fraud-a": true, "churn": true, "churn-2": false, "x": false} {
		if s.Matches(name) != want {
			t.Errorf("Matches(%q) = %v", name, !want)
		}
	}
	if !(Source{}).Matches("anything") {
		t.Error("no filter must match everything")
	}
	sm := Source{Type: "sagemaker", ModelPackageGroups: []string{"fraud-*"}}
	if sm.Matches("churn") || !sm.Matches("fraud-1") {
		t.Error("model_package_groups filter not applied")
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "", 30 * time.Second: "30s", 30 * time.Minute: "30m", 720 * time.Hour: "720h",
		90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 500 * time.Millisecond: "500ms", time.Hour + time.Second: "1h0m1s",
	} {
		got := Duration(d).String()
		if got != want {
			t.Errorf("%v: %q, want %q", time.Duration(d), got, want)
		}
		if back, err := time.ParseDuration(got); d != 0 && (err != nil || back != d) {
			t.Errorf("%q does not read back: %v %v", got, back, err)
		}
	}
	var out struct{ D Duration }
	if err := yaml.Unmarshal([]byte("d: 15m"), &out); err != nil || out.D.D() != 15*time.Minute {
		t.Errorf("yaml unmarshal: %v %v", out.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: 15"), &out); err == nil || !strings.Contains(err.Error(), "line 1: invalid duration") {
		t.Errorf("yaml unmarshal of 15: %v", err)
	}
}

func TestLogLevel(t *testing.T) {
	if got := (Log{Level: "warn"}).SlogLevel(); got.String() != "WARN" {
		t.Errorf("warn -> %v", got)
	}
	if got := (Log{Level: "DEBUG"}).SlogLevel(); got.String() != "DEBUG" {
		t.Errorf("DEBUG -> %v", got)
	}
}

func TestResolvePath(t *testing.T) {
	env := envMap(map[string]string{EnvConfig: "/etc/registrywatch/config.yaml"})
	if got := ResolvePath("x.yaml", env); got != "x.yaml" {
		t.Errorf("flag: %q", got)
	}
	if got := ResolvePath("", env); got != "/etc/registrywatch/config.yaml" {
		t.Errorf("env: %q", got)
	}
	if got := ResolvePath("", envMap(nil)); got != "registrywatch.yaml" {
		t.Errorf("default: %q", got)
	}
}

func TestLedgerPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rw.yaml")
	// Only the ledger section is read: the unset variables and the missing
	// secret file of the rest do not matter to a command reading the ledger.
	doc := `
ledger:
  path: ${LEDGER_DIR}/ledger.db
alerts:
  slack: { webhook_url: "${SLACK_WEBHOOK_URL}" }
sources:
  - name: m
    type: mlflow
    url: http://m:5000
    token_file: missing
`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{"LEDGER_DIR": "data"})

	if got, err := LedgerPath("explicit.db", file, env); err != nil || got != "explicit.db" {
		t.Errorf("-ledger: %q %v", got, err)
	}
	if got, err := LedgerPath("", file, env); err != nil || got != filepath.Join(dir, "data/ledger.db") {
		t.Errorf("from config: %q %v", got, err)
	}
	envWithConfig := envMap(map[string]string{"LEDGER_DIR": "/srv", EnvConfig: file})
	if got, err := LedgerPath("", "", envWithConfig); err != nil || got != "/srv/ledger.db" {
		t.Errorf("from $REGISTRYWATCH_CONFIG: %q %v", got, err)
	}
	if _, err := LedgerPath("", file, envMap(nil)); err == nil || !strings.Contains(err.Error(), "ledger.path: environment variable LEDGER_DIR is not set") {
		t.Errorf("unset variable in ledger.path: %v", err)
	}
	if err := os.WriteFile(file, []byte("sources: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LedgerPath("", file, env); err != nil || got != DefaultLedgerPath {
		t.Errorf("default ledger path: %q %v", got, err)
	}
	t.Chdir(t.TempDir())
	_, err := LedgerPath("", "", envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "no -ledger given and no config file registrywatch.yaml") {
		t.Errorf("nothing to go on: %v", err)
	}
	if _, err := LedgerPath("", filepath.Join(dir, "nope.yaml"), envMap(nil)); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing -config file: %v", err)
	}
}

func TestLoadLedgerStrict(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rw.yaml")
	if err := os.WriteFile(file, []byte("ledger:\n  path: a.db\n  pth: b.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLedger(file, envMap(nil)); err == nil || !strings.Contains(err.Error(), "rw.yaml:3: ledger.pth: unknown key (did you mean path?)") {
		t.Errorf("error = %v", err)
	}
}

// TestExampleHasEveryKey checks that every key of Config appears in
// configs/registrywatch.example.yaml, and that the example loads.
func TestExampleHasEveryKey(t *testing.T) {
	const example = "../../configs/registrywatch.example.yaml"
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	var collect func(n *yaml.Node, path string)
	collect = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			collect(n.Content[0], path)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := joinPath(path, n.Content[i].Value)
				written[p] = true
				collect(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for _, e := range n.Content {
				collect(e, path+"[]")
			}
		}
	}
	collect(&doc, "")

	var keys []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Struct && t != reflect.TypeFor[Schedule]():
			for _, f := range fieldsOf(t) {
				p := joinPath(path, f.name)
				keys = append(keys, p)
				walk(f.typ, p)
			}
		case t.Kind() == reflect.Slice:
			walk(t.Elem(), path+"[]")
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if len(keys) < 60 {
		t.Fatalf("only %d keys found by reflection", len(keys))
	}
	for _, k := range keys {
		if !written[k] {
			t.Errorf("%s: key %s is missing", example, k)
		}
	}

	env := map[string]string{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(string(data), -1) {
		env[m[1]] = "https://example.com/" + strings.ToLower(m[1])
	}
	cfg, err := Load(example, envMap(env))
	if err != nil {
		t.Fatalf("example does not load with %v set: %v", slices.Sorted(maps.Keys(env)), err)
	}
	if len(cfg.Sources) != 4 {
		t.Errorf("example has %d sources, want one per type", len(cfg.Sources))
	}
}
