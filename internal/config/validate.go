package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// FindingKinds are the finding kinds that alert, and so the keys allowed in
// alerts.slack.channels. production.changed is recorded but never alerts.
var FindingKinds = []string{"promotion", "rollback", "restored", "rollback.overdue", "coverage.late"}

// mlflowStages are the stages of the MLflow model registry, as it spells them.
var mlflowStages = []string{"None", "Staging", "Production", "Archived"}

var (
	sourceNameRE = regexp.MustCompile(`^[a-z0-9._-]+$`)
	awsRegionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	wandbAutoRE  = regexp.MustCompile(`^(latest|v[0-9]+)$`)
)

// cronParser reads five-field cron specs and descriptors (@daily, @every 1m).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule: a five-field cron spec or a descriptor
// (@hourly, @daily, @every 1m), in UTC unless the spec starts with
// CRON_TZ=<zone>. An @every interval must be at least 1s, and the schedule
// must fire at least once in five years. The error does not quote the spec.
func ParseSchedule(spec string) (Schedule, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return Schedule{}, errors.New("empty schedule")
	}
	if !strings.HasPrefix(s, "CRON_TZ=") && !strings.HasPrefix(s, "TZ=") {
		s = "CRON_TZ=UTC " + s
	} else if !strings.Contains(s, " ") {
		return Schedule{}, errors.New("CRON_TZ=<zone> must be followed by a space and a schedule")
	}
	_, rest, _ := strings.Cut(s, " ")
	rest = strings.TrimSpace(rest)
	if every, ok := strings.CutPrefix(rest, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(every))
		if err != nil {
			return Schedule{}, fmt.Errorf("@every needs a duration such as 30s or 5m")
		}
		if d < time.Second {
			return Schedule{}, fmt.Errorf("@every interval must be at least 1s")
		}
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return Schedule{}, err
	}
	ref := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if sched.Next(ref).IsZero() {
		return Schedule{}, errors.New("never fires")
	}
	return Schedule{Spec: spec, Schedule: sched}, nil
}

// validate checks cfg after defaults, recording one problem per bad field; it
// also parses schedules and reads secret files into their secrets.
func (l *loader) validate(c *Config) {
	l.validateLedger(&c.Ledger, "ledger")

	if host, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || !validPort(port) || strings.ContainsAny(host, " /") {
		l.invalid("http.listen", "listen address", c.HTTP.Listen, errors.New("want host:port such as 127.0.0.1:9090 or :9090"))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		l.errorf("log.format", "must be text or json, not %s", l.show("log.format", c.Log.Format))
	}
	var lv slog.Level
	if lv.UnmarshalText([]byte(c.Log.Level)) != nil {
		l.errorf("log.level", "must be debug, info, warn or error, not %s", l.show("log.level", c.Log.Level))
	}

	l.positive("policy.rollback_objective", c.Policy.RollbackObjective)
	l.positive("policy.approval.max_age", c.Policy.Approval.MaxAge)
	l.nonEmpty("policy.approval.approvers", c.Policy.Approval.Approvers)

	l.positive("alerts.coverage_gap", c.Alerts.CoverageGap)
	l.positive("alerts.poll_deadline", c.Alerts.PollDeadline)
	l.validateSlack(&c.Alerts.Slack, "alerts.slack")

	if len(c.Sources) == 0 {
		l.errorf("sources", "at least one source is required")
	}
	names := map[string]int{}
	for i := range c.Sources {
		l.validateSource(&c.Sources[i], i, names)
	}
}

func (l *loader) validateLedger(led *Ledger, p string) {
	if led.Path == "" {
		l.errorf(p+".path", "is required")
	}
	if led.Signer == "" {
		l.errorf(p+".signer", "is required: a key file made by keygen, or an awskms:// or hashivault:// key")
	} else if scheme, _, uri := strings.Cut(led.Signer, "://"); uri && scheme != "awskms" && scheme != "hashivault" {
		l.errorf(p+".signer", "unsupported key URI scheme %s (awskms or hashivault)", l.show(p+".signer", scheme))
	}
	if led.Origin != "" && !validOrigin(led.Origin) {
		l.invalid(p+".origin", "origin", led.Origin, errors.New("a C2SP key name: printable ASCII without spaces or '+'"))
	}
	sched, err := ParseSchedule(led.PublishSchedule)
	if err != nil {
		l.invalid(p+".publish_schedule", "schedule", led.PublishSchedule, err)
	}
	led.Publish = sched
}

