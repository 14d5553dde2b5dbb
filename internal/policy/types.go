// Package policy judges what a poll changed against the approval and
// rollback rules of DESIGN.md section 4. It is pure: history (a State folded
// from the source's committed entries), the poll's changes and the time go
// in; production.changed entries and findings come out.
package policy

import (
	"strings"
	"time"
)

// Finding and operation kinds appended by the policy.
const (
	KindProductionChanged = "production.changed"
	KindPromotion         = "promotion"
	KindRollback          = "rollback"
	KindRestored          = "restored"
	KindRollbackOverdue   = "rollback.overdue"
	KindCoverageLate      = "coverage.late"
)

// Verdicts of a judged finding.
const (
	VerdictApproved     = "approved"
	VerdictMissing      = "missing"
	VerdictSelfApproved = "self_approved"
	VerdictRejected     = "rejected"
	VerdictLate         = "late"
	VerdictNA           = "n/a"
)

// Reasons of a missing verdict.
const (
	ReasonNoEvidence      = "no_evidence"
	ReasonNotAllowed      = "not_allowed"
	ReasonTooOld          = "too_old"
	ReasonCreatedApproved = "created_approved"
	ReasonAfter           = "after"
)

// Severities, from the verdict and the rollback result (DESIGN.md section 4).
const (
	SeverityNone    = ""
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityDanger  = "danger"
)

// Actor is the actor of every entry the policy appends.
const Actor = "registrywatch"

// Unknown is an identity the registry could not give.
const Unknown = "unknown"

// Config is the policy of one source, built by the daemon from the config file.
type Config struct {
	Source     string
	SourceType string

	// Production pointers: a version is in production if any holds it.
	Stages          []string
	Aliases         []string
	ApprovalStatus  string
	LifecycleStages []string

	// Approval evidence: at most one of Tag, Alias, TransitionRequests; with
	// SageMaker, a move of the approval status to Approved.
	ApprovalTag        string
	ApprovalTimeTag    string
	ApprovalAlias      string
	TransitionRequests bool
	// StatusApproval makes an approval.changed to "Approved" the evidence
	// (SageMaker).
	StatusApproval bool

	Approvers []string
	MaxAge    time.Duration

	EmergencyTag       string
	RetireTag          string
	RollbackRequestTag string

	// Objective returns the rollback objective of a model (the global
	// objective, overridden per source and per model glob); nil means
	// DefaultObjective for every model.
	Objective func(model string) time.Duration
}

// DefaultObjective is the rollback objective when none is configured.
const DefaultObjective = 30 * time.Minute

// ObjectiveFor returns the rollback objective of a model.
func (c *Config) ObjectiveFor(model string) time.Duration {
	if c.Objective == nil {
		return DefaultObjective
	}
	return c.Objective(model)
}

// Fixed returns an objective function giving d for every model.
func Fixed(d time.Duration) func(string) time.Duration {
	return func(string) time.Duration { return d }
}

// Ref refers from an output's payload to another entry: a change of the
// poll (by index into the poll's changes), another output of the same
// Evaluate call (by index), or a committed entry (by seq).
type Ref struct {
	// Change is the index of a change of the poll, or -1.
	Change int
	// Output is the index of an output of the same call, or -1.
	Output int
	// Seq is a committed entry's seq when Change and Output are -1.
	Seq int64
}

func changeRef(i int) Ref { return Ref{Change: i, Output: -1} }
func outputRef(i int) Ref { return Ref{Change: -1, Output: i} }
func seqRef(s int64) Ref  { return Ref{Change: -1, Output: -1, Seq: s} }

// Output is one entry the policy asks the caller to append after the poll's
// changes, in order. Payload values may be Ref.
type Output struct {
	Kind    string
	Model   string
	ModelID string
	Version string
	From    time.Time
	To      time.Time
	Payload map[string]any
	// Alert asks for an outbox row (the finding alerts someone).
	Alert bool
}

// Record is one committed ledger entry of the source, as the policy folds it.
type Record struct {
	Seq        int64
	Kind       string
	Model      string
	ModelID    string
	Version    string
	Actor      string
	ObservedAt time.Time
	From       time.Time
	To         time.Time
	Payload    map[string]any
}

// Interval is a time known to lie within [From, To].
type Interval struct{ From, To time.Time }

func (i Interval) payload() map[string]any {
	return map[string]any{"from": formatTime(i.From), "to": formatTimeCeil(i.To)}
}

// sameIdentity compares identities case-insensitively and exactly; unknown
// or empty identities are never equal to anything.
func sameIdentity(a, b string) bool {
	if !known(a) || !known(b) {
		return false
	}
	return strings.EqualFold(a, b)
}

func known(id string) bool { return id != "" && !strings.EqualFold(id, Unknown) }

const timeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Truncate(time.Millisecond).Format(timeLayout) }

func formatTimeCeil(t time.Time) string {
	t = t.UTC()
	if tr := t.Truncate(time.Millisecond); !tr.Equal(t) {
		t = tr.Add(time.Millisecond)
	}
	return t.Format(timeLayout)
}
