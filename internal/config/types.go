package config

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// Config is the whole registrywatch configuration (DESIGN.md section 8).
// Field names and YAML keys are binding: configs written today must load forever.
type Config struct {
	Ledger  Ledger   `yaml:"ledger"`
	HTTP    HTTP     `yaml:"http"`
	Log     Log      `yaml:"log"`
	Policy  Policy   `yaml:"policy"`
	Alerts  Alerts   `yaml:"alerts"`
	Sources []Source `yaml:"sources"`

	// Path is the file the config was loaded from ("" when built in code).
	Path string `yaml:"-"`
}

// Ledger configures the signed ledger file and its checkpoints.
type Ledger struct {
	Path            string   `yaml:"path"`
	Origin          string   `yaml:"origin"`
	Signer          string   `yaml:"signer"` // a key file, or awskms://…, hashivault://…
	PassphraseFile  string   `yaml:"passphrase_file"`
	PublishSchedule string   `yaml:"publish_schedule"`
	PublishPath     string   `yaml:"publish_path"`
	Publish         Schedule `yaml:"-"` // PublishSchedule, parsed at load
}

// HTTP configures the health and metrics listener.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// Log configures log/slog output.
type Log struct {
	Format string `yaml:"format"` // text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// SlogLevel returns Level as a slog.Level (info when Level does not parse;
// Parse rejects such a config).
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// Policy holds the global policy settings (DESIGN.md section 4).
type Policy struct {
	RollbackObjective Duration `yaml:"rollback_objective"`
	EmergencyTag      string   `yaml:"emergency_tag"`
	RetireTag         string   `yaml:"retire_tag"`
	Approval          Approval `yaml:"approval"`
}

// Approval holds the global approval rules.
type Approval struct {
	MaxAge    Duration `yaml:"max_age"`
	Approvers []string `yaml:"approvers"` // optional allow-list, compared case-insensitively
}

// Alerts configures coverage bounds, delivery deadlines and Slack.
type Alerts struct {
	CoverageGap  Duration `yaml:"coverage_gap"`
	PollDeadline Duration `yaml:"poll_deadline"`
	Slack        Slack    `yaml:"slack"`
}

// Slack configures the Slack sink: an incoming webhook, or a bot token and channel.
type Slack struct {
	WebhookURL     Secret            `yaml:"webhook_url"`
	WebhookURLFile string            `yaml:"webhook_url_file"`
	Token          Secret            `yaml:"token"`
	TokenFile      string            `yaml:"token_file"`
	Channel        string            `yaml:"channel"`
	Channels       map[string]string `yaml:"channels"` // finding kind -> channel
	RunbookURL     string            `yaml:"runbook_url"`
	// APIURL overrides the Slack Web API base URL (tests, proxies); default https://slack.com/api/.
	APIURL string `yaml:"api_url"`
}

// Enabled reports whether any Slack delivery is configured.
func (s Slack) Enabled() bool { return s.WebhookURL != "" || s.Token != "" }

// Source is one watched registry. Type-specific keys are ignored by the other types
// but still validated where they are set.
type Source struct {
	Name         string            `yaml:"name"`
	Type         string            `yaml:"type"` // mlflow | databricks | sagemaker | wandb
	URL          string            `yaml:"url"`
	Token        Secret            `yaml:"token"`
	TokenFile    string            `yaml:"token_file"`
	Username     string            `yaml:"username"`
	Password     Secret            `yaml:"password"`
	PasswordFile string            `yaml:"password_file"`
	Headers      map[string]Secret `yaml:"headers"`
	HeaderFiles  map[string]string `yaml:"header_files"` // header name -> file holding its value
	CAFile       string            `yaml:"ca_file"`

	ScheduleSpec string   `yaml:"schedule"`
	Schedule     Schedule `yaml:"-"` // ScheduleSpec, parsed at load
	Timeout      Duration `yaml:"timeout"`
	Concurrency  int      `yaml:"concurrency"`
	Models       []string `yaml:"models"` // optional glob filter on model names

	Production         Production          `yaml:"production"`
	Approval           SourceApproval      `yaml:"approval"`
	RollbackRequestTag string              `yaml:"rollback_request_tag"`
	RollbackObjective  Duration            `yaml:"rollback_objective"`
	RollbackObjectives map[string]Duration `yaml:"rollback_objectives"` // model glob -> objective

	// SageMaker.
	Region             string     `yaml:"region"`
	RoleARN            string     `yaml:"role_arn"`
	Endpoint           string     `yaml:"endpoint"`
	ModelPackageGroups []string   `yaml:"model_package_groups"`
	CloudTrail         CloudTrail `yaml:"cloudtrail"`

	// Weights & Biases.
	APIKey           Secret   `yaml:"api_key"`
	APIKeyFile       string   `yaml:"api_key_file"`
	Organization     string   `yaml:"organization"`
	Registries       []string `yaml:"registries"`
	LegacyEntities   []string `yaml:"legacy_entities"`
	ProtectedAliases []string `yaml:"protected_aliases"`
}

// Matches reports whether the model named name is in the source's scope: it
// matches one of Models (path.Match globs) when Models is set and, for a
// sagemaker source, one of ModelPackageGroups when that is set. Parse has
// checked every pattern, so a malformed one simply matches nothing.
func (s Source) Matches(name string) bool {
	if !matchAny(s.Models, name) {
		return false
	}
	return s.Type != typeSageMaker || matchAny(s.ModelPackageGroups, name)
}

// RollbackObjectiveFor returns the rollback time objective for model name: the
// value of the longest pattern of RollbackObjectives that matches it (equal
// lengths: the smaller pattern in byte order), else RollbackObjective when set,
// else def (policy.rollback_objective).
func (s Source) RollbackObjectiveFor(name string, def Duration) Duration {
	best, found := "", false
	for pat := range s.RollbackObjectives {
		if ok, _ := path.Match(pat, name); !ok {
			continue
		}
		if !found || len(pat) > len(best) || len(pat) == len(best) && pat < best {
			best, found = pat, true
		}
	}
	switch {
	case found:
		return s.RollbackObjectives[best]
	case s.RollbackObjective != 0:
		return s.RollbackObjective
	default:
		return def
	}
}

// matchAny reports whether name matches one of globs; no globs match everything.
func matchAny(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Production maps registry states to "in production" (a version is in production
// if any listed pointer holds it).
type Production struct {
	Stages          []string `yaml:"stages"`
	Aliases         []string `yaml:"aliases"`
	ApprovalStatus  string   `yaml:"approval_status"`
	LifecycleStages []string `yaml:"lifecycle_stages"`
}

// SourceApproval says where a source's approval evidence lives.
type SourceApproval struct {
	Tag                string `yaml:"tag"`
	TimeTag            string `yaml:"time_tag"`
	Alias              string `yaml:"alias"`
	TransitionRequests bool   `yaml:"transition_requests"`
}

// CloudTrail configures SageMaker approver attribution.
type CloudTrail struct {
	Enabled  *bool    `yaml:"enabled"` // default true
	Lookback Duration `yaml:"lookback"`
}

// On reports whether CloudTrail attribution is enabled (the default).
func (c CloudTrail) On() bool { return c.Enabled == nil || *c.Enabled }

// Schedule is a parsed cron spec (robfig/cron/v3 standard parser with descriptors;
// UTC unless the spec starts with CRON_TZ=).
type Schedule struct {
	Spec string
	cron.Schedule
}

// Duration is a time.Duration written in YAML as "30s", "15m", "720h".
// The zero Duration means "not set" and is written "".
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the shortest form time.ParseDuration reads back: "30m", "720h",
// "1h30m", "1m30s", "500ms"; "" for the zero Duration.
func (d Duration) String() string {
	if d == 0 {
		return ""
	}
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// UnmarshalYAML reads a duration written as time.ParseDuration accepts it;
// "" is the zero Duration (not set).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration in its String form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Secret is a configuration value that never prints: String, GoString, LogValue,
// MarshalYAML and MarshalJSON all give "<secret>" (or "" when unset).
type Secret string

// Reveal returns the secret's value, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) hidden() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// String hides the value.
func (s Secret) String() string { return s.hidden() }

// GoString hides the value.
func (s Secret) GoString() string { return s.hidden() }

// LogValue hides the value from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.hidden()) }

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.hidden(), nil }

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.hidden() + `"`), nil }
