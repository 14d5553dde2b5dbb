package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/alerts/slack"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// PassphraseEnv names the environment variable holding the passphrase of an
// encrypted key file (else ledger.passphrase_file is read).
const PassphraseEnv = "REGISTRYWATCH_PASSPHRASE"

// DefaultShutdownTimeout bounds a graceful shutdown: the polls in flight
// finish and pending alerts are delivered within it, on the Clock.
const DefaultShutdownTimeout = 10 * time.Second

// signNoticeInterval is how often at most the sink is told that checkpoints
// cannot be signed.
const signNoticeInterval = time.Hour

// Options configures Run and PollAll. Every field is optional.
type Options struct {
	// Clock drives schedules, timeouts and every recorded time; default
	// clock.Real. The demo and tests run the daemon on a clock.Fake.
	Clock clock.Clock
	// Logger receives the daemon's logs; default slog.Default().
	Logger *slog.Logger
	// Getenv reads $REGISTRYWATCH_PASSPHRASE; default os.Getenv.
	Getenv func(string) string
	// Signer signs checkpoints instead of the key ledger.signer names.
	Signer signature.Signer
	// SourceFactory builds the source clients; default NewSource.
	SourceFactory SourceFactory
	// Sink receives alerts and notices instead of the Slack sink of
	// alerts.slack (which is used when configured).
	Sink alerts.Sink
	// HTTPListener serves /healthz, /readyz and /metrics instead of a
	// listener on http.listen.
	HTTPListener net.Listener
	// ShutdownTimeout bounds the graceful shutdown (default
	// DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// OnStart, when set, is called once the daemon runs: HTTP served, every
	// loop started. Tests and the demo drive the daemon through it.
	OnStart func(*Daemon)
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.SourceFactory == nil {
		o.SourceFactory = NewSource
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
}

// StartError is returned by Run and PollAll when registrywatch cannot start:
// the ledger directory is not writable, the ledger is locked by another
// writer, the signing key cannot be loaded, a source's stored state does not
// match its latest snapshot, a source cannot be built, or the HTTP address
// cannot be bound. The command line exits 2 on it.
type StartError struct{ Err error }

// Error returns the cause's text.
func (e *StartError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *StartError) Unwrap() error { return e.Err }

func startErr(err error) error { return &StartError{Err: err} }

// Daemon is a running registrywatch daemon, handed to Options.OnStart.
type Daemon struct {
	cfg      *config.Config
	clk      clock.Clock
	log      *slog.Logger
	led      *ledger.Ledger
	sink     alerts.Sink
	disp     *alerts.Dispatcher
	watchers []*watcher
	act      *activity
	m        *metrics
	lis      net.Listener
	shutdown time.Duration

	// work is the context of the daemon's work (polls, appends, delivery):
	// it is cancelled only when the shutdown timeout expires, so the batch
	// in flight at SIGTERM finishes.
	work       context.Context
	cancelWork context.CancelFunc

	mu            sync.Mutex
	signErr       error     // the last checkpoint signing failure, nil once signing works
	signSource    string    // the source whose poll failed to sign ("" for the daemon's own entries)
	signNoticeAt  time.Time // when the sink was last told about signing
	ledgerErr     error     // the last failed commit, nil after a success
	lastPublished int64     // tree size of the last published checkpoint (-1: none)
	publishedAt   time.Time

	delivered, failedAlerts atomic.Int64 // alert outcomes recorded by this process
}

// Run runs the daemon until ctx is done (SIGTERM), then shuts down
// gracefully: polls in flight finish, pending alerts are delivered, all
// within Options.ShutdownTimeout on the Clock, and the ledger is closed. It
// returns nil after a graceful shutdown and a *StartError when it cannot
// start.
//
// At start it opens the ledger for writing, checks every source's stored
// state against its latest snapshot (refusing to run on a mismatch), records
// config.applied when the config changed, records a daemon_down coverage gap
// when two ticks of a source passed while it was down, and serves /healthz,
// /readyz and /metrics. Then each source is polled on its schedule by its own
// goroutine (never two polls of one source at once), with a per-poll timeout
// and the retry policy of RetryBase and RetryMax; rollback deadlines and
// coverage.late fire on time while a source fails; the alert dispatcher
// delivers the outbox to the sink after each commit; and the signed
// checkpoint is published on ledger.publish_schedule.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	opts.defaults()
	d, err := start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return d.run(ctx, opts.OnStart)
}

