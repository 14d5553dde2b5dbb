package slack

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

// Attachment colours per severity.
const (
	ColorDanger  = "#d00000"
	ColorWarning = "#daa038"
	ColorInfo    = "#2eb886"
)

// Slack limits (Block Kit): fields per section, characters per field, per
// header, per button URL.
const (
	maxFields    = 10
	maxValueLen  = 300
	maxHeaderLen = 150
	maxURLLen    = 3000
)

// message is one alert as posted: the top-level text and the attachment.
type message struct {
	text       string
	attachment slackapi.Attachment
}

// buildMessage renders an alert (DESIGN.md section 6). Every registry-controlled
// string goes through value (escaped, single line, bounded) and lands in
// verbatim mrkdwn or plain_text.
func buildMessage(a alerts.Alert, runbook string) message {
	rec := a.Record
	p := rec.Payload
	label := severityLabel(a.Severity)
	title := Title(rec.Kind, p)

	text := label + " " + title + ": " + subject(rec)
	if fu := a.FollowUp; fu != nil {
		text += fmt.Sprintf(" (follow-up to %s, ledger seq %d)", fu.Kind, fu.Seq)
	}

	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType,
			clip(label+" · "+title, maxHeaderLen), false, false)),
	}
	fields := fieldsOf(rec)
	for len(fields) > 0 {
		n := min(len(fields), maxFields)
		blocks = append(blocks, slackapi.NewSectionBlock(nil, fields[:n], nil))
		fields = fields[n:]
	}
	ctx := []slackapi.MixedElement{
		mrkdwn(fmt.Sprintf("Ledger seq %d · leaf hash `%s`", a.Seq, hex.EncodeToString(a.LeafHash[:]))),
	}
	if c := controls(rec.Kind, p); c != "" {
		ctx = append(ctx, mrkdwn("Control "+c))
	}
	if fu := a.FollowUp; fu != nil {
		ctx = append(ctx, mrkdwn(fmt.Sprintf("Follows up %s · ledger seq %d · finding %s",
			fu.Kind, fu.Seq, shortID(fu.FindingID))))
	}
	blocks = append(blocks, slackapi.NewContextBlock("", ctx...))
	var buttons []slackapi.BlockElement
	if u := alerts.PayloadString(p, "registry_url"); isHTTPURL(u) && len(u) <= maxURLLen {
		buttons = append(buttons, button("registry", "Open in registry", u))
	}
	if runbook != "" && len(runbook) <= maxURLLen {
		buttons = append(buttons, button("runbook", "Runbook", runbook))
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slackapi.NewActionBlock("", buttons...))
	}
	return message{
		text: text,
		attachment: slackapi.Attachment{
			Color:    severityColor(a.Severity),
			Fallback: text,
			Blocks:   slackapi.Blocks{BlockSet: blocks},
		},
	}
}

// Title names what a finding of kind with payload means, in a few words.
func Title(kind string, p map[string]any) string {
	verdict := alerts.PayloadString(p, "verdict")
	if verdict == "late" {
		return "late approval"
	}
	switch kind {
	case ledger.KindPromotion:
		switch verdict {
		case "missing":
			switch alerts.PayloadString(p, "reason") {
			case "not_allowed":
				return "promotion approved by someone not allowed to approve"
			case "too_old":
				return "promotion with an expired approval"
			case "created_approved":
				return "promotion of a version created already approved"
			case "after":
				return "promotion approved only after it happened"
			}
			return "promotion without approval"
		case "self_approved":
			return "self-approved promotion"
		case "rejected":
			return "promotion of a rejected version"
		case "approved":
			if alerts.PayloadString(p, "order") == "same_poll" {
				return "promotion approved in the same poll"
			}
			return "approved promotion"
		}
		return "promotion"
	case ledger.KindRollback, ledger.KindRestored:
		t := "rollback"
		if kind == ledger.KindRestored {
			t = "production restored"
		}
		switch alerts.PayloadString(p, "result") {
		case "overrun":
			t += " over its time objective"
		case "met":
			t += " within its time objective"
		}
		switch verdict {
		case "missing":
			t += ", version not approved"
		case "self_approved":
			t += ", version self-approved"
		case "rejected":
			t += ", approval rejected"
		}
		return t
	case ledger.KindRollbackOverdue:
		return "rollback overdue"
	case ledger.KindCoverageLate:
		return "registry not watched (coverage gap)"
	}
	return kind
}

// subject names what the alert is about: model@version (source), or the
// source alone.
func subject(rec ledger.Record) string {
	src := value(rec.Source)
	if rec.Model == "" {
		if src == "" {
			return "registrywatch"
		}
		return src
	}
	return modelAt(rec) + " (" + src + ")"
}

func modelAt(rec ledger.Record) string {
	if rec.Version == "" {
		return value(rec.Model)
	}
	return value(rec.Model) + "@" + value(rec.Version)
}

