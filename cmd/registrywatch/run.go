package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/daemon"
)

// daemonCmd is `registrywatch run`.
type daemonCmd struct{}

func init() { register(daemonCmd{}) }

func (daemonCmd) Name() string     { return "run" }
func (daemonCmd) Synopsis() string { return "run the daemon" }

const runHelp = `
Runs the daemon: polls every source on its schedule into the signed ledger,
alerts Slack, publishes the signed checkpoint on ledger.publish_schedule and
serves /healthz, /readyz and /metrics on http.listen. Logs go to stderr, as
log.format and log.level say.

The config file is -config, else $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml.
An encrypted signing key's passphrase comes from $REGISTRYWATCH_PASSPHRASE, else
ledger.passphrase_file.

SIGTERM or SIGINT stops it gracefully: the polls in flight finish and pending
alerts are delivered, within 10 seconds; a second signal exits at once.

Exit status 2 if it cannot start: an invalid config, a ledger locked by another
writer, a signing key that cannot be loaded, a ledger directory that is not
writable, a source whose stored state does not match the ledger.`

// daemonGCPercent is the GOGC of `run` unless $GOGC is set: the heap may
// grow to 1.5 times the live data between collections instead of 2 times.
const daemonGCPercent = 50

const configFlagHelp = "config `FILE` (default $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml)"

func (daemonCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "run", "[-config FILE]", runHelp)
	configFlag := fs.String("config", "", configFlagHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, *configFlag)
	if err != nil {
		return err
	}
	if env.Getenv("GOGC") == "" {
		// A sidecar that mostly waits: trade a little CPU for a smaller heap.
		debug.SetGCPercent(daemonGCPercent)
	}
	err = daemon.Run(ctx, cfg, daemon.Options{Logger: newLogger(cfg.Log, env.Stderr), Getenv: env.Getenv,
		OnStart: func(d *daemon.Daemon) { go releaseMemory(ctx, d.Idle) }})
	return daemonErr(err)
}

// releaseEvery is how often releaseMemory looks at the heap, and
// releaseAfter how many bytes the process must have allocated since the last
// release for another one.
const (
	releaseEvery = 5 * time.Second
	releaseAfter = 1 << 20
)

// releaseMemory returns the free heap pages to the operating system once the
// daemon is idle after it allocated (a poll, a delivery): a sidecar that
// mostly waits then keeps resident only its live data, instead of the heap
// it grew to during its last poll, which the runtime would otherwise return
// only gradually. It costs one garbage collection per idle period that
// follows work, and runs on the wall clock: it is about the process, not
// about anything recorded.
func releaseMemory(ctx context.Context, idle func() <-chan struct{}) {
	allocated := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	var released uint64
	t := time.NewTicker(releaseEvery)
	defer t.Stop()
	for {
		metrics.Read(allocated)
		if n := allocated[0].Value.Uint64(); n-released >= releaseAfter {
			select {
			case <-idle():
				debug.FreeOSMemory()
				released = n
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// loadConfig loads the config file named by -config, $REGISTRYWATCH_CONFIG or
// ./registrywatch.yaml; any problem is a usage error (exit 2).
func loadConfig(env *Env, flagValue string) (*config.Config, error) {
	path := config.ResolvePath(flagValue, env.Getenv)
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, usageErr(fmt.Errorf("%s is not valid:\n%w", path, err))
		}
		return nil, usageErr(err)
	}
	return cfg, nil
}

// newLogger returns the logger log.format and log.level ask for, writing to w.
func newLogger(l config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// daemonErr maps a daemon error to its exit code: a start failure is exit 2.
func daemonErr(err error) error {
	var se *daemon.StartError
	if errors.As(err, &se) {
		return usageErr(err)
	}
	return err
}
