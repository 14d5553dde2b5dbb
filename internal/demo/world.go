package demo

import (
	"context"
	"fmt"
	"net/http/httptest"
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
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// Source names of demo.yaml.
const (
	mlflowProd    = "mlflow-prod"
	databricksWS  = "databricks-ws"
	sagemakerProd = "sagemaker-prod"
	wandbProd     = "wandb-prod"
)

// Credentials of the fakes. They guard nothing but in-process test servers
// that stop with the demo; demo.yaml reads them like real secrets.
const (
	databricksToken = "dapi-registrywatch-demo"
	wandbAPIKey     = "registrywatch-demo-key"
	awsAccessKey    = "AKIAREGISTRYWATCHDEMO"
	awsSecretKey    = "registrywatch-demo-secret"
)

// W&B names: the organization acme, whose registries belong to the entity
// acme-org, and the team acme-ml that trains the models.
const (
	wandbOrg      = "acme"
	wandbOrgOwner = "acme-org"
	wandbTeam     = "acme-ml"
	wandbProject  = "training"
	wandbRegistry = wandbfake.RegistryPrefix + "model"
)

// world is the fakes the story plays on, all on the demo's fake clock.
type world struct {
	clk        *clock.Fake
	mlflow     *mlflowfake.Server  // MLflow open source
	databricks *mlflowfake.Server  // a Databricks workspace registry
	sagemaker  *sagemakerfake.Fake // SageMaker and CloudTrail
	wandb      *wandbfake.Server   // W&B with action history
	slack      *slackfake.Server   // where the alerts go
	servers    []*httptest.Server  // the registries' servers
	vars       map[string]string   // the ${DEMO_...} values of demo.yaml
}

// newWorld starts the fakes; Slack calls onMessage with each message it
// accepts. Close stops them.
func newWorld(clk *clock.Fake, onMessage func(slackfake.Message)) *world {
	w := &world{clk: clk}
	w.mlflow = mlflowfake.New(mlflowfake.Options{Clock: clk})
	w.databricks = mlflowfake.New(mlflowfake.Options{Clock: clk, Databricks: true,
		Tokens: map[string]string{databricksToken: "registrywatch@example.com"}})
	w.sagemaker = sagemakerfake.New(clk, sagemakerfake.Options{})
	// The demo's SageMaker client does not pace its CloudTrail lookups on
	// the story's clock (see instantClock), so the fake does not count them.
	w.sagemaker.SetCloudTrailRateLimit(0)
	w.wandb = wandbfake.New(clk)
	w.wandb.SetAPIKey(wandbAPIKey)
	w.slack = slackfake.New(slackfake.Options{Clock: clk, OnMessage: onMessage})
	mlflowSrv, databricksSrv := w.mlflow.Start(), w.databricks.Start()
	sagemakerSrv, wandbSrv := httptest.NewServer(w.sagemaker), httptest.NewServer(w.wandb)
	w.servers = []*httptest.Server{mlflowSrv, databricksSrv, sagemakerSrv, wandbSrv}
	w.vars = map[string]string{
		"DEMO_MLFLOW_URL":       mlflowSrv.URL,
		"DEMO_DATABRICKS_URL":   databricksSrv.URL,
		"DEMO_DATABRICKS_TOKEN": databricksToken,
		"DEMO_SAGEMAKER_URL":    sagemakerSrv.URL,
		"DEMO_WANDB_URL":        wandbSrv.URL,
		"DEMO_WANDB_API_KEY":    wandbAPIKey,
		"DEMO_SLACK_TOKEN":      w.slack.Token(),
		"DEMO_SLACK_API_URL":    w.slack.APIURL(),
	}
	return w
}

// Close stops every fake.
func (w *world) Close() {
	for _, s := range w.servers {
		s.Close()
	}
	w.slack.Close()
}

// config returns demo.yaml with every ${DEMO_...} variable replaced by its
// value. It fails if the file names a variable the world does not fill.
func (w *world) config() ([]byte, error) {
	pairs := make([]string, 0, 2*len(w.vars))
	for k, v := range w.vars {
		pairs = append(pairs, "${"+k+"}", v)
	}
	out := strings.NewReplacer(pairs...).Replace(configYAML)
	if i := strings.Index(out, "${DEMO_"); i >= 0 {
		name, _, _ := strings.Cut(out[i+2:], "}")
		return nil, fmt.Errorf("demo config: no value for ${%s}", name)
	}
	return []byte(out), nil
}

// newSource is the daemon's SourceFactory: the clients of the binary,
// except that the SageMaker client talks to the fake without looking for
// AWS credentials or settings in the environment.
func (w *world) newSource(ctx context.Context, cfg config.Source, opts daemon.SourceOptions) (sources.Source, error) {
	if cfg.Type != sources.TypeSageMaker {
		return daemon.NewSource(ctx, cfg, opts)
	}
	creds := credentials.NewStaticCredentialsProvider(awsAccessKey, awsSecretKey, "")
	api := sm.New(sm.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: creds})
	trail := cloudtrail.New(cloudtrail.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: creds})
	return sagemaker.New(ctx, cfg, sagemaker.Options{Clock: instantClock{w.clk}, Logger: opts.Logger, API: api, Trail: trail})
}

// instantClock tells the story's time, but its timers fire at once. The
// SageMaker client waits on its clock only to pace CloudTrail lookups (two
// a second) and to back off before a retry; in the demo those waits take no
// story time, so a poll never waits for the clock the story moves.
type instantClock struct{ *clock.Fake }

// NewTimer returns a timer that has already fired.
func (c instantClock) NewTimer(time.Duration) clock.Timer { return c.Fake.NewTimer(0) }
