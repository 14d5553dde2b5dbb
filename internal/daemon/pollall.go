package daemon

import (
	"context"
	"fmt"
	"sync"

	"github.com/registrywatch/registrywatch/internal/config"
)

// PollConcurrency bounds the sources PollAll polls at once.
const PollConcurrency = 4

// PollReport is what PollAll did.
type PollReport struct {
	// Sources holds one summary per configured source, in config order; the
	// summary of a failed poll has Err set.
	Sources []Summary
	// Sink reports whether an alert sink is configured.
	Sink bool
	// Delivered and Failed count the alerts recorded as alert.delivered and
	// alert.failed during the delivery; Pending is what remains in the
	// outbox.
	Delivered, Failed, Pending int
}

// FailedSources returns the number of sources whose poll failed.
func (r *PollReport) FailedSources() int {
	n := 0
	for _, s := range r.Sources {
		if s.Err != nil {
			n++
		}
	}
	return n
}

// PollAll polls every source once (PollConcurrency at a time), then delivers
// the outbox within alerts.poll_deadline on the Clock. Like Run, it opens the
// ledger for writing, refuses a source whose stored state does not match its
// latest snapshot and records config.applied; a successful poll closes the
// source's open coverage gap, but PollAll opens none (it runs on no
// schedule, and records no daemon_down gap). A failed source appends no
// change, snapshot or finding entry and is reported in its Summary. The
// error is a *StartError when the ledger or a source cannot be set up.
func PollAll(ctx context.Context, cfg *config.Config, opts Options) (*PollReport, error) {
	opts.defaults()
	d := newDaemon(cfg, opts)
	d.work = ctx
	var err error
	if d.led, err = openLedger(ctx, cfg, opts); err != nil {
		return nil, err
	}
	defer d.led.Close()
	if d.watchers, err = d.newWatchers(ctx, opts, false); err != nil {
		return nil, err
	}
	if err := d.newSink(opts); err != nil {
		return nil, err
	}
	rep := &PollReport{Sources: make([]Summary, len(d.watchers)), Sink: d.sink != nil}
	var wg sync.WaitGroup
	sem := make(chan struct{}, PollConcurrency)
	for i, w := range d.watchers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Sources[i], _ = w.poll(ctx, false)
		})
	}
	wg.Wait()
	if d.disp != nil {
		rep.Pending, err = d.disp.Drain(ctx, cfg.Alerts.PollDeadline.D())
		if err != nil {
			return rep, fmt.Errorf("deliver alerts: %w", err)
		}
	} else {
		items, err := d.led.Outbox(ctx)
		if err != nil {
			return rep, err
		}
		rep.Pending = len(items)
	}
	rep.Delivered, rep.Failed = int(d.delivered.Load()), int(d.failedAlerts.Load())
	return rep, nil
}
