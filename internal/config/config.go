// Package config loads and validates the registrywatch YAML configuration
// (DESIGN.md section 8).
//
// Loading is, in order: defaults; strict YAML decoding (an unknown key is an
// error with its file:line and key path); ${VAR} expansion inside scalar values
// only (so line numbers stay true and an environment value cannot inject
// YAML; $$ writes a literal $; an unset or empty variable is an error); type
// defaults per source; relative paths resolved against the config file's
// directory; secrets read from their _file twins; and validation naming the
// field (sources[1].schedule: …), with cron specs and URLs parsed at load.
// Secrets are of type Secret and never print.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Source types.
const (
	typeMLflow     = "mlflow"
	typeDatabricks = "databricks"
	typeSageMaker  = "sagemaker"
	typeWandB      = "wandb"
)

// Defaults that scripts and documents rely on.
const (
	// EnvConfig names the environment variable giving the config file when
	// -config is not given.
	EnvConfig = "REGISTRYWATCH_CONFIG"
	// DefaultPath is the config file used when neither -config nor
	// $REGISTRYWATCH_CONFIG is given.
	DefaultPath = "registrywatch.yaml"
	// DefaultLedgerPath is ledger.path when the config does not set it.
	DefaultLedgerPath = "/var/lib/registrywatch/ledger.db"
)

// defaults returns the configuration used for every key the file leaves out
// (per-source defaults are applied by sourceDefaults, since they depend on the
// source's type).
func defaults() *Config {
	return &Config{
		Ledger: Ledger{
			Path:            DefaultLedgerPath,
			Signer:          "/etc/registrywatch/ledger.key",
			PublishSchedule: "@daily",
		},
		HTTP: HTTP{Listen: "127.0.0.1:9090"},
		Log:  Log{Format: "text", Level: "info"},
		Policy: Policy{
			RollbackObjective: Duration(30 * time.Minute),
			EmergencyTag:      "emergency_change",
			RetireTag:         "retired",
			Approval:          Approval{MaxAge: Duration(720 * time.Hour)},
		},
		Alerts: Alerts{
			CoverageGap:  Duration(15 * time.Minute),
			PollDeadline: Duration(30 * time.Second),
		},
	}
}

// sourceDefaults fills the keys that source p (sources[i]) does not write. A
// key written explicitly is taken as written, even when empty.
func (l *loader) sourceDefaults(s *Source, p string) {
	written := func(key string) bool { return l.present[p+"."+key] }
	if !written("schedule") {
		s.ScheduleSpec = "@every 1m"
	}
	if !written("timeout") {
		s.Timeout = Duration(30 * time.Second)
	}
	if !written("concurrency") {
		s.Concurrency = 8
	}
	if !written("production") {
		switch s.Type {
		case typeMLflow, typeDatabricks:
			s.Production = Production{Stages: []string{"Production"}}
		case typeSageMaker:
			s.Production = Production{ApprovalStatus: "Approved"}
		case typeWandB:
			s.Production = Production{Aliases: []string{"production"}}
		}
	}
	if !written("approval") && (s.Type == typeMLflow || s.Type == typeDatabricks) {
		s.Approval = SourceApproval{Tag: "approved_by"}
	}
	if s.CloudTrail.Enabled == nil {
		on := true
		s.CloudTrail.Enabled = &on
	}
	if !written("cloudtrail.lookback") {
		s.CloudTrail.Lookback = Duration(30 * time.Minute)
	}
	if s.Type == typeWandB {
		if !written("url") {
			s.URL = "https://api.wandb.ai"
		}
		if !written("registries") && s.Organization != "" {
			s.Registries = []string{"model"}
		}
	}
}

// Load reads and parses the config file at path (see Parse). getenv looks up
// ${VAR} values; nil means os.Getenv.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, getenv)
}

