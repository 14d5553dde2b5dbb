// Package demo plays registrywatch's whole job offline, in seconds: fakes of
// every registry (MLflow open source, a Databricks workspace registry,
// SageMaker with CloudTrail, Weights & Biases with action history) act out a
// scripted story of three days, the daemon watches them in-process on a fake
// clock and alerts a fake Slack, and at the end the ledger is exported to an
// evidence bundle and both are verified, as an auditor would.
//
// The story is data (story.go): each step says what a person or pipeline
// does, in which registry, at what time. The runner moves the clock to each
// step, letting the daemon do everything due on the way, then performs it.
package demo

import (
	"context"
	"crypto"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// configYAML is the demo's configuration; configs/demo.yaml is a copy.
//
//go:embed demo.yaml
var configYAML string

// Files the demo writes in its directory.
const (
	ConfigFile     = "registrywatch.yaml"
	LedgerFile     = "ledger.db"
	KeyFile        = "ledger.key"
	PublicKeyFile  = "ledger.pub"
	SlackFile      = "slack.jsonl"
	BundleDir      = "bundle"
	CheckpointsDir = "checkpoints"
	ledgerLockFile = LedgerFile + ".lock"
	ledgerWALFile  = LedgerFile + "-wal"
	ledgerSHMFile  = LedgerFile + "-shm"
	ledgerJournal  = LedgerFile + "-journal"
)

// demoFiles are the names the demo writes, removed first under -force.
var demoFiles = []string{ConfigFile, LedgerFile, ledgerLockFile, ledgerWALFile, ledgerSHMFile, ledgerJournal,
	KeyFile, PublicKeyFile, SlackFile, BundleDir, CheckpointsDir}

// ErrDirNotEmpty is returned when the demo's directory holds files and
// Options.Force is not set.
var ErrDirNotEmpty = errors.New("directory is not empty")

// Options configures Run.
type Options struct {
	// Dir is the directory the demo leaves its files in (created when
	// missing). It MUST be empty unless Force is set.
	Dir string
	// Force lets the demo use a non-empty Dir: the files a demo writes are
	// removed first, other files are left alone.
	Force bool
	// Out receives the story as it happens, the Slack messages as they
	// arrive, and the closing tour (default io.Discard).
	Out io.Writer
	// Logger receives the daemon's logs (default: discarded).
	Logger *slog.Logger
	// Tool names the exporting program in the bundle's manifest.
	Tool string
}

// Result is what a demo left behind: absolute paths, and what the tour
// reported.
type Result struct {
	Dir, Config, Ledger, Key, PublicKey, Slack, Bundle, Checkpoints string
	// Tour holds the counts and findings read back from the ledger.
	Tour *Tour
}

// Run plays the demo into opts.Dir: it writes the config and a fresh key
// pair, starts the fakes and the daemon on a fake clock at a fixed time
// (2026-10-01 09:00 UTC), plays the story, stops the daemon, writes every
// Slack message to slack.jsonl, exports the whole history to bundle/,
// verifies the ledger and the bundle against the public key, and prints the
// tour to opts.Out. A non-empty directory without Force is refused with
// ErrDirNotEmpty.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Tool == "" {
		opts.Tool = "registrywatch demo"
	}
	res, err := prepareDir(opts.Dir, opts.Force)
	if err != nil {
		return nil, err
	}
	pub, err := writeKeys(res)
	if err != nil {
		return nil, err
	}
	p := &printer{w: opts.Out}
	w := newWorld(clock.NewFake(storyStart), p.slack)
	defer w.Close()
	cfg, err := writeConfig(w, res.Config)
	if err != nil {
		return nil, err
	}

	p.printf("registrywatch demo: four registries on fakes, a story of three days on a fake clock\n")
	p.printf("(config %s; the daemon polls every registry every 5 minutes)\n\n", res.Config)
	p.printf("What the registries hold when registrywatch starts:\n")
	for _, s := range setting {
		p.step(s.at, s.source, s.what)
		if err := s.do(w); err != nil {
			return nil, fmt.Errorf("set the scene: %s: %w", s.what, err)
		}
	}
	p.printf("\nThe story, with each Slack message as it arrives:\n")
	if err := watch(ctx, cfg, w, p, opts.Logger); err != nil {
		return nil, err
	}
	if err := writeSlack(res.Slack, w); err != nil {
		return nil, err
	}
	if res.Tour, err = check(ctx, res, pub, w.clk, opts.Tool); err != nil {
		return nil, err
	}
	res.Tour.Messages = len(w.slack.Messages())
	res.Tour.print(p, res)
	return res, nil
}

