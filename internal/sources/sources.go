// Package sources defines what every watched registry returns: a complete
// Snapshot of its models and versions, or an error. Implementations live in
// sub-packages (mlflow, sagemaker, wandb), each with an in-process fake beside it.
package sources

import (
	"context"
	"errors"
)

// Source type names, as written in config and in each entry's source_type.
const (
	TypeMLflow     = "mlflow"
	TypeDatabricks = "databricks"
	TypeSageMaker  = "sagemaker"
	TypeWandB      = "wandb"
)

// Source is one configured registry.
type Source interface {
	// Name returns the configured source name.
	Name() string
	// Type returns one of the Type constants.
	Type() string
	// Snapshot reads the registry completely and returns its state. It MUST
	// return either a complete snapshot or an error, never a partial one: a
	// failed page, a timeout, a 5xx, a malformed body or a cancelled context is
	// an error naming the source and the endpoint. prev is what the last
	// successful poll returned (zero at the first poll); a source uses it to
	// confirm deletions, to skip re-describing unchanged objects and to resume
	// cursors kept in prev.Aux.
	Snapshot(ctx context.Context, prev Previous) (Result, error)
}

// Previous is the state left by the last successful poll of a source.
type Previous struct {
	// Snapshot is the last snapshot, or nil before the first successful poll.
	Snapshot *Snapshot
	// Aux is the source's opaque auxiliary state (cursors, caches), or nil.
	Aux []byte
}

// Result is what one successful Snapshot call returns.
type Result struct {
	Snapshot *Snapshot
	// Aux is the source's new auxiliary state, stored beside the snapshot but
	// not covered by its digest; nil keeps nothing.
	Aux []byte
	// Requests is the number of registry requests the snapshot took.
	Requests int
}

// ErrNotFound is returned by fakes and clients when a registry object does not
// exist (MLflow RESOURCE_DOES_NOT_EXIST, SageMaker ResourceNotFound).
var ErrNotFound = errors.New("not found")