func (l *loader) validateSlack(s *Slack, p string) {
	l.secret(p+".webhook_url", &s.WebhookURL, s.WebhookURLFile)
	l.secret(p+".token", &s.Token, s.TokenFile)
	switch {
	case s.WebhookURL != "" && s.Token != "":
		l.errorf(p+".token", "set webhook_url or token, not both")
	case s.Token != "" && s.Channel == "":
		l.errorf(p+".channel", "is required with token (the channel for alerts without their own)")
	case s.Token == "" && len(s.Channels) > 0:
		l.errorf(p+".channels", "needs token and channel (an incoming webhook posts to one fixed channel)")
	}
	if s.WebhookURL != "" {
		if u, err := url.Parse(s.WebhookURL.Reveal()); err != nil || !httpURL(u) {
			l.errorf(p+".webhook_url", "is not an http or https URL")
		}
	}
	for _, kind := range sortedKeys(s.Channels) {
		kp := p + ".channels[" + strconv.Quote(kind) + "]"
		switch {
		case !slices.Contains(FindingKinds, kind):
			l.errorf(kp, "not a finding kind that alerts (%s)", strings.Join(FindingKinds, ", "))
		case s.Channels[kind] == "":
			l.errorf(kp, "must name a channel")
		}
	}
	l.url(p+".runbook_url", s.RunbookURL)
	l.url(p+".api_url", s.APIURL)
}

