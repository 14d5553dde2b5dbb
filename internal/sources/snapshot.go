package sources

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Snapshot is the complete state of one registry as one poll saw it. Its
// canonical bytes (Canonical, RFC 8785 JSON) are what the ledger stores as the
// source's state. Struct fields are declared in JCS key order.
type Snapshot struct {
	// Models are sorted by Name (bytes).
	Models []Model `json:"models"`
}

// Model is one registered model (MLflow), model package group (SageMaker) or
// registry collection (W&B).
type Model struct {
	// CreatedAt is the registry's creation time (FormatTime), or "".
	CreatedAt string `json:"created_at,omitempty"`
	// Description is nil when the registry gives none.
	Description *string `json:"description,omitempty"`
	// ID is the model_id of DESIGN.md section 2.
	ID string `json:"id"`
	// Name is the model name: MLflow registered model name, SageMaker group
	// name, W&B "<entity>/<project>/<collection>".
	Name string `json:"name"`
	// Raw keeps the registry fields the model was derived from, sorted by key;
	// each value is the registry's own JSON text.
	Raw []KV `json:"raw,omitempty"`
	// Tags are the model-level tags, sorted by key.
	Tags      []KV   `json:"tags,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
	URL       string `json:"url,omitempty"`
	// Versions are sorted by Order.
	Versions []Version `json:"versions"`
}

// Version is one model version (MLflow), model package (SageMaker) or linked
// artifact version (W&B).
type Version struct {
	// Actors are the actor facts known so far for changes of this version.
	Actors []Actor `json:"actors,omitempty"`
	// Aliases are the alias names pointing at this version, sorted. W&B's
	// automatic "latest" and "v<N>" are never aliases.
	Aliases        []string `json:"aliases"`
	ApprovalStatus string   `json:"approval_status,omitempty"`
	CreatedAt      string   `json:"created_at,omitempty"`
	Creator        string   `json:"creator,omitempty"`
	Description    *string  `json:"description,omitempty"`
	Digest         string   `json:"digest,omitempty"`
	// ID is the version id: "3" (MLflow, SageMaker), "v3" (W&B).
	ID             string `json:"id"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
	// Metadata holds registry metadata (W&B), sorted by key.
	Metadata []KV `json:"metadata,omitempty"`
	// Order is the ordering key of DESIGN.md section 2.
	Order int64 `json:"order"`
	Raw   []KV  `json:"raw,omitempty"`
	// Requests are the open approval requests (Databricks), sorted by ID.
	Requests []Request `json:"requests,omitempty"`
	RunID    *string   `json:"run_id,omitempty"`
	// Source is the source/artifact URI (MLflow source, SageMaker model data URL).
	Source    string `json:"source,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Status    string `json:"status,omitempty"`
	Tags      []KV   `json:"tags,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
	URL       string `json:"url,omitempty"`
}

// KV is one registry-controlled key/value pair. Maps from registries are
// always lists of KV sorted by key bytes.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Request is an open approval request (Databricks transition request).
type Request struct {
	CreatedAt string `json:"created_at,omitempty"`
	ID        string `json:"id"`
	Requester string `json:"requester"`
	ToStage   string `json:"to_stage"`
}

// Actor is an actor fact: who made a change, when, and the evidence for it.
type Actor struct {
	// Actor is the identity key (DESIGN.md section 2), never a guess.
	Actor string `json:"actor"`
	// At is the time of the change (FormatTime).
	At string `json:"at"`
	// Change is the change kind it attributes: "version.created",
	// "approval.changed", "stage.changed", "alias.set", "alias.removed".
	Change string `json:"change"`
	// Evidence identifies the record (CloudTrail event id, W&B action id).
	Evidence string `json:"evidence"`
	// Key narrows Change: the alias name, or the status / stage changed to.
	Key string `json:"key,omitempty"`
	// Raw is the registry's own action type, stored as given.
	Raw string `json:"raw,omitempty"`
}

