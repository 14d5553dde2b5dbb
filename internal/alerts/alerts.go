// Package alerts turns findings into alerts: the severity policy (which
// findings alert, and how loudly), the Sink interface that delivers an alert,
// and the Dispatcher that drains the ledger's outbox to a sink in order,
// retrying what can be retried and recording every outcome in the ledger as
// alert.delivered or alert.failed (DESIGN.md section 6).
package alerts

import (
	"context"
	"errors"
	"time"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// Severities, from the loudest. A finding whose severity is SeverityNone
// alerts nobody.
const (
	SeverityDanger  = "danger"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
	SeverityNone    = ""
)

// Kinds of the entries the dispatcher appends (DESIGN.md section 3).
const (
	KindDelivered = "alert.delivered"
	KindFailed    = "alert.failed"
)

// Severity returns a finding's severity as the policy recorded it in the
// payload ("severity"): the policy owns the rule (DESIGN.md section 4) and
// the ledger keeps its result, so the dispatcher never re-derives it.
func Severity(payload map[string]any) string { return PayloadString(payload, "severity") }

// ShouldAlert reports whether a finding with this payload alerts someone.
func ShouldAlert(payload map[string]any) bool { return Severity(payload) != SeverityNone }

// Alert is one finding to deliver, as the dispatcher reads it from the ledger
// at send time.
type Alert struct {
	// FindingID is the finding's finding_id.
	FindingID string
	// Seq is the finding's ledger seq.
	Seq int64
	// LeafHash is the finding's RFC 6962 leaf hash.
	LeafHash [32]byte
	// Record is the finding as committed: kind, source, model, version,
	// times and payload (numbers as int64).
	Record ledger.Record
	// Severity is the payload's severity.
	Severity string
	// FollowUp is the earlier finding this alert follows up, nil when none.
	FollowUp *FollowUp
}

// Follow-up reasons.
const (
	// FollowUpSupersedes: the finding supersedes an earlier one (late
	// approval, a verdict changed by a later attribution).
	FollowUpSupersedes = "supersedes"
	// FollowUpRollbackCompleted: a rollback or restore completed a vacancy or
	// request that had raised rollback.overdue.
	FollowUpRollbackCompleted = "rollback_completed"
)

// FollowUp names the earlier finding an alert follows up and where that
// finding's alert was posted.
type FollowUp struct {
	// Reason is FollowUpSupersedes or FollowUpRollbackCompleted.
	Reason string
	// Seq, FindingID and Kind identify the original finding: the root of the
	// supersedes chain, or the rollback.overdue finding.
	Seq       int64
	FindingID string
	Kind      string
	// ThreadChannel and ThreadTS are the channel and ts of the original
	// alert as recorded in its alert.delivered entry; both are "" when it was
	// not delivered with a ts (an incoming webhook gives none), and the sink
	// then posts a normal message that names the original finding.
	ThreadChannel string
	ThreadTS      string
}

// Delivery is where a sink delivered an alert; it is recorded in the
// alert.delivered entry.
type Delivery struct {
	// Channel is the channel the message went to ("" when the sink cannot
	// tell, e.g. an incoming webhook without a configured channel).
	Channel string
	// TS identifies the message for threading ("" when the sink has none).
	TS string
}

// Sink delivers alerts and operational notices. Implementations MUST NOT
// retry by themselves (the Dispatcher owns the retry policy), and their
// errors MUST NOT contain secrets: they are logged and recorded in the
// ledger.
type Sink interface {
	// Send delivers one alert. An error that wraps an *Error says whether it
	// is retryable; any other error is treated as retryable.
	Send(ctx context.Context, a Alert) (Delivery, error)
	// Notify posts an operational notice (a published checkpoint, a signing
	// failure). The first line of text is the summary; any further lines are
	// preformatted detail (shown verbatim, e.g. a signed checkpoint note).
	Notify(ctx context.Context, text string) error
}

// Error is a sink error that says whether the dispatcher may retry it.
type Error struct {
	// Retryable is true for transient failures: network errors, 5xx, 429.
	Retryable bool
	// RetryAfter, when positive, is how long the receiver asked to wait
	// (a 429's Retry-After); the dispatcher retries exactly then.
	RetryAfter time.Duration
	// Err is the underlying error, free of secrets.
	Err error
}

// Error returns the underlying error's text.
func (e *Error) Error() string {
	if e.Err == nil {
		return "alert sink error"
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable wraps err as a retryable sink error, to be retried after
// retryAfter when positive.
func Retryable(err error, retryAfter time.Duration) error {
	return &Error{Retryable: true, RetryAfter: retryAfter, Err: err}
}

// Permanent wraps err as a non-retryable sink error: the alert is recorded as
// alert.failed and the queue moves on.
func Permanent(err error) error {
	return &Error{Retryable: false, Err: err}
}

// Classify reports whether err may be retried and after how long the
// receiver asked to wait. Errors that wrap no *Error are retryable.
func Classify(err error) (retryable bool, retryAfter time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable, e.RetryAfter
	}
	return true, 0
}

// PayloadString returns payload[key] when it is a string, else "".
func PayloadString(payload map[string]any, key string) string {
	s, _ := payload[key].(string)
	return s
}

// PayloadInt returns payload[key] as an int64 when it is an integer.
func PayloadInt(payload map[string]any, key string) (int64, bool) {
	return Int(payload[key])
}

// Int returns v as an int64 when it is an integer: a payload number as the
// ledger decodes it (int64), as code builds it (int), or a by-seq Ref.
func Int(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	case ledger.Ref:
		if _, in := n.IsInBatch(); !in {
			return n.SeqValue(), true
		}
	}
	return 0, false
}
