package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registrywatch/registrywatch/internal/daemon"
)

// pollCmd is `registrywatch poll`.
type pollCmd struct{}

func init() { register(pollCmd{}) }

func (pollCmd) Name() string     { return "poll" }
func (pollCmd) Synopsis() string { return "poll every source once, then exit" }

const pollHelp = `
Polls every source once into the ledger, as one tick of the daemon would, prints
what each poll found (versions, changes and findings by kind, or the failure),
then delivers the alerts within alerts.poll_deadline and prints how many remain
pending (the daemon or the next poll sends them). A source that fails appends
no change, snapshot or finding entry.

Exit status 1 if any source failed to poll; 2 if it cannot start (see run -h).`

func (pollCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "poll", "[-config FILE]", pollHelp)
	configFlag := fs.String("config", "", configFlagHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, *configFlag)
	if err != nil {
		return err
	}
	rep, err := daemon.PollAll(ctx, cfg, daemon.Options{Logger: newLogger(cfg.Log, env.Stderr), Getenv: env.Getenv})
	if rep != nil {
		printPollReport(env.Stdout, rep, cfg.Alerts.PollDeadline.D())
	}
	if err != nil {
		return daemonErr(err)
	}
	if n := rep.FailedSources(); n > 0 {
		return checkErr(fmt.Errorf("%d of %d sources failed to poll", n, len(rep.Sources)))
	}
	return nil
}

// printPollReport prints one block per source, then the alerts line.
func printPollReport(w io.Writer, rep *daemon.PollReport, deadline time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range rep.Sources {
		if s.Err != nil {
			fmt.Fprintf(tw, "%s\tFAILED\t%s\n", s.Source, s.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\tok\t%d models, %d versions, %s\n", s.Source, s.Models, s.Versions, s.Duration.Round(time.Millisecond))
		fmt.Fprintf(tw, "\tchanges\t%s\n", counts(s.Changes))
		fmt.Fprintf(tw, "\tfindings\t%s\n", counts(s.Findings))
	}
	tw.Flush()
	switch {
	case !rep.Sink:
		fmt.Fprintf(w, "alerts: %d pending (alerts.slack is not configured)\n", rep.Pending)
	case rep.Pending > 0:
		fmt.Fprintf(w, "alerts: %d delivered, %d failed, %d still pending after %s (sent by the daemon or the next poll)\n",
			rep.Delivered, rep.Failed, rep.Pending, deadline)
	default:
		fmt.Fprintf(w, "alerts: %d delivered, %d failed, 0 pending\n", rep.Delivered, rep.Failed)
	}
}

// counts prints "kind n, kind n" in kind order, or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