// start opens and checks everything Run needs; on error it releases what it
// took.
func start(ctx context.Context, cfg *config.Config, opts Options) (*Daemon, error) {
	d := newDaemon(cfg, opts)
	d.work, d.cancelWork = context.WithCancel(context.WithoutCancel(ctx))
	if err := d.setup(ctx, opts); err != nil {
		d.cancelWork()
		if d.led != nil {
			d.led.Close()
		}
		if d.lis != nil {
			d.lis.Close()
		}
		return nil, err
	}
	return d, nil
}

func (d *Daemon) setup(ctx context.Context, opts Options) error {
	var err error
	d.lis = opts.HTTPListener
	if d.lis == nil {
		if d.lis, err = net.Listen("tcp", d.cfg.HTTP.Listen); err != nil {
			return startErr(fmt.Errorf("http.listen %s: %w", d.cfg.HTTP.Listen, err))
		}
	}
	if d.led, err = openLedger(ctx, d.cfg, opts); err != nil {
		return err
	}
	if d.watchers, err = d.newWatchers(ctx, opts, true); err != nil {
		return err
	}
	if err := d.newSink(opts); err != nil {
		return err
	}
	if err := d.initPublisher(ctx); err != nil {
		return startErr(err)
	}
	return nil
}

func newDaemon(cfg *config.Config, opts Options) *Daemon {
	d := &Daemon{cfg: cfg, clk: opts.Clock, log: opts.Logger, shutdown: opts.ShutdownTimeout, lastPublished: -1}
	d.act = newActivity(d.clk)
	d.m = newMetrics(d.gauges())
	return d
}

// openLedger checks the ledger directory, loads the signer, opens the
// ledger for writing, checks every source's stored state and records the
// config.
func openLedger(ctx context.Context, cfg *config.Config, opts Options) (*ledger.Ledger, error) {
	path := cfg.Ledger.Path
	if err := checkWritable(path); err != nil {
		return nil, startErr(err)
	}
	signer := opts.Signer
	if signer == nil {
		var err error
		if signer, err = loadSigner(ctx, cfg.Ledger, opts.Getenv); err != nil {
			return nil, startErr(err)
		}
	}
	led, err := ledger.Open(path, ledger.Options{Signer: signer, Origin: cfg.Ledger.Origin, Logger: opts.Logger, Now: opts.Clock.Now})
	if err != nil {
		return nil, startErr(err)
	}
	for _, s := range cfg.Sources {
		if err := CheckState(ctx, led, s.Name); err != nil {
			led.Close()
			return nil, startErr(fmt.Errorf("refusing to start: %w", err))
		}
	}
	if _, err := RecordConfig(ctx, led, cfg, opts.Clock.Now()); err != nil {
		led.Close()
		return nil, startErr(err)
	}
	return led, nil
}

// checkWritable fails with a clear message when the ledger's directory, or
// the ledger file itself, cannot be written.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("ledger directory %s does not exist (ledger.path %s)", dir, path)
	case err != nil:
		return fmt.Errorf("ledger directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("ledger directory %s is not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".registrywatch-write-probe-*")
	if err != nil {
		return fmt.Errorf("ledger directory %s is not writable: registrywatch creates the ledger, its lock and SQLite's WAL files there: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ledger %s is not writable: %w", path, err)
	}
	return nil
}