func (l *loader) validateSource(s *Source, i int, names map[string]int) {
	p := fmt.Sprintf("sources[%d]", i)
	switch {
	case s.Name == "":
		l.errorf(p+".name", "is required")
	case !sourceNameRE.MatchString(s.Name):
		l.errorf(p+".name", "%s: use lowercase letters, digits, '.', '_' and '-'", l.show(p+".name", s.Name))
	default:
		if j, dup := names[s.Name]; dup {
			l.errorf(p+".name", "%q is already the name of sources[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
	}
	knownType := true
	switch s.Type {
	case typeMLflow, typeDatabricks, typeSageMaker, typeWandB:
	case "":
		knownType = false
		l.errorf(p+".type", "is required: mlflow, databricks, sagemaker or wandb")
	default:
		knownType = false
		l.errorf(p+".type", "unknown type %s: want mlflow, databricks, sagemaker or wandb", l.show(p+".type", s.Type))
	}

	l.secret(p+".token", &s.Token, s.TokenFile)
	l.secret(p+".password", &s.Password, s.PasswordFile)
	l.secret(p+".api_key", &s.APIKey, s.APIKeyFile)
	l.headers(s, p)
	switch {
	case s.Token != "" && s.Username != "":
		l.errorf(p+".username", "set token or username and password, not both")
	case s.Username != "" && s.Password == "":
		l.errorf(p+".username", "needs password or password_file")
	case s.Username == "" && s.Password != "":
		l.errorf(p+".password", "needs username")
	}
	if s.URL == "" && (s.Type == typeMLflow || s.Type == typeDatabricks) {
		l.errorf(p+".url", "is required for type %s", s.Type)
	}
	l.url(p+".url", s.URL)

	if sched, err := ParseSchedule(s.ScheduleSpec); err != nil {
		l.invalid(p+".schedule", "schedule", s.ScheduleSpec, err)
	} else {
		s.Schedule = sched
	}
	l.positive(p+".timeout", s.Timeout)
	if s.Concurrency < 1 || s.Concurrency > 64 {
		l.errorf(p+".concurrency", "must be between 1 and 64, not %d", s.Concurrency)
	}
	l.globs(p+".models", s.Models)
	if l.present[p+".rollback_objective"] {
		l.positive(p+".rollback_objective", s.RollbackObjective)
	}
	for _, pat := range sortedKeys(s.RollbackObjectives) {
		kp := p + ".rollback_objectives[" + strconv.Quote(pat) + "]"
		if _, err := path.Match(pat, ""); err != nil || pat == "" {
			l.errorf(kp, "invalid model pattern (path.Match syntax: *, ?, [a-z])")
		}
		l.positive(kp, s.RollbackObjectives[pat])
	}
	if !knownType {
		return
	}
	l.validateProduction(s, p)
	l.validateApproval(s, p)

	switch s.Type {
	case typeSageMaker:
		switch {
		case s.Region == "":
			l.errorf(p+".region", "is required for type sagemaker")
		case !awsRegionRE.MatchString(s.Region):
			l.errorf(p+".region", "%s is not an AWS region name such as us-east-1", l.show(p+".region", s.Region))
		}
		if s.RoleARN != "" && !strings.HasPrefix(s.RoleARN, "arn:") {
			l.errorf(p+".role_arn", "%s is not an ARN (arn:aws:iam::…:role/…)", l.show(p+".role_arn", s.RoleARN))
		}
		l.url(p+".endpoint", s.Endpoint)
		l.globs(p+".model_package_groups", s.ModelPackageGroups)
		l.positive(p+".cloudtrail.lookback", s.CloudTrail.Lookback)
	case typeWandB:
		if s.Organization == "" && len(s.LegacyEntities) == 0 {
			l.errorf(p+".organization", "is required for type wandb (or legacy_entities for the older Model Registry)")
		}
		if len(s.Registries) > 0 && s.Organization == "" {
			l.errorf(p+".registries", "needs organization")
		}
		l.nonEmpty(p+".registries", s.Registries)
		l.nonEmpty(p+".legacy_entities", s.LegacyEntities)
		l.nonEmpty(p+".protected_aliases", s.ProtectedAliases)
	}
}

// validateProduction checks that the production mapping names something the
// source's registry has.
func (l *loader) validateProduction(s *Source, p string) {
	pr, pp := s.Production, p+".production"
	if len(pr.Stages) == 0 && len(pr.Aliases) == 0 && pr.ApprovalStatus == "" && len(pr.LifecycleStages) == 0 {
		l.errorf(pp, "maps nothing to production")
		return
	}
	stagesOK := s.Type == typeMLflow || s.Type == typeDatabricks
	aliasesOK := stagesOK || s.Type == typeWandB
	sageOK := s.Type == typeSageMaker
	if len(pr.Stages) > 0 && !stagesOK {
		l.errorf(pp+".stages", "a %s registry has no stages", s.Type)
	}
	if len(pr.Aliases) > 0 && !aliasesOK {
		l.errorf(pp+".aliases", "a %s registry has no aliases", s.Type)
	}
	if pr.ApprovalStatus != "" && !sageOK {
		l.errorf(pp+".approval_status", "only a sagemaker source has an approval status")
	}
	if len(pr.LifecycleStages) > 0 && !sageOK {
		l.errorf(pp+".lifecycle_stages", "only a sagemaker source has lifecycle stages")
	}
	for i, st := range pr.Stages {
		if !slices.Contains(mlflowStages, st) {
			l.errorf(fmt.Sprintf("%s.stages[%d]", pp, i), "%s is not an MLflow stage (%s)",
				l.show(fmt.Sprintf("%s.stages[%d]", pp, i), st), strings.Join(mlflowStages, ", "))
		}
	}
	l.nonEmpty(pp+".aliases", pr.Aliases)
	if s.Type == typeWandB {
		for i, a := range pr.Aliases {
			if wandbAutoRE.MatchString(a) {
				l.errorf(fmt.Sprintf("%s.aliases[%d]", pp, i), "%q is set by W&B on every new version, not a production alias", a)
			}
		}
	}
	if pr.ApprovalStatus != "" && pr.ApprovalStatus != "Approved" {
		l.errorf(pp+".approval_status", "must be Approved, not %s", l.show(pp+".approval_status", pr.ApprovalStatus))
	}
	l.nonEmpty(pp+".lifecycle_stages", pr.LifecycleStages)
}

// validateApproval checks where the source's approval evidence comes from.
func (l *loader) validateApproval(s *Source, p string) {
	a, ap := s.Approval, p+".approval"
	n := 0
	for _, set := range []bool{a.Tag != "", a.Alias != "", a.TransitionRequests} {
		if set {
			n++
		}
	}
	if n > 1 {
		l.errorf(ap, "set only one of tag, alias and transition_requests")
	}
	if a.TimeTag != "" && a.Tag == "" {
		l.errorf(ap+".time_tag", "needs tag")
	}
	if a.TransitionRequests && s.Type != typeDatabricks {
		l.errorf(ap+".transition_requests", "only a databricks source has transition requests")
	}
	switch {
	case a.Alias != "" && s.Type == typeSageMaker:
		l.errorf(ap+".alias", "a sagemaker registry has no aliases")
	case a.Alias != "" && s.Type == typeWandB && !slices.Contains(s.ProtectedAliases, a.Alias):
		l.errorf(ap+".alias", "%q must be one of protected_aliases, so that only approvers can set it", a.Alias)
	}
}

// headers checks header names and values, and reads header_files into Headers.
func (l *loader) headers(s *Source, p string) {
	for _, name := range sortedKeys(s.Headers) {
		hp := p + ".headers[" + strconv.Quote(name) + "]"
		if !validHeaderName(name) {
			l.errorf(hp, "invalid header name")
		}
		if strings.ContainsAny(s.Headers[name].Reveal(), "\r\n\x00") {
			l.errorf(hp, "value contains a line break or NUL")
		}
	}
	for _, name := range sortedKeys(s.HeaderFiles) {
		hp := p + ".header_files[" + strconv.Quote(name) + "]"
		if !validHeaderName(name) {
			l.errorf(hp, "invalid header name")
			continue
		}
		if _, dup := s.Headers[name]; dup {
			l.errorf(hp, "set headers[%q] or header_files[%q], not both", name, name)
			continue
		}
		v, err := readSecretFile(s.HeaderFiles[name])
		if err != nil {
			l.errorf(hp, "%v", err)
			continue
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			l.errorf(hp, "value contains a line break or NUL")
			continue
		}
		if s.Headers == nil {
			s.Headers = map[string]Secret{}
		}
		s.Headers[name] = Secret(v)
	}
}

// secret checks a secret and its _file twin, and reads the file into the
// secret. Setting both is an error.
func (l *loader) secret(p string, s *Secret, file string) {
	if file == "" {
		return
	}
	if *s != "" {
		key := p[strings.LastIndex(p, ".")+1:]
		l.errorf(p+"_file", "set %s or %s_file, not both", key, key)
		return
	}
	v, err := readSecretFile(file)
	if err != nil {
		l.errorf(p+"_file", "%v", err)
		return
	}
	*s = Secret(v)
}

// maxSecretFile bounds what a secret file may hold.
const maxSecretFile = 64 << 10

// readSecretFile returns the contents of a secret file without one trailing
// newline. An empty file is an error.
func readSecretFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", name, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than 64 KiB", name)
	}
	v := string(b)
	if t, ok := strings.CutSuffix(v, "\n"); ok {
		v = strings.TrimSuffix(t, "\r")
	}
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", name)
	}
	return v, nil
}

