package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// probeTimeout bounds the ledger write probe of /readyz.
const probeTimeout = 2 * time.Second

// Handler serves the daemon's HTTP endpoints:
//
//   - GET /healthz: 200 "ok" while the process serves (liveness).
//   - GET /readyz: 200 "ready", or 503 with the reasons, one per line (see
//     Ready).
//   - GET /metrics: Prometheus metrics.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := d.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}))
	return mux
}

// Ready returns nil when the daemon is ready, else an error listing why not,
// one reason per line:
//
//   - a checkpoint could not be signed since the last batch that was (a
//     successful poll of the source that failed, or any batch of the
//     daemon's own, clears it);
//   - the ledger is not writable: the last commit failed and an empty write
//     transaction still fails;
//   - a source has an open coverage gap that reached alerts.coverage_gap.
//
// Reasons never contain secrets.
func (d *Daemon) Ready(ctx context.Context) error {
	var reasons []string
	d.mu.Lock()
	signErr, ledgerErr := d.signErr, d.ledgerErr
	d.mu.Unlock()
	if signErr != nil {
		reasons = append(reasons, "ledger: checkpoints cannot be signed: "+firstLine(signErr))
	}
	if ledgerErr != nil {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		_, err := d.led.Append(pctx, ledger.Batch{})
		cancel()
		if err != nil {
			reasons = append(reasons, "ledger: not writable: "+firstLine(err))
		} else {
			d.mu.Lock()
			if d.ledgerErr == ledgerErr {
				d.ledgerErr = nil
			}
			d.mu.Unlock()
		}
	}
	now := d.clk.Now()
	bound := d.cfg.Alerts.CoverageGap.D()
	for _, w := range d.watchers {
		g := w.gapSnapshot()
		if g.open() && now.Sub(g.From) >= bound {
			reasons = append(reasons, fmt.Sprintf("source %s: no successful poll since %s (coverage gap over %s, cause %s)",
				w.name, ledger.FormatTime(g.From), bound, g.Cause))
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return errors.New(strings.Join(reasons, "\n"))
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// gauges returns the scrape-time values of the metrics.
func (d *Daemon) gauges() gauges {
	ctx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), probeTimeout)
	}
	return gauges{
		alertsPending: func() float64 {
			if d.disp != nil {
				return float64(d.disp.Pending())
			}
			c, cancel := ctx()
			defer cancel()
			items, err := d.led.Outbox(c)
			if err != nil {
				return -1
			}
			return float64(len(items))
		},
		ledgerEntries: func() float64 {
			c, cancel := ctx()
			defer cancel()
			n, err := d.led.Size(c)
			if err != nil {
				return -1
			}
			return float64(n)
		},
		sinceCheckpoint: func() float64 {
			c, cancel := ctx()
			defer cancel()
			var at time.Time
			err := d.led.Find(c, ledger.Query{Desc: true, Limit: 1}, func(r ledger.Record) error {
				at = r.ObservedAt
				return nil
			})
			if err != nil || at.IsZero() {
				return -1
			}
			return d.clk.Now().Sub(at).Seconds()
		},
		sincePublishedCheck: func() float64 {
			d.mu.Lock()
			at := d.publishedAt
			d.mu.Unlock()
			if at.IsZero() {
				return -1
			}
			return d.clk.Now().Sub(at).Seconds()
		},
		openGaps: func() float64 {
			n := 0
			for _, w := range d.watchers {
				if w.gapSnapshot().open() {
					n++
				}
			}
			return float64(n)
		},
		ready: func() float64 {
			c, cancel := ctx()
			defer cancel()
			if d.Ready(c) != nil {
				return 0
			}
			return 1
		},
	}
}
