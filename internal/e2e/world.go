package e2e

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// Source names of the quarter's config.
const (
	MLflow     = "mlflow-prod"
	Databricks = "databricks-ws"
	SageMaker  = "sagemaker-prod"
	WandB      = "wandb-prod"
)

// Period is every source's poll schedule; CoverageGap and Objective are
// the config's alerts.coverage_gap and policy.rollback_objective.
const (
	Period      = time.Hour
	CoverageGap = 3 * time.Hour
	Objective   = 2 * time.Hour
)

// Credentials of the fakes: they guard only in-process test servers.
const (
	databricksToken = "dapi-e2e-quarter"
	wandbAPIKey     = "e2e-quarter-key"
	awsAccessKey    = "AKIAE2EQUARTER"
	awsSecretKey    = "e2e-quarter-secret"
)

// configYAML is the quarter's config; the {{...}} fields are filled by
// World.config.
const configYAML = `
ledger:
  path: {{LEDGER}}
  signer: {{KEY}}
  publish_schedule: "@daily"
policy:
  rollback_objective: 2h
  emergency_tag: emergency_change
  approval: { max_age: 720h }
alerts:
  coverage_gap: 3h
  slack:
    token: {{SLACK_TOKEN}}
    api_url: {{SLACK_API_URL}}
    channel: "#ml-audit"
    channels: { rollback.overdue: "#ml-oncall" }
    runbook_url: https://wiki.example.com/model-rollback
sources:
  - name: mlflow-prod
    type: mlflow
    url: {{MLFLOW_URL}}
    schedule: "@every 1h"
    timeout: 30m
    production: { stages: [Production] }
    approval: { tag: approved_by }
    rollback_request_tag: rollback_requested
  - name: databricks-ws
    type: databricks
    url: {{DATABRICKS_URL}}
    token: {{DATABRICKS_TOKEN}}
    schedule: "@every 1h"
    timeout: 30m
    production: { stages: [Production] }
    approval: { transition_requests: true }
  - name: sagemaker-prod
    type: sagemaker
    region: us-east-1
    endpoint: {{SAGEMAKER_URL}}
    schedule: "@every 1h"
    timeout: 30m
    cloudtrail: { enabled: true, lookback: 3h }
    production: { approval_status: Approved }
  - name: wandb-prod
    type: wandb
    url: {{WANDB_URL}}
    api_key: {{WANDB_API_KEY}}
    organization: acme
    registries: [model]
    schedule: "@every 1h"
    timeout: 30m
    production: { aliases: [production] }
    approval: { alias: approved }
    protected_aliases: [production, approved]
`

// W&B names: organization acme (entity acme-org) holds the model registry;
// team acme-ml trains the models.
const (
	wandbOrg      = "acme"
	wandbOrgOwner = "acme-org"
	wandbTeam     = "acme-ml"
	wandbProject  = "training"
	wandbRegistry = wandbfake.RegistryPrefix + "model"
)

// settleTimeout is the default World.SettleTimeout.
const settleTimeout = 2 * time.Minute

// World is the fakes, the ledger's files and the daemon running on them,
// all on one fake clock.
type World struct {
	// Clock is the quarter's time, shared by the fakes and the daemon.
	Clock *clock.Fake
	// The registries (MLflow open source, a Databricks workspace,
	// SageMaker with CloudTrail, W&B with action history) and Slack.
	MLflow     *mlflowfake.Server
	Databricks *mlflowfake.Server
	SageMaker  *sagemakerfake.Fake
	WandB      *wandbfake.Server
	Slack      *slackfake.Server

	// SettleTimeout bounds, in real time, each wait for the daemon to
	// finish what is due at one instant (default settleTimeout): reaching
	// it means the daemon hangs.
	SettleTimeout time.Duration

	// Dir holds the config file, the ledger and its key pair; Config is
	// the config as loaded from it.
	Dir                 string
	Config              *config.Config
	LedgerPath, KeyPath string
	PublicKey           crypto.PublicKey
	// Logger receives the daemon's logs.
	Logger  *slog.Logger
	servers []*httptest.Server
	run     *running
}

