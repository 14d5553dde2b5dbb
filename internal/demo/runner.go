package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// settleTimeout bounds, in real time, each wait for the daemon to finish
// what it does at one instant of the story: reaching it means the daemon
// hangs, not that it is slow.
const settleTimeout = 2 * time.Minute

// printer writes the story as it happens; Slack's messages arrive on the
// fake's goroutines, hence the lock.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

// stamp is the time prefix of every line of the story.
func stamp(t time.Time) string { return "[" + t.UTC().Format("Jan 02 15:04") + "]" }

// step prints what a person or pipeline does in a source.
func (p *printer) step(at time.Time, source, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s: %s\n", stamp(at), source, what)
}

// slack prints a message as a reader of the channel sees it.
func (p *printer) slack(m slackfake.Message) {
	lines := strings.Split(slackfake.Format(m), "\n")
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s   slack %s\n", stamp(m.ReceivedAt), lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(p.w, "%s     %s\n", strings.Repeat(" ", len(stamp(m.ReceivedAt))), strings.TrimSpace(l))
	}
}

// printf writes a line of narration.
func (p *printer) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, a...)
}

// quiet prints a finding that alerts nobody (an approved promotion): the
// alerting ones are shown by the Slack messages they cause.
func (p *printer) quiet(f Finding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s   ledger %s %s@%s (%s): %s; no alert\n", stamp(f.ObservedAt), f.Kind, f.Model, f.Version, f.Source, f.Describe())
}

// running is the daemon running in-process on the story's clock.
type running struct {
	ctx    context.Context // the demo's: when it ends, so does the daemon
	d      *daemon.Daemon
	clk    *clock.Fake
	cancel context.CancelFunc
	done   chan error
	// settled, when set, is called each time the daemon has done what was
	// due at an instant.
	settled func() error
}

// startDaemon runs daemon.Run on cfg and returns once it runs.
func startDaemon(ctx context.Context, cfg *config.Config, opts daemon.Options, clk *clock.Fake) (*running, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the daemon's HTTP endpoints: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	started := make(chan *daemon.Daemon, 1)
	r := &running{ctx: ctx, clk: clk, cancel: cancel, done: make(chan error, 1)}
	opts.Clock, opts.HTTPListener = clk, lis
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
		if r.settled != nil {
			return r.settled()
		}
		return nil
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	case err := <-r.done:
		r.done <- err // for stop
		if err == nil {
			err = errors.New("it returned no error")
		}
		return fmt.Errorf("the daemon stopped early, at %s: %w", stamp(r.clk.Now()), err)
	case <-time.After(settleTimeout):
		return fmt.Errorf("the daemon did not settle at %s", stamp(r.clk.Now()))
	}
}

// advanceTo moves the clock to t through every deadline on the way,
// letting the daemon finish its work at each, as the real clock would.
func (r *running) advanceTo(t time.Time) error {
	for {
		if err := r.settle(); err != nil {
			return err
		}
		next, ok := r.clk.NextDeadline()
		if !ok || next.After(t) {
			r.clk.Set(t)
			return r.settle()
		}
		r.clk.Set(next)
	}
}

// stop shuts the daemon down gracefully and returns Run's result.
func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(settleTimeout):
		return errors.New("the daemon did not stop")
	}
}

// quietFindings returns a function that prints the findings appended to
// the ledger since it last ran that alert nobody.
func quietFindings(ctx context.Context, l *ledger.Ledger, p *printer) func() error {
	var next int64
	return func() error {
		return l.Find(ctx, ledger.Query{FromSeq: next}, func(r ledger.Record) error {
			next = r.Seq + 1
			if ledger.IsFinding(r.Kind) && !alerts.ShouldAlert(r.Payload) {
				p.quiet(newFinding(r))
			}
			return nil
		})
	}
}

// play runs steps in order: the clock moves to each step's time (the daemon
// doing whatever falls due on the way), then the step is told and done.
func play(r *running, w *world, p *printer, steps []step) error {
	for _, s := range steps {
		if err := r.advanceTo(s.at); err != nil {
			return err
		}
		p.step(s.at, s.source, s.what)
		if err := s.do(w); err != nil {
			return fmt.Errorf("%s %s: %s: %w", stamp(s.at), s.source, s.what, err)
		}
	}
	return nil
}

// clockHandler stamps log records with the story's time instead of the
// wall clock's, so the daemon's logs line up with the story.
type clockHandler struct {
	slog.Handler
	clk clock.Clock
}

// Handle stamps r with the clock's time.
func (h clockHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Time = h.clk.Now()
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the stamping.
func (h clockHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return clockHandler{h.Handler.WithAttrs(attrs), h.clk}
}

// WithGroup keeps the stamping.
func (h clockHandler) WithGroup(name string) slog.Handler {
	return clockHandler{h.Handler.WithGroup(name), h.clk}
}
