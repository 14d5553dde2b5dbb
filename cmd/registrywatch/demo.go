package main

import (
	"context"
	"errors"
	"os"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/demo"
)

// demoCmd is `registrywatch demo`.
type demoCmd struct{}

func init() { register(demoCmd{}) }

func (demoCmd) Name() string     { return "demo" }
func (demoCmd) Synopsis() string { return "play a scripted story on fake registries, offline" }

const demoHelp = `
Runs registrywatch's whole job offline, in seconds. In-process fakes of MLflow,
a Databricks workspace registry, SageMaker with CloudTrail, Weights & Biases and
Slack play a story of three days: an approved promotion, one that skipped
approval, a self-approval, a late approval, a rollback within its time
objective and one that overran it. The daemon watches them on a fake clock,
each Slack alert is printed as it arrives, and at the end the ledger is
exported to an evidence bundle and both are verified with the public key.

The demo leaves in DIR: registrywatch.yaml (the config it ran), ledger.db,
ledger.key and ledger.pub, slack.jsonl (each message as the fake Slack received
it), checkpoints/ and bundle/. DIR defaults to a new temporary directory; a
non-empty DIR is refused unless -force is given, which replaces the files of an
earlier demo and leaves any other file alone.`

func (demoCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "demo", "[-dir DIR] [-force] [-v]", demoHelp)
	dir := fs.String("dir", "", "leave the demo's files in `DIR` (default: a new temporary directory)")
	force := fs.Bool("force", false, "use DIR even if it is not empty, replacing an earlier demo's files")
	verbose := fs.Bool("v", false, "print the daemon's info logs (default: warnings only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "registrywatch-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	level := "warn"
	if *verbose {
		level = "info"
	}
	_, err := demo.Run(ctx, demo.Options{
		Dir:    *dir,
		Force:  *force,
		Out:    env.Stdout,
		Logger: newLogger(config.Log{Format: "text", Level: level}, env.Stderr),
		Tool:   "registrywatch " + versionString(),
	})
	if errors.Is(err, demo.ErrDirNotEmpty) {
		return usageErr(err)
	}
	return err
}
