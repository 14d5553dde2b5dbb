package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker"
	"github.com/registrywatch/registrywatch/internal/sources/wandb"
)

// SourceOptions are the dependencies NewSource hands to a source client.
type SourceOptions struct {
	// Clock times the client's retries and request timeouts.
	Clock clock.Clock
	// Logger receives the client's warnings.
	Logger *slog.Logger
	// HTTPClient, when set, carries the client's requests (tests, proxies);
	// nil lets each client build its own from the source config.
	HTTPClient *http.Client
}

// SourceFactory builds the source client of one configured source. NewSource
// is the factory of the binary; tests and the demo pass their own to point
// sources at fakes.
type SourceFactory func(ctx context.Context, cfg config.Source, opts SourceOptions) (sources.Source, error)

// NewSource returns the client of cfg by its type: mlflow and databricks
// (internal/sources/mlflow), sagemaker and wandb.
func NewSource(ctx context.Context, cfg config.Source, opts SourceOptions) (sources.Source, error) {
	switch cfg.Type {
	case sources.TypeMLflow, sources.TypeDatabricks:
		return mlflow.New(cfg, mlflow.Options{HTTPClient: opts.HTTPClient, Clock: opts.Clock, Logger: opts.Logger})
	case sources.TypeSageMaker:
		so := sagemaker.Options{Clock: opts.Clock, Logger: opts.Logger}
		if opts.HTTPClient != nil {
			so.HTTPClient = opts.HTTPClient
		}
		return sagemaker.New(ctx, cfg, so)
	case sources.TypeWandB:
		return wandb.New(cfg, wandb.Options{HTTPClient: opts.HTTPClient, Clock: opts.Clock, Logger: opts.Logger})
	}
	return nil, fmt.Errorf("source %q: source type %q is not supported by this build", cfg.Name, cfg.Type)
}