// loadSigner loads ledger.signer; an encrypted key file's passphrase comes
// from $REGISTRYWATCH_PASSPHRASE, else ledger.passphrase_file.
func loadSigner(ctx context.Context, led config.Ledger, getenv func(string) string) (signature.Signer, error) {
	passphrase := func() ([]byte, error) {
		if p := getenv(PassphraseEnv); p != "" {
			return []byte(p), nil
		}
		if led.PassphraseFile == "" {
			return nil, fmt.Errorf("the signing key is encrypted: set $%s or ledger.passphrase_file", PassphraseEnv)
		}
		b, err := os.ReadFile(led.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("ledger.passphrase_file: %w", err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	s, err := ledger.LoadSigner(ctx, led.Signer, passphrase)
	if err != nil {
		return nil, fmt.Errorf("ledger.signer: %w", err)
	}
	return s, nil
}

// newWatchers builds every source and its poller, folds each source's
// history and sets up its coverage gap state (detecting the daemon's
// downtime when detectDown is set).
func (d *Daemon) newWatchers(ctx context.Context, opts Options, detectDown bool) ([]*watcher, error) {
	now := d.clk.Now()
	var ws []*watcher
	for _, sc := range d.cfg.Sources {
		sched := sc.Schedule
		if sched.Schedule == nil {
			var err error
			if sched, err = config.ParseSchedule(sc.ScheduleSpec); err != nil {
				return nil, startErr(fmt.Errorf("source %s: schedule: %w", sc.Name, err))
			}
		}
		log := d.log.With("source", sc.Name)
		src, err := opts.SourceFactory(ctx, sc, SourceOptions{Clock: d.clk, Logger: d.log})
		if err != nil {
			return nil, startErr(err)
		}
		w := &watcher{d: d, cfg: sc, name: sc.Name, typ: src.Type(), src: &trackedSource{Source: src}, sched: sched, log: log}
		w.p = NewPoller(w.src, d.led, PollerOptions{Clock: d.clk, Logger: d.log, Policy: PolicyConfig(d.cfg.Policy, sc), Models: sc.Models})
		w.p.OnCommit = func(n int) {
			if n > 0 {
				d.queued()
			}
		}
		if err := w.p.Init(ctx); err != nil {
			return nil, startErr(fmt.Errorf("refusing to start: %w", err))
		}
		if err := w.startGaps(ctx, now, detectDown); err != nil {
			return nil, startErr(err)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// newSink sets up alert delivery: Options.Sink, else Slack when configured,
// else none (alerts stay in the outbox).
func (d *Daemon) newSink(opts Options) error {
	d.sink = opts.Sink
	if d.sink == nil && d.cfg.Alerts.Slack.Enabled() {
		s, err := slack.New(d.cfg.Alerts.Slack, slack.Options{Logger: d.log})
		if err != nil {
			return startErr(fmt.Errorf("alerts.slack: %w", err))
		}
		d.sink = s
	}
	if d.sink == nil {
		d.log.Warn("alerts.slack is not configured: alerts stay in the ledger's outbox until a sink is configured")
		return nil
	}
	d.disp = alerts.New(trackedOutbox{Ledger: d.led, act: d.act}, d.sink, alerts.Options{
		Clock: d.clk, Logger: d.log,
		Hooks: alerts.Hooks{
			OnDelivered: func(alerts.Alert, alerts.Delivery) {
				d.m.delivered.Inc()
				d.delivered.Add(1)
			},
			OnFailed: func(alerts.Alert, error) {
				d.m.failed.Inc()
				d.failedAlerts.Add(1)
			},
			OnRetry: func(alerts.Alert, error, time.Duration) {
				d.m.retries.Inc()
				d.act.backingOff()
			},
		},
	})
	return nil
}

// trackedOutbox tells the activity tracker when the dispatcher found the
// outbox empty (or could not read it and backs off).
type trackedOutbox struct {
	*ledger.Ledger
	act *activity
}

// Outbox reads the outbox.
func (o trackedOutbox) Outbox(ctx context.Context) ([]ledger.OutboxItem, error) {
	gen := o.act.generation()
	items, err := o.Ledger.Outbox(ctx)
	switch {
	case err != nil:
		o.act.backingOff()
	case len(items) == 0:
		o.act.drained(gen)
	}
	return items, err
}

// queued records a commit that queued alerts and wakes the dispatcher.
func (d *Daemon) queued() {
	if d.disp == nil {
		return
	}
	d.act.queued()
	d.disp.Kick()
}

// run runs the started daemon until ctx is done, then shuts it down.
func (d *Daemon) run(ctx context.Context, onStart func(*Daemon)) error {
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(d.lis) }()

	var wg sync.WaitGroup
	for _, w := range d.watchers {
		d.act.add(w.loopName())
		wg.Go(func() { w.run(loopCtx) })
	}
	if d.publishes() {
		d.act.add(publishLoop)
		wg.Go(func() { d.publishLoop(loopCtx) })
	}
	dispDone := make(chan struct{})
	if d.disp != nil {
		if items, err := d.led.Outbox(ctx); err == nil && len(items) > 0 {
			d.act.queued()
		}
		go func() {
			defer close(dispDone)
			d.disp.Run(loopCtx)
		}()
	} else {
		close(dispDone)
	}
	d.log.Info("registrywatch running", "ledger", d.led.Path(), "origin", d.led.Origin(),
		"sources", len(d.watchers), "http", d.lis.Addr().String())
	if onStart != nil {
		onStart(d)
	}

	var runErr error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down: finishing the polls in flight and delivering alerts", "timeout", d.shutdown)
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
		d.log.Error("http server failed, shutting down", "error", err)
	}
	return errors.Join(runErr, d.stop(stopLoops, &wg, dispDone, srv))
}

// stop shuts down in reverse order of start, within the shutdown timeout.
func (d *Daemon) stop(stopLoops context.CancelFunc, loops *sync.WaitGroup, dispDone <-chan struct{}, srv *http.Server) error {
	begin := d.clk.Now()
	grace, cancelGrace := withClockTimeout(context.Background(), d.clk, d.shutdown, errShutdownTimeout)
	defer cancelGrace()
	go func() {
		<-grace.Done()
		d.cancelWork() // the bound expired (or shutdown is over): abandon what is in flight
	}()
	stopLoops()
	loops.Wait()
	<-dispDone
	if d.disp != nil {
		remaining := d.shutdown - d.clk.Now().Sub(begin)
		pending, err := d.disp.Drain(grace, remaining)
		switch {
		case err != nil:
			d.log.Warn("alerts left undelivered at shutdown", "pending", pending, "error", err)
		case pending > 0:
			d.log.Warn("alerts left undelivered at shutdown; they are sent after the next start", "pending", pending)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	err := d.led.Close()
	d.cancelWork()
	if err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	d.log.Info("registrywatch stopped")
	return nil
}

var errShutdownTimeout = errors.New("shutdown timeout")

// withClockTimeout returns a context cancelled with cause after d on clk.
// Its cancel function stops the timer before it returns, so no timer of a
// finished operation stays pending on the clock.
func withClockTimeout(parent context.Context, clk clock.Clock, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	t := clk.NewTimer(d)
	go func() {
		select {
		case <-t.C():
			cancel(cause)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// append commits a batch of the daemon's own entries and records the
// outcome in the ledger's health.
func (d *Daemon) append(ctx context.Context, b ledger.Batch) (ledger.Result, error) {
	res, err := d.led.Append(ctx, b)
	if err != nil {
		d.appendFailed("", err)
		return res, err
	}
	d.mu.Lock()
	d.ledgerErr = nil
	if res.Checkpoint != nil {
		d.signErr = nil
	}
	d.mu.Unlock()
	return res, nil
}

// appendOK records a successful poll of source: the ledger takes writes,
// and signing works again if that source's poll was the one that failed.
func (d *Daemon) appendOK(source string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ledgerErr = nil
	if d.signErr != nil && d.signSource == source {
		d.signErr = nil
	}
}

// appendFailed records a failed commit; a signing failure is also told to
// the sink, at most once an hour.
func (d *Daemon) appendFailed(source string, err error) {
	if !errors.Is(err, ledger.ErrSign) {
		d.m.commitFailures.WithLabelValues("other").Inc()
		d.mu.Lock()
		d.ledgerErr = err
		d.mu.Unlock()
		return
	}
	d.m.commitFailures.WithLabelValues("sign").Inc()
	now := d.clk.Now()
	d.mu.Lock()
	d.signErr, d.signSource = err, source
	notify := d.sink != nil && (d.signNoticeAt.IsZero() || now.Sub(d.signNoticeAt) >= signNoticeInterval)
	if notify {
		d.signNoticeAt = now
	}
	d.mu.Unlock()
	d.log.Error("cannot sign ledger checkpoints: nothing is recorded until the signer works again", "error", err)
	if notify {
		text := fmt.Sprintf("registrywatch cannot sign ledger checkpoints: polls fail and no change is recorded until the signer works again (ledger %s)\n%v", d.led.Path(), err)
		if nerr := d.sink.Notify(d.work, text); nerr != nil {
			d.log.Error("tell the alert sink about the signing failure", "error", nerr)
		}
	}
}

// Addr returns the address /healthz, /readyz and /metrics are served on.
func (d *Daemon) Addr() net.Addr { return d.lis.Addr() }

// Idle returns a channel closed once the daemon has nothing to do before
// its clock moves: every loop waits on a clock deadline still ahead and no
// alert delivery is in progress. With a clock.Fake, wait for Idle before each
// Advance or Set so the daemon sees every instant it scheduled.
func (d *Daemon) Idle() <-chan struct{} { return d.act.idle() }