// url checks an optional http(s) URL; it never quotes embedded credentials.
func (l *loader) url(p, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if strings.Contains(raw, "@") {
			l.errorf(p, "invalid URL")
			return
		}
		l.invalid(p, "URL", raw, err)
		return
	}
	switch {
	case u.User != nil:
		l.errorf(p, "must not contain credentials: use username and password, or token")
	case !httpURL(u):
		l.invalid(p, "URL", raw, errors.New("want http:// or https:// and a host"))
	}
}

func httpURL(u *url.URL) bool { return (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" }

// positive checks that a duration is above zero.
func (l *loader) positive(p string, d Duration) {
	if d <= 0 {
		l.errorf(p, "must be a positive duration such as 30s, 15m or 720h")
	}
}

// globs checks a list of model name patterns (path.Match syntax).
func (l *loader) globs(p string, globs []string) {
	for i, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			l.errorf(fmt.Sprintf("%s[%d]", p, i), "invalid pattern %s (path.Match syntax: *, ?, [a-z])", l.show(fmt.Sprintf("%s[%d]", p, i), g))
		}
	}
}

// nonEmpty checks that no element of a list is empty.
func (l *loader) nonEmpty(p string, list []string) {
	for i, v := range list {
		if strings.TrimSpace(v) == "" {
			l.errorf(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
		}
	}
}

// validOrigin reports whether s is a C2SP signed-note key name as this project
// restricts it: printable ASCII, no spaces, no '+'.
func validOrigin(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '+' {
			return false
		}
	}
	return s != ""
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