// NewWorld starts the fakes on a fake clock at start, writes a key pair and
// the quarter's config into dir and loads it. Close stops the fakes.
func NewWorld(dir string, start time.Time, logger *slog.Logger) (*World, error) {
	clk := clock.NewFake(start)
	w := &World{Clock: clk, Dir: dir, Logger: logger, SettleTimeout: settleTimeout}
	w.MLflow = mlflowfake.New(mlflowfake.Options{Clock: clk})
	w.Databricks = mlflowfake.New(mlflowfake.Options{Clock: clk, Databricks: true,
		Tokens: map[string]string{databricksToken: "registrywatch@example.com"}})
	w.SageMaker = sagemakerfake.New(clk, sagemakerfake.Options{})
	// The client's CloudTrail pacing takes no quarter time (sourceClock),
	// so the fake does not count lookups per second either.
	w.SageMaker.SetCloudTrailRateLimit(0)
	w.WandB = wandbfake.New(clk)
	w.WandB.SetAPIKey(wandbAPIKey)
	w.Slack = slackfake.New(slackfake.Options{Clock: clk})
	mlflowSrv, databricksSrv := w.MLflow.Start(), w.Databricks.Start()
	sagemakerSrv, wandbSrv := httptest.NewServer(w.SageMaker), httptest.NewServer(w.WandB)
	w.servers = []*httptest.Server{mlflowSrv, databricksSrv, sagemakerSrv, wandbSrv}

	w.LedgerPath, w.KeyPath = filepath.Join(dir, "ledger.db"), filepath.Join(dir, "ledger.key")
	priv, pubPEM, _, err := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
	if err == nil {
		err = os.WriteFile(w.KeyPath, priv, 0o600)
	}
	if err == nil {
		w.PublicKey, err = ledger.ParsePublicKeyPEM(pubPEM)
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("key pair: %w", err)
	}
	doc := strings.NewReplacer(
		"{{LEDGER}}", w.LedgerPath, "{{KEY}}", w.KeyPath,
		"{{SLACK_TOKEN}}", w.Slack.Token(), "{{SLACK_API_URL}}", w.Slack.APIURL(),
		"{{MLFLOW_URL}}", mlflowSrv.URL, "{{DATABRICKS_URL}}", databricksSrv.URL, "{{DATABRICKS_TOKEN}}", databricksToken,
		"{{SAGEMAKER_URL}}", sagemakerSrv.URL, "{{WANDB_URL}}", wandbSrv.URL, "{{WANDB_API_KEY}}", wandbAPIKey,
	).Replace(configYAML)
	path := filepath.Join(dir, "registrywatch.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		w.Close()
		return nil, err
	}
	if w.Config, err = config.Load(path, func(string) string { return "" }); err != nil {
		w.Close()
		return nil, fmt.Errorf("quarter config: %w", err)
	}
	return w, nil
}

// Close stops the daemon if it runs, then every fake.
func (w *World) Close() {
	if w.run != nil {
		w.run.stop()
	}
	for _, s := range w.servers {
		s.Close()
	}
	w.Slack.Close()
}

// Running reports whether the daemon runs.
func (w *World) Running() bool { return w.run != nil }

// Start runs daemon.Run on the world's config and returns once it runs.
func (w *World) Start(ctx context.Context) error {
	if w.run != nil {
		return errors.New("the daemon already runs")
	}
	r, err := startDaemon(ctx, w.Config, daemon.Options{
		Clock: w.Clock, Logger: w.Logger, Getenv: func(string) string { return "" }, SourceFactory: w.newSource,
	})
	if err != nil {
		return err
	}
	r.timeout = w.SettleTimeout
	w.run = r
	return r.settle()
}

// Stop shuts the daemon down gracefully (as on SIGTERM) and returns Run's
// result.
func (w *World) Stop() error {
	if w.run == nil {
		return errors.New("the daemon does not run")
	}
	err := w.run.stop()
	w.run = nil
	return err
}