// fieldsOf lists the fields of a finding that have a value.
func fieldsOf(rec ledger.Record) []*slackapi.TextBlockObject {
	p := rec.Payload
	var fs []*slackapi.TextBlockObject
	add := func(name, v string) {
		if v != "" {
			fs = append(fs, slackapi.NewTextBlockObject(slackapi.MarkdownType, "*"+name+"*\n"+v, false, true))
		}
	}
	str := func(key string) string { return value(alerts.PayloadString(p, key)) }

	add("Source", value(rec.Source))
	if rec.Model != "" {
		add("Model", modelAt(rec))
	}
	if b, a := str("serving_before"), str("serving_after"); b != "" || a != "" {
		add("Serving", orNone(b)+" → "+orNone(a))
	}
	add("Promoter", str("promoter"))
	add("Approver", str("approver"))
	if v := str("verdict"); v != "" {
		if r := str("reason"); r != "" {
			v += " (" + r + ")"
		} else if o := str("order"); o != "" {
			v += " (" + o + ")"
		}
		add("Verdict", v)
	}
	if ct := str("change_type"); ct != "" && ct != "standard" {
		add("Change type", ct)
	}
	if from, to := interval(p["approved_at"]); from != "" {
		add("Approved at", spanText(from, to))
	}
	switch rec.Kind {
	case ledger.KindRollback, ledger.KindRestored, ledger.KindRollbackOverdue:
		if lo, hi, ok := durationRange(p["duration_ms"]); ok {
			add("Duration", spanDur(lo, hi))
		}
		if ms, ok := alerts.PayloadInt(p, "objective_ms"); ok {
			add("Objective", fmtDur(ms))
		}
		add("Result", str("result"))
		if from, to := interval(p["start"]); from != "" {
			add("Started", spanText(from, to))
		}
	case ledger.KindCoverageLate:
		add("Gap since", str("from"))
		if n, ok := alerts.PayloadInt(p, "missed_ticks"); ok {
			add("Missed ticks", strconv.FormatInt(n, 10))
		}
		add("Cause", str("cause"))
	}
	add("When (UTC)", when(rec))
	return fs
}

// controls names the SOC 2 controls a finding of kind evidences.
func controls(kind string, p map[string]any) string {
	var cs []string
	switch kind {
	case ledger.KindPromotion, ledger.KindRestored:
		cs = []string{"CC8.1"}
	case ledger.KindRollback:
		cs = []string{"CC8.1", "CC7.3"}
	case ledger.KindRollbackOverdue:
		cs = []string{"CC7.3"}
	case ledger.KindCoverageLate:
		cs = []string{"CC7.2"}
	}
	v := alerts.PayloadString(p, "verdict")
	if v == "self_approved" || alerts.PayloadString(p, "reason") == "not_allowed" {
		cs = append(cs, "CC6.1")
	}
	return strings.Join(cs, ", ")
}

func severityLabel(sev string) string {
	switch sev {
	case alerts.SeverityDanger:
		return "DANGER"
	case alerts.SeverityWarning:
		return "WARNING"
	}
	return "INFO"
}

func severityColor(sev string) string {
	switch sev {
	case alerts.SeverityDanger:
		return ColorDanger
	case alerts.SeverityWarning:
		return ColorWarning
	}
	return ColorInfo
}

func mrkdwn(s string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.MarkdownType, s, false, true)
}

func button(id, label, u string) slackapi.BlockElement {
	return slackapi.NewButtonBlockElement(id, "", slackapi.NewTextBlockObject(slackapi.PlainTextType, label, false, false)).WithURL(u)
}

// escape makes text inert for Slack: &, < and > become entities, so no link,
// mention (<!channel>, <@U123>) or channel reference can be formed.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// value prepares registry-controlled text for a field: one line, bounded,
// escaped.
func value(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return escape(clip(s, maxValueLen))
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// interval reads a {from, to} payload object.
func interval(v any) (from, to string) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", ""
	}
	return value(alerts.PayloadString(m, "from")), value(alerts.PayloadString(m, "to"))
}

func spanText(from, to string) string {
	if to == "" || to == from {
		return from
	}
	return from + " – " + to
}

// durationRange reads a [min, max] milliseconds payload array.
func durationRange(v any) (lo, hi int64, ok bool) {
	var xs []any
	switch a := v.(type) {
	case []any:
		xs = a
	case []int64:
		for _, x := range a {
			xs = append(xs, x)
		}
	}
	if len(xs) != 2 {
		return 0, 0, false
	}
	lo, ok1 := alerts.Int(xs[0])
	hi, ok2 := alerts.Int(xs[1])
	return lo, hi, ok1 && ok2
}

func spanDur(lo, hi int64) string {
	if lo == hi {
		return fmtDur(lo)
	}
	return fmtDur(lo) + " – " + fmtDur(hi)
}

func fmtDur(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).Round(time.Second).String()
}

// when renders the finding's occurrence interval, or its observation time.
func when(rec ledger.Record) string {
	from, to := rec.OccurredFrom, rec.OccurredTo
	if from.IsZero() {
		from, to = rec.ObservedAt, time.Time{}
	}
	if from.IsZero() {
		return ""
	}
	const layout = "2006-01-02 15:04:05"
	s := from.UTC().Format(layout)
	switch {
	case to.IsZero() || to.Equal(from):
	case to.UTC().Format("2006-01-02") == from.UTC().Format("2006-01-02"):
		s += " – " + to.UTC().Format("15:04:05")
	default:
		s += " – " + to.UTC().Format(layout)
	}
	return s
}
