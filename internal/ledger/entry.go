package ledger

import "time"

// Entry is one ledger entry before Append encodes it into leaf bytes
// (DESIGN.md section 3). Append assigns the seq.
type Entry struct {
	Kind string
	// Source is the configured source name, "" for entries about no source.
	Source string
	// SourceType is mlflow | databricks | sagemaker | wandb | registrywatch.
	SourceType string
	Model      string
	ModelID    string
	Version    string
	// Actor is the registry actor or "unknown" on change entries, and
	// "registrywatch" on everything registrywatch originates.
	Actor      string
	ObservedAt time.Time
	// OccurredFrom and OccurredTo bound when the change happened; encoded
	// truncated (from) and rounded up (to) to the millisecond.
	OccurredFrom time.Time
	OccurredTo   time.Time
	// Payload holds only string, bool, int, int64, []string, []any,
	// map[string]any, []map[string]any and Ref values. Keys are ASCII.
	Payload map[string]any
	// Alert, on a finding, adds an outbox row holding its finding_id in the
	// same transaction.
	Alert bool
}

// Ref is a reference from one entry's payload to another entry: by position
// in the same batch (InBatch) or by seq (Seq). Append resolves it to the
// referenced seq before encoding.
type Ref struct {
	seq     int64
	index   int
	inBatch bool
}

// Seq refers to the committed entry with sequence number n.
func Seq(n int64) Ref { return Ref{seq: n} }

// InBatch refers to the entry at position i of the batch being appended.
func InBatch(i int) Ref { return Ref{index: i, inBatch: true} }

// IsInBatch reports whether r refers by batch position, and returns it.
func (r Ref) IsInBatch() (int, bool) { return r.index, r.inBatch }

// SeqValue returns the seq of a by-seq reference.
func (r Ref) SeqValue() int64 { return r.seq }

// Finding kinds: entries of these kinds get a finding_id (DESIGN.md section 3).
const (
	KindPromotion       = "promotion"
	KindRollback        = "rollback"
	KindRestored        = "restored"
	KindRollbackOverdue = "rollback.overdue"
	KindCoverageLate    = "coverage.late"
)

// IsFinding reports whether entries of kind carry a finding_id.
func IsFinding(kind string) bool {
	switch kind {
	case KindPromotion, KindRollback, KindRestored, KindRollbackOverdue, KindCoverageLate:
		return true
	}
	return false
}

// Batch is everything one Append commits in a single transaction.
type Batch struct {
	Entries []Entry
	// States replaces the state row of each named source (the canonical bytes
	// of its last snapshot).
	States []State
	// Aux upserts auxiliary rows; a nil Value deletes the row.
	Aux []Aux
	// OutboxDone removes these finding_ids from the outbox (their
	// alert.delivered / alert.failed entry is in Entries).
	OutboxDone []string
}

// State is the state row of one source.
type State struct {
	Source string
	Bytes  []byte
}

// Aux is one auxiliary row: cursors, counters and caches, not covered by any
// digest and never producing an entry by itself.
type Aux struct {
	Source string
	Key    string
	Value  []byte
}

// Result reports what Append committed.
type Result struct {
	// Seqs holds the seq of each entry of the batch, in batch order; a finding
	// dropped because its finding_id was already in the ledger gets the seq of
	// the existing finding.
	Seqs []int64
	// Dropped[i] is true when entry i was such a duplicate finding.
	Dropped []bool
	// Size is the tree size after the batch.
	Size int64
	// Checkpoint is the signed checkpoint note written by the batch, nil if the
	// batch added no entries.
	Checkpoint []byte
}

// Record is one committed entry as read back from the ledger.
type Record struct {
	Seq  int64
	Leaf []byte
	Entry
}

// OutboxItem is one undelivered alert: its finding, read at send time.
type OutboxItem struct {
	FindingID string
	Seq       int64
	LeafHash  [32]byte
	Record    Record
}
