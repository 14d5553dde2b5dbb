package export

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/registrywatch/registrywatch/internal/policy"
)

// Columns of the bundle's CSV files, in order. docs/AUDITOR.md describes
// each one; a change here is a change of the bundle format.
var (
	populationColumns = []string{
		"ledger_seq", "leaf_hash", "source", "model", "version", "from", "to", "change_type",
		"promoter", "approver", "approved_at", "approved_before", "approver_is_promoter",
		"verdict", "superseded_by", "duration_min_ms", "duration_max_ms", "objective_ms", "result",
	}
	exceptionColumns = []string{
		"ledger_seq", "leaf_hash", "observed_at", "source", "model", "version", "kind", "severity",
		"verdict", "reason", "result", "superseded_by", "ended", "ended_seq", "ended_at",
	}
	historyColumns = []string{
		"source", "model", "model_id", "versions_in_production", "serving_version",
		"from", "to", "occurred_from", "occurred_to", "ledger_seq",
	}
	coverageColumns = []string{
		"source", "kind", "from", "to", "polls", "failures", "missed_ticks", "cause",
		"last_snapshot_digest", "ledger_seq",
	}
	inventoryColumns = []string{
		"source", "model", "model_id", "status", "versions_in_production", "serving_version",
		"serving_since", "last_production_change_seq", "last_seen_seq",
	}
)

// populationNumeric lists the population columns that hold numbers (XLSX
// number cells; never neutralized).
var populationNumeric = map[string]bool{
	"ledger_seq": true, "superseded_by": true, "duration_min_ms": true, "duration_max_ms": true, "objective_ms": true,
}

// Values of approved_before and approver_is_promoter.
const (
	yes     = "yes"
	no      = "no"
	unknown = "unknown"
)

// Values of exceptions.csv's ended column.
const (
	EndedLateApproval      = "late_approval"
	EndedLeftProduction    = "left_production"
	EndedRollbackCompleted = "rollback_completed"
	EndedGapClosed         = "gap_closed"
	EndedOpen              = "open_at_period_end"
)

// maxCellChars is the longest text a spreadsheet cell holds, in UTF-16
// units (Excel's limit, which excelize enforces by cutting); CSV cells are
// cut the same way so that population.xlsx equals population.csv.
const maxCellChars = 32767

// cell makes registry-controlled text safe for a CSV or XLSX cell: a value
// starting with = + - @ TAB or CR gets a leading single quote so that no
// spreadsheet reads it as a formula, characters XML 1.0 cannot carry
// become U+FFFD, and the text is cut at maxCellChars characters.
func cell(s string) string {
	if strings.IndexFunc(s, invalidXMLChar) >= 0 {
		s = strings.Map(func(r rune) rune {
			if invalidXMLChar(r) {
				return utf8.RuneError
			}
			return r
		}, s)
	}
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		s = "'" + s
	}
	if len(s) > maxCellChars {
		units := 0
		for i, r := range s {
			if units += utf16.RuneLen(r); units > maxCellChars {
				return s[:i]
			}
		}
	}
	return s
}

func invalidXMLChar(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20, r == 0xFFFE, r == 0xFFFF:
		return true
	}
	return false
}

func num(n int64) string { return strconv.FormatInt(n, 10) }

// optNum formats n, or "" when ok is false.
func optNum(n int64, ok bool) string {
	if !ok {
		return ""
	}
	return num(n)
}

// approvedBefore is the approved_before column for the latest verdict of a
// finding's supersedes chain: yes when approved with evidence before the
// promotion (order ""), unknown when approved in the same poll as the
// promotion (order same_poll) or when no approval was judged (n/a), no for
// every other verdict (missing, late, self_approved, rejected).
func approvedBefore(j judgement) string {
	switch j.verdict {
	case policy.VerdictApproved:
		if j.order == "" {
			return yes
		}
		return unknown
	case policy.VerdictNA, "":
		return unknown
	}
	return no
}

// approverIsPromoter is the approver_is_promoter column: unknown when
// either identity is unknown or empty, or when the approval evidence is the
// very change that put the version into production (a SageMaker approval
// that is the production pointer: separation of duties is then judged
// against the creator, in the verdict); else yes when the identities are
// equal (case-insensitively), no otherwise.
func approverIsPromoter(j judgement, trigger int64) string {
	if !knownID(j.approver) || !knownID(j.promoter) {
		return unknown
	}
	for _, e := range j.evidence {
		if e == trigger {
			return unknown
		}
	}
	if strings.EqualFold(j.approver, j.promoter) {
		return yes
	}
	return no
}

func knownID(id string) bool { return id != "" && !strings.EqualFold(id, policy.Unknown) }

// interval formats a {from, to} payload value as an ISO 8601 interval
// "from/to", or a single time when both ends are equal.
func interval(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	from, _ := m["from"].(string)
	to, _ := m["to"].(string)
	if from == to {
		return from
	}
	return from + "/" + to
}