// AdvanceTo moves the clock to t through every deadline on the way,
// letting a running daemon finish its work at each, as the real clock
// would.
func (w *World) AdvanceTo(t time.Time) error {
	if w.run == nil {
		if t.After(w.Clock.Now()) {
			w.Clock.Set(t)
		}
		return nil
	}
	for {
		if err := w.run.settle(); err != nil {
			return err
		}
		next, ok := w.Clock.NextDeadline()
		if !ok || next.After(t) {
			if t.After(w.Clock.Now()) {
				w.Clock.Set(t)
			}
			return w.run.settle()
		}
		w.Clock.Set(next)
	}
}

// newSource is the daemon's SourceFactory: the binary's clients on
// sourceClock, the SageMaker one talking to the fake with static
// credentials instead of looking for AWS settings in the environment.
func (w *World) newSource(ctx context.Context, cfg config.Source, opts daemon.SourceOptions) (sources.Source, error) {
	opts.Clock = sourceClock{w.Clock}
	if cfg.Type != sources.TypeSageMaker {
		return daemon.NewSource(ctx, cfg, opts)
	}
	creds := credentials.NewStaticCredentialsProvider(awsAccessKey, awsSecretKey, "")
	api := sm.New(sm.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: creds})
	trail := cloudtrail.New(cloudtrail.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: creds})
	return sagemaker.New(ctx, cfg, sagemaker.Options{Clock: opts.Clock, Logger: opts.Logger, API: api, Trail: trail})
}

// instantBelow is the longest wait of a registry client that takes no
// quarter time.
const instantBelow = 5 * time.Minute

// sourceClock is the clock of the registry clients: the quarter's time, but
// a wait shorter than instantBelow (a retry backoff, a Retry-After,
// CloudTrail's pacing) ends at once. The daemon's loops are idle only while
// they wait on the clock, so a wait inside a poll would hold the quarter
// still; request timeouts (the sources' timeout, 30m) stay on the clock.
type sourceClock struct{ *clock.Fake }

// NewTimer returns a timer on the quarter's clock, already fired when d is
// shorter than instantBelow.
func (c sourceClock) NewTimer(d time.Duration) clock.Timer {
	if d < instantBelow {
		d = 0
	}
	return c.Fake.NewTimer(d)
}

// running is daemon.Run in-process on the world's clock.
type running struct {
	timeout time.Duration
	d       *daemon.Daemon
	clk     *clock.Fake
	cancel  context.CancelFunc
	done    chan error
}

func startDaemon(ctx context.Context, cfg *config.Config, opts daemon.Options) (*running, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the daemon's HTTP endpoints: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	started := make(chan *daemon.Daemon, 1)
	r := &running{timeout: settleTimeout, clk: opts.Clock.(*clock.Fake), cancel: cancel, done: make(chan error, 1)}
	opts.HTTPListener = lis
	opts.OnStart = func(d *daemon.Daemon) { started <- d }
	go func() { r.done <- daemon.Run(ctx, cfg, opts) }()
	select {
	case r.d = <-started:
		return r, nil
	case err := <-r.done:
		cancel()
		lis.Close()
		return nil, fmt.Errorf("start the daemon: %w", err)
	}
}

// settle waits until the daemon has done everything due at the current
// time: polls, findings, alert deliveries.
func (r *running) settle() error {
	select {
	case <-r.d.Idle():
		return nil
	case err := <-r.done:
		r.done <- err
		if err == nil {
			err = errors.New("it returned no error")
		}
		return fmt.Errorf("the daemon stopped early, at %s: %w", fmtTime(r.clk.Now()), err)
	case <-time.After(r.timeout):
		return fmt.Errorf("the daemon did not settle at %s", fmtTime(r.clk.Now()))
	}
}

func (r *running) stop() error {
	if err := r.settle(); err != nil {
		return err
	}
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(settleTimeout):
		return errors.New("the daemon did not stop")
	}
}
