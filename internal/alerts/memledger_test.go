package alerts_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// memLedger is an in-memory alerts.Outbox: entries, finding_ids and outbox
// rows, with the ledger's Append semantics the dispatcher relies on.
type memLedger struct {
	mu         sync.Mutex
	recs       []ledger.Record
	outbox     []string // finding_ids, in seq order
	failAppend int      // fail this many Append calls
	failRead   bool     // fail Find and Record
	appends    int
}

var _ alerts.Outbox = (*memLedger)(nil)

var (
	errAppend = errors.New("disk I/O error")
	errRead   = errors.New("database is locked")
)

func (m *memLedger) Append(_ context.Context, b ledger.Batch) (ledger.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends++
	if m.failAppend > 0 {
		m.failAppend--
		return ledger.Result{}, errAppend
	}
	var res ledger.Result
	for _, e := range b.Entries {
		seq := int64(len(m.recs))
		p := make(map[string]any, len(e.Payload)+1)
		for k, v := range e.Payload {
			if r, ok := v.(ledger.Ref); ok {
				v = r.SeqValue()
			}
			p[k] = v
		}
		e.Payload = p
		if ledger.IsFinding(e.Kind) {
			id := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%s|%d", e.Source, e.ModelID, e.Kind, e.Version, seq))
			p["finding_id"] = hex.EncodeToString(id[:])
			if e.Alert {
				m.outbox = append(m.outbox, p["finding_id"].(string))
			}
		}
		leaf := fmt.Appendf(nil, `{"kind":%q,"seq":%d}`, e.Kind, seq)
		m.recs = append(m.recs, ledger.Record{Seq: seq, Leaf: leaf, Entry: e})
		res.Seqs = append(res.Seqs, seq)
		res.Dropped = append(res.Dropped, false)
	}
	for _, id := range b.OutboxDone {
		m.outbox = slices.DeleteFunc(m.outbox, func(x string) bool { return x == id })
	}
	res.Size = int64(len(m.recs))
	return res, nil
}

func (m *memLedger) Outbox(context.Context) ([]ledger.OutboxItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var items []ledger.OutboxItem
	for _, id := range m.outbox {
		for _, r := range m.recs {
			if alerts.PayloadString(r.Payload, "finding_id") == id {
				items = append(items, ledger.OutboxItem{
					FindingID: id,
					Seq:       r.Seq,
					LeafHash:  sha256.Sum256(append([]byte{0}, r.Leaf...)),
					Record:    r,
				})
			}
		}
	}
	slices.SortFunc(items, func(a, b ledger.OutboxItem) int { return int(a.Seq - b.Seq) })
	return items, nil
}

func (m *memLedger) Find(ctx context.Context, q ledger.Query, fn func(ledger.Record) error) error {
	m.mu.Lock()
	if m.failRead {
		m.mu.Unlock()
		return errRead
	}
	recs := slices.Clone(m.recs)
	m.mu.Unlock()
	if q.Desc {
		slices.Reverse(recs)
	}
	n := 0
	for _, r := range recs {
		switch {
		case q.Kind != "" && r.Kind != q.Kind,
			len(q.Kinds) > 0 && !slices.Contains(q.Kinds, r.Kind),
			q.Source != "" && r.Source != q.Source,
			q.Model != "" && r.Model != q.Model,
			q.ModelID != "" && r.ModelID != q.ModelID,
			q.Version != "" && r.Version != q.Version,
			r.Seq < q.FromSeq,
			q.ToSeq > 0 && r.Seq >= q.ToSeq:
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
		if n++; q.Limit > 0 && n >= q.Limit {
			break
		}
	}
	return ctx.Err()
}

func (m *memLedger) Record(_ context.Context, seq int64) (ledger.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRead {
		return ledger.Record{}, errRead
	}
	if seq < 0 || seq >= int64(len(m.recs)) {
		return ledger.Record{}, fmt.Errorf("no entry %d", seq)
	}
	return m.recs[seq], nil
}

// add appends one entry and returns its seq and finding_id.
func (m *memLedger) add(e ledger.Entry) (int64, string) {
	res, err := m.Append(context.Background(), ledger.Batch{Entries: []ledger.Entry{e}})
	if err != nil {
		panic(err)
	}
	r, _ := m.Record(context.Background(), res.Seqs[0])
	return r.Seq, alerts.PayloadString(r.Payload, "finding_id")
}

// kinds returns the entries of kind, in seq order.
func (m *memLedger) kinds(kind string) []ledger.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ledger.Record
	for _, r := range m.recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func (m *memLedger) pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outbox)
}

var t0 = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

// promotion returns an alerting promotion finding of model@version.
func promotion(model, version, verdict string, extra map[string]any) ledger.Entry {
	p := map[string]any{
		"triggering_seq": int64(0), "verdict": verdict, "reason": "", "order": "", "supersedes": "",
		"promoter": "alice", "approver": "", "approved_at": map[string]any{"from": "", "to": ""},
		"evidence": []any{}, "change_type": "standard", "serving_before": "2", "serving_after": version,
		"registry_url": "http://mlflow:5000/#/models/" + model + "/versions/" + version,
	}
	if verdict == "missing" {
		p["reason"] = "no_evidence"
	}
	for k, v := range extra {
		p[k] = v
	}
	if _, ok := p["severity"]; !ok {
		p["severity"] = map[string]string{"missing": "danger", "self_approved": "danger", "late": "warning", "approved": ""}[verdict]
	}
	return finding(ledger.KindPromotion, model, version, p)
}

func finding(kind, model, version string, p map[string]any) ledger.Entry {
	return ledger.Entry{
		Kind: kind, Source: "mlflow-prod", SourceType: "mlflow", Model: model,
		ModelID: model + "@2025-01-01T00:00:00.000Z", Version: version, Actor: "registrywatch",
		ObservedAt: t0, OccurredFrom: t0.Add(-time.Minute), OccurredTo: t0, Payload: p,
		Alert: alerts.ShouldAlert(p),
	}
}