// Parse parses a config document. filename names it in errors and gives the
// directory that relative paths resolve against ("" means the working
// directory). getenv looks up ${VAR} values; nil means os.Getenv. Secret _file
// twins are read here. The error, if any, joins one *Error per problem.
func Parse(data []byte, filename string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l := newLoader(filename, getenv)
	cfg := defaults()
	root := l.document(data)
	if root != nil {
		l.walk(root, reflect.TypeFor[Config](), "")
		if len(l.errs) > 0 {
			return nil, l.err()
		}
		if err := root.Decode(cfg); err != nil {
			l.yamlErrors(err)
			return nil, l.err()
		}
	}
	if len(l.errs) > 0 {
		return nil, l.err()
	}
	if filename != "" {
		cfg.Path = filepath.Join(l.dir, filepath.Base(filename))
	}
	for i := range cfg.Sources {
		l.sourceDefaults(&cfg.Sources[i], fmt.Sprintf("sources[%d]", i))
	}
	l.resolvePaths(cfg)
	l.validate(cfg)
	if len(l.errs) > 0 {
		return nil, l.err()
	}
	return cfg, nil
}

// LoadLedger reads only the ledger section of the config file at path:
// defaults, strict keys, ${VAR} expansion, relative paths and validation apply
// to that section, while the rest of the file need only be well-formed YAML.
// Commands that read a ledger use it, so they need neither the environment of
// the sources and Slack nor their secret files.
func LoadLedger(path string, getenv func(string) string) (Ledger, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Ledger{}, fmt.Errorf("read config: %w", err)
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	l := newLoader(path, getenv)
	led := defaults().Ledger
	root := l.document(data)
	if root != nil && l.wantKind(root, yaml.MappingNode, "") {
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if k.Value != "ledger" || isNull(v) {
				continue
			}
			l.lines["ledger"] = k.Line
			l.walk(v, reflect.TypeFor[Ledger](), "ledger")
			if len(l.errs) == 0 {
				if err := v.Decode(&led); err != nil {
					l.yamlErrors(err)
				}
			}
		}
	}
	if len(l.errs) > 0 {
		return Ledger{}, l.err()
	}
	l.resolveLedger(&led)
	l.validateLedger(&led, "ledger")
	if len(l.errs) > 0 {
		return Ledger{}, l.err()
	}
	return led, nil
}

// ResolvePath returns the config file to use: flagValue (-config) when given,
// else $REGISTRYWATCH_CONFIG, else DefaultPath in the working directory.
func ResolvePath(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv(EnvConfig); p != "" {
		return p
	}
	return DefaultPath
}

// LedgerPath returns the ledger file for a command that reads one: ledgerFlag
// (-ledger) when given, else ledger.path of the config that ResolvePath(
// configFlag, getenv) names, read with LoadLedger.
func LedgerPath(ledgerFlag, configFlag string, getenv func(string) string) (string, error) {
	if ledgerFlag != "" {
		return ledgerFlag, nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	path := ResolvePath(configFlag, getenv)
	led, err := LoadLedger(path, getenv)
	switch {
	case err == nil:
		return led.Path, nil
	case errors.Is(err, fs.ErrNotExist) && configFlag == "" && getenv(EnvConfig) == "":
		return "", fmt.Errorf("no -ledger given and no config file %s (give -ledger, -config or $%s)", path, EnvConfig)
	default:
		return "", fmt.Errorf("no -ledger given; ledger.path from config: %w", err)
	}
}

// resolvePaths makes every relative file path of cfg relative to the config
// file's directory.
func (l *loader) resolvePaths(cfg *Config) {
	l.resolveLedger(&cfg.Ledger)
	s := &cfg.Alerts.Slack
	s.WebhookURLFile = l.abs(s.WebhookURLFile)
	s.TokenFile = l.abs(s.TokenFile)
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		for _, p := range []*string{&src.TokenFile, &src.PasswordFile, &src.APIKeyFile, &src.CAFile} {
			*p = l.abs(*p)
		}
		for k, v := range src.HeaderFiles {
			src.HeaderFiles[k] = l.abs(v)
		}
	}
}

func (l *loader) resolveLedger(led *Ledger) {
	led.Path = l.abs(led.Path)
	led.PassphraseFile = l.abs(led.PassphraseFile)
	led.PublishPath = l.abs(led.PublishPath)
	if !strings.Contains(led.Signer, "://") {
		led.Signer = l.abs(led.Signer)
	}
}

// abs resolves a relative path against the config file's directory; "" stays "".
func (l *loader) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

// filepathAbsDir returns the absolute directory of filename (the working
// directory when filename is "").
func filepathAbsDir(filename string) (string, error) {
	if filename == "" {
		return filepath.Abs(".")
	}
	abs, err := filepath.Abs(filename)
	if err != nil {
		return "", err
	}
	return filepath.Dir(abs), nil
}