// Canonical returns the snapshot's RFC 8785 (JCS) bytes. Slices are expected
// sorted as documented on each field; Canonical sorts nothing.
func (s *Snapshot) Canonical() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return unescapeLineSeparators(b), nil
}

// Digest returns the lowercase hex SHA-256 of the canonical bytes.
func (s *Snapshot) Digest() (string, error) {
	b, err := s.Canonical()
	if err != nil {
		return "", err
	}
	return DigestBytes(b), nil
}

// DigestBytes returns the lowercase hex SHA-256 of b.
func DigestBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ParseSnapshot decodes canonical snapshot bytes.
func ParseSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return &s, nil
}

// Counts returns the number of models and versions in the snapshot.
func (s *Snapshot) Counts() (models, versions int) {
	for _, m := range s.Models {
		versions += len(m.Versions)
	}
	return len(s.Models), versions
}

// Sort puts models, versions, tags, aliases and requests in canonical order.
// Sources call it before returning a snapshot.
func (s *Snapshot) Sort() {
	if s.Models == nil {
		s.Models = []Model{}
	}
	slices.SortFunc(s.Models, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	for i := range s.Models {
		m := &s.Models[i]
		SortKV(m.Tags)
		SortKV(m.Raw)
		if m.Versions == nil {
			m.Versions = []Version{}
		}
		slices.SortStableFunc(m.Versions, func(a, b Version) int { return cmp.Compare(a.Order, b.Order) })
		for j := range m.Versions {
			v := &m.Versions[j]
			if v.Aliases == nil {
				v.Aliases = []string{}
			}
			if len(v.Aliases) > 1 {
				slices.Sort(v.Aliases)
			}
			SortKV(v.Tags)
			SortKV(v.Raw)
			SortKV(v.Metadata)
			if len(v.Requests) > 1 {
				slices.SortFunc(v.Requests, func(a, b Request) int { return strings.Compare(a.ID, b.ID) })
			}
			if len(v.Actors) > 1 {
				slices.SortStableFunc(v.Actors, func(x, y Actor) int {
					if c := strings.Compare(x.At, y.At); c != 0 {
						return c
					}
					return strings.Compare(x.Evidence, y.Evidence)
				})
			}
		}
	}
}

// SortKV sorts key/value pairs by key bytes (then value, for stability).
func SortKV(kv []KV) {
	if len(kv) < 2 {
		return
	}
	slices.SortFunc(kv, func(a, b KV) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// TimeLayout is the layout of every time in snapshots and ledger entries:
// RFC 3339 UTC with milliseconds and a trailing Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime formats t in UTC, truncated to the millisecond. A time outside
// years 0000-9999 gives "".
func FormatTime(t time.Time) string {
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return ""
	}
	return t.Truncate(time.Millisecond).Format(TimeLayout)
}

// FormatMillis formats epoch milliseconds (MLflow, Databricks) with FormatTime.
func FormatMillis(ms int64) string { return FormatTime(time.UnixMilli(ms)) }

// ParseTime parses a time written by FormatTime.
func ParseTime(s string) (time.Time, bool) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// Str returns a pointer to s, for the optional fields of a snapshot.
func Str(s string) *string { return &s }

// unescapeLineSeparators turns encoding/json's \u2028, \u2029 and \ufffd
// escapes (the last is how it writes invalid UTF-8) back into the literal
// characters RFC 8785 requires. Other escape pairs are copied whole, so an
// escaped backslash followed by "u2028" stays literal text.
func unescapeLineSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) && !bytes.Contains(b, []byte(`\ufffd`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' {
			switch string(b[i+2 : i+6]) {
			case "2028":
				out = append(out, "\u2028"...)
				i += 5
				continue
			case "2029":
				out = append(out, "\u2029"...)
				i += 5
				continue
			case "fffd":
				out = append(out, "\ufffd"...)
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}

// Itoa formats an ordering key or version number.
func Itoa(n int64) string { return strconv.FormatInt(n, 10) }