// check does what an auditor would once the daemon has stopped: it exports
// the whole history, from the first day of the story to the day after it
// ended, verifies the ledger against pub and the checkpoints the daemon
// published, verifies the bundle against pub, and reads the tour from the
// ledger.
func check(ctx context.Context, res *Result, pub crypto.PublicKey, clk clock.Clock, tool string) (*Tour, error) {
	day := 24 * time.Hour
	from, to := storyStart.Truncate(day), clk.Now().Truncate(day).Add(day)
	sum, err := exportBundle(ctx, res, pub, from, to, clk, tool)
	if err != nil {
		return nil, err
	}
	checkpoints, err := readCheckpoints(res.Checkpoints)
	if err != nil {
		return nil, err
	}
	rep, err := ledger.Verify(ctx, res.Ledger, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}, Checkpoints: checkpoints})
	if err != nil {
		return nil, fmt.Errorf("verify the ledger: %w", err)
	}
	if !rep.OK() {
		return nil, fmt.Errorf("the ledger does not verify: %s", rep.Problems[0].Message)
	}
	brep, err := export.VerifyBundle(ctx, res.Bundle, export.VerifyOptions{Keys: []crypto.PublicKey{pub}})
	if err != nil {
		return nil, err
	}
	t, err := readTour(ctx, res.Ledger)
	if err != nil {
		return nil, err
	}
	t.From, t.To, t.Export, t.Ledger, t.Bundle, t.Checkpoints = from, to, sum, rep, brep, len(checkpoints)
	return t, nil
}

// watch runs the daemon on the world while the story plays, and stops it.
func watch(ctx context.Context, cfg *config.Config, w *world, p *printer, logger *slog.Logger) error {
	r, err := startDaemon(ctx, cfg, daemon.Options{
		Logger:        slog.New(clockHandler{logger.Handler(), w.clk}),
		Getenv:        noEnv,
		SourceFactory: w.newSource,
	}, w.clk)
	if err != nil {
		return err
	}
	p.printf("%s registrywatch starts and takes a baseline of every registry\n", stamp(storyStart))
	l, err := ledger.OpenReadOnly(cfg.Ledger.Path)
	if err == nil {
		r.settled = quietFindings(ctx, l, p)
		err = play(r, w, p, story)
		if err == nil {
			err = r.advanceTo(storyEnd)
		}
		r.settled = nil
		l.Close()
	}
	p.printf("%s registrywatch stops\n\n", stamp(w.clk.Now()))
	if serr := r.stop(); err == nil && serr != nil {
		err = fmt.Errorf("daemon: %w", serr)
	}
	return err
}

// noEnv is the environment the demo's config is read with: none, so nothing
// outside the demo can change it.
func noEnv(string) string { return "" }

// prepareDir makes dir (absolute) ready for a demo and returns the paths of
// its files.
func prepareDir(dir string, force bool) (*Result, error) {
	if dir == "" {
		return nil, errors.New("no directory for the demo")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 && !force {
		return nil, fmt.Errorf("%s: %w: give -force to replace an earlier demo's files in it, or another -dir", abs, ErrDirNotEmpty)
	}
	for _, e := range entries {
		if slices.Contains(demoFiles, e.Name()) {
			if err := os.RemoveAll(filepath.Join(abs, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	join := func(name string) string { return filepath.Join(abs, name) }
	return &Result{Dir: abs, Config: join(ConfigFile), Ledger: join(LedgerFile), Key: join(KeyFile),
		PublicKey: join(PublicKeyFile), Slack: join(SlackFile), Bundle: join(BundleDir), Checkpoints: join(CheckpointsDir)}, nil
}

// writeKeys makes the ledger's Ed25519 key pair, as `registrywatch keygen`
// does, and returns the public key.
func writeKeys(res *Result) (crypto.PublicKey, error) {
	priv, pubPEM, _, err := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(res.Key, priv, 0o600); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(res.PublicKey, pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write public key: %w", err)
	}
	return ledger.ParsePublicKeyPEM(pubPEM)
}

// writeConfig writes the demo's config with the fakes' addresses and loads
// it back as the daemon would.
func writeConfig(w *world, path string) (*config.Config, error) {
	b, err := w.config()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	return config.Load(path, noEnv)
}

// writeSlack writes every message the fake Slack received, one JSON object
// a line.
func writeSlack(path string, w *world) error {
	var b []byte
	for _, m := range w.slack.Messages() {
		line, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode slack message: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	return os.WriteFile(path, b, 0o644)
}

// readCheckpoints reads the checkpoints the daemon published.
func readCheckpoints(dir string) ([][]byte, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// exportBundle exports the period [from, to), verifying the ledger against
// pub first.
func exportBundle(ctx context.Context, res *Result, pub crypto.PublicKey, from, to time.Time, clk clock.Clock, tool string) (*export.Summary, error) {
	priv, err := os.ReadFile(res.Key)
	if err != nil {
		return nil, err
	}
	signer, err := ledger.ParseSigner(priv, nil)
	if err != nil {
		return nil, err
	}
	sum, err := export.Run(ctx, export.Options{
		Ledger: res.Ledger, Out: res.Bundle, Signer: signer, Keys: []crypto.PublicKey{pub}, From: from, To: to,
		Tool: tool, Clock: clk,
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return sum, nil
}
