package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's Prometheus metrics, on a private registry (no
// global state, so tests can run several daemons in one process).
type metrics struct {
	reg *prometheus.Registry

	polls          *prometheus.CounterVec
	pollErrors     *prometheus.CounterVec
	pollDuration   *prometheus.HistogramVec
	changes        *prometheus.CounterVec
	findings       *prometheus.CounterVec
	delivered      prometheus.Counter
	failed         prometheus.Counter
	retries        prometheus.Counter
	commitFailures *prometheus.CounterVec
	published      prometheus.Counter
}

// gauges are the values /metrics reads at scrape time.
type gauges struct {
	alertsPending       func() float64
	ledgerEntries       func() float64
	sinceCheckpoint     func() float64
	openGaps            func() float64
	ready               func() float64
	sincePublishedCheck func() float64
}

const namespace = "registrywatch"

func newMetrics(g gauges) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f))
	}
	m.polls = counterVec("polls_total", "Polls of a source, successful or not.", "source")
	m.pollErrors = counterVec("poll_errors_total", "Failed polls of a source, by cause (source_error or ledger_error).", "source", "cause")
	m.pollDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "poll_duration_seconds", Help: "Duration of one poll of a source.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"source"})
	m.reg.MustRegister(m.pollDuration)
	m.changes = counterVec("changes_total", "Change entries recorded, by source and kind.", "source", "kind")
	m.findings = counterVec("findings_total", "production.changed entries and findings recorded, by source and kind.", "source", "kind")
	m.delivered = counter("alerts_delivered_total", "Alerts delivered (alert.delivered recorded).")
	m.failed = counter("alerts_failed_total", "Alerts that failed permanently (alert.failed recorded).")
	m.retries = counter("alert_retries_total", "Alert deliveries that will be retried.")
	m.commitFailures = counterVec("ledger_commit_failures_total", "Ledger batches that failed to commit, by reason (sign or other).", "reason")
	m.published = counter("checkpoints_published_total", "Signed checkpoints published (checkpoint.published recorded).")
	gauge("alerts_pending", "Alerts in the outbox, not delivered yet.", g.alertsPending)
	gauge("ledger_entries", "Entries in the ledger (its tree size).", g.ledgerEntries)
	gauge("seconds_since_last_checkpoint", "Seconds since the last batch, and its signed checkpoint, was committed.", g.sinceCheckpoint)
	gauge("seconds_since_last_published_checkpoint", "Seconds since a checkpoint was last published (-1: never).", g.sincePublishedCheck)
	gauge("coverage_gaps_open", "Sources with an open coverage gap.", g.openGaps)
	gauge("ready", "1 when /readyz reports ready, else 0.", g.ready)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
