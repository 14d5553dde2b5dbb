package export

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"iter"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

//go:embed report.html.tmpl
var reportTemplateText string

var reportTemplate = template.Must(template.New("report").Parse(reportTemplateText))

// Bounds that keep report.html readable and the export's memory flat: past
// them the report says how many more the CSV files hold.
const (
	maxBands      = 400  // production intervals drawn per model
	maxMarks      = 400  // findings drawn per model
	maxModelRows  = 200  // findings listed per model
	maxGaps       = 400  // coverage gaps drawn per source
	maxExceptions = 2000 // exceptions listed
)

// SVG geometry of a model's timeline.
const (
	plotLeft  = 70.0
	plotWidth = 880.0
	svgWidth  = plotLeft + plotWidth + 10
	svgHeight = 96
)

// reportInfo is what report.html says about the bundle itself.
type reportInfo struct {
	Origin, From, To, Tool   string
	Source, Model            string
	Complete                 bool
	First, Last, Checkpoint  int64
	Entries, Boundary, Carry int64
	Sample                   int
	Seed                     string
}

type band struct {
	from, to time.Time
	serving  string
	versions []string
	seq      int64
}

// finding is a population row as the report draws it: compact, since the
// report keeps up to maxMarks of them per model.
type finding struct {
	seq                   int64
	observed, changed     time.Time
	version, approver     string
	kind, verdict, order  string // interned
	result, changeType    string // interned
	approvedAt            string
	approvedBefore, sod   string // constants
	dmin, dmax, objective int64  // -1: not a rollback
	supersededBy          int64  // 0: none
}

type gapSpan struct {
	from, to time.Time
	cause    string
}

type coverageSum struct {
	windows, polls, failures int64
	gaps                     int
	gapTime                  time.Duration
}

// timeline is one model's part of the report.
type timeline struct {
	key      modelKey
	name     string
	bands    []band
	findings []finding
	more     int // bands or findings not kept
}

// findingView is one finding of a model's table.
type findingView struct {
	Seq, At, Version, Kind, ChangeType, Verdict, Approver, ApprovedBefore, SoD, Duration, Result, SupersededBy string
	Class                                                                                                      string
}

// reportBuilder collects, while the deriver runs, what report.html shows.
type reportBuilder struct {
	info     reportInfo
	from, to time.Time
	models   map[modelKey]*timeline
	gaps     map[string][]gapSpan
	coverage map[string]*coverageSum
	verdicts map[string]int64
	data     *reportData
}

func newReportBuilder(info reportInfo, from, to time.Time) *reportBuilder {
	return &reportBuilder{info: info, from: from, to: to, models: map[modelKey]*timeline{},
		gaps: map[string][]gapSpan{}, coverage: map[string]*coverageSum{}, verdicts: map[string]int64{}}
}

func (b *reportBuilder) timeline(source, modelID, name string) *timeline {
	k := modelKey{source, modelID}
	t := b.models[k]
	if t == nil {
		t = &timeline{key: k}
		b.models[k] = t
	}
	if name != "" {
		t.name = name
	}
	return t
}

func parseTime(s string) time.Time {
	t, err := time.Parse(ledger.TimeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// production records the production state a production.changed begins.
func (b *reportBuilder) production(r *ledger.Record, after []string, serving, to string) {
	t := b.timeline(r.Source, r.ModelID, r.Model)
	if len(after) == 0 {
		return
	}
	if len(t.bands) == maxBands {
		t.more++
		return
	}
	end := b.to
	if to != "" {
		end = parseTime(to)
	}
	t.bands = append(t.bands, band{from: r.ObservedAt, to: end, serving: serving, versions: after, seq: r.Seq})
}

func verdictClass(verdict, order, result string) string {
	switch {
	case verdict == policy.VerdictMissing || verdict == policy.VerdictSelfApproved || verdict == policy.VerdictRejected || result == "overrun":
		return "bad"
	case verdict == policy.VerdictLate || order == "same_poll":
		return "warn"
	case verdict == policy.VerdictApproved:
		return "ok"
	}
	return "neutral"
}

// finding records a population row: a marker, its approval and a table row.
func (b *reportBuilder) finding(r *ledger.Record, latest judgement, approvedBefore, sod string, supersededBy int64) {
	t := b.timeline(r.Source, r.ModelID, r.Model)
	b.verdicts[latest.verdict]++
	if len(t.findings) == maxMarks {
		t.more++
		return
	}
	p := r.Payload
	f := finding{seq: r.Seq, observed: r.ObservedAt, changed: r.OccurredFrom, version: intern(r.Version), approver: latest.approver,
		kind: intern(r.Kind), verdict: latest.verdict, order: intern(latest.order), result: intern(str(p, "result")),
		changeType: intern(str(p, "change_type")), approvedAt: latest.approvedAt, approvedBefore: approvedBefore, sod: sod,
		dmin: -1, dmax: -1, objective: -1, supersededBy: supersededBy}
	if ds := list(p, "duration_ms"); len(ds) == 2 {
		f.dmin, _ = ds[0].(int64)
		f.dmax, _ = ds[1].(int64)
		f.objective, _ = p["objective_ms"].(int64)
	}
	t.findings = append(t.findings, f)
}

func (f *finding) duration() string {
	if f.dmax < 0 {
		return ""
	}
	return fmt.Sprintf("%d–%d ms of %d ms", f.dmin, f.dmax, f.objective)
}

func (b *reportBuilder) gap(source, from, to, cause string) {
	c := b.sum(source)
	c.gaps++
	f, t := parseTime(from), parseTime(to)
	c.gapTime += t.Sub(f)
	if len(b.gaps[source]) < maxGaps {
		b.gaps[source] = append(b.gaps[source], gapSpan{from: f, to: t, cause: cause})
	}
}

func (b *reportBuilder) polls(source string, polls, failures int64) {
	c := b.sum(source)
	c.windows++
	c.polls += polls
	c.failures += failures
}

func (b *reportBuilder) sum(source string) *coverageSum {
	c := b.coverage[source]
	if c == nil {
		c = &coverageSum{}
		b.coverage[source] = c
	}
	return c
}

// View types of report.html.tmpl.
type (
	reportData struct {
		Info              reportInfo
		Stats             []stat
		Exceptions        []exceptionView
		ExceptionsOmitted int
		Open              int
		// Models yields each model's view as the template renders it, so
		// that only one is in memory at a time.
		Models            iter.Seq[modelView]
		Coverage          []coverageView
		Controls          []control
		Axis              []tick
		Width, Height     float64
		PlotLeft, PlotEnd float64
	}
	stat struct {
		Label, Value, Class string
	}
	exceptionView struct {
		Seq, At, Source, Model, Version, Kind, Severity, Verdict, Result, Ended, EndedSeq, EndedAt string
		Open                                                                                       bool
	}
	modelView struct {
		Source, Name, ModelID, Serving string
		Bands                          []svgBand
		Marks                          []svgMark
		Gaps                           []svgBand
		Rows                           []findingView
		Omitted, More                  int
	}
	svgBand struct {
		X, W, LabelX, Label, Title, Class string
	}
	svgMark struct {
		Shape, X, Y, Points, Title, Class string
	}
	coverageView struct {
		Source                                 string
		Windows, Polls, Failures, Gaps, GapMin string
	}
	control struct {
		ID, Name, Evidence string
	}
	tick struct {
		X, Label, Anchor string
	}
)

// controls maps the bundle's parts to the SOC 2 criteria they evidence.
var controls = []control{
	{"CC8.1", "Change management: every production change is authorized, and its approval is evidenced",
		"population.csv / population.xlsx (one row per production change with its approval evidence and verdict), samples/ (evidence packets with proofs), production_history.csv, events.jsonl"},
	{"CC7.2", "Monitoring: the registries were watched continuously, and every change was recorded",
		"coverage.csv (polls, failures and gaps per source), events.jsonl (every entry of the period, with the range proof of manifest.json showing none was left out)"},
	{"CC7.3", "Anomaly response: what needed action was raised and how it ended",
		"exceptions.csv (every finding that needed action, with ended), rollbacks against their objective (population.csv duration and result columns)"},
	{"CC6.1", "Logical access: who may promote, and separation of duties",
		"population.csv promoter, approver and approver_is_promoter columns, self_approved verdicts, inventory.csv (models in scope and what serves)"},
}

func (b *reportBuilder) x(t time.Time) float64 {
	span := b.to.Sub(b.from)
	if span <= 0 {
		return plotLeft
	}
	f := float64(t.Sub(b.from)) / float64(span)
	f = max(0, min(1, f))
	return plotLeft + f*plotWidth
}

func fx(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// finish turns what was collected into the template's data.
func (b *reportBuilder) finish(d *deriver, models []*modelInfo) {
	data := &reportData{Info: b.info, Controls: controls, Width: svgWidth, Height: svgHeight, PlotLeft: plotLeft, PlotEnd: plotLeft + plotWidth}
	data.Info.Entries, data.Info.Boundary = d.entries, d.boundary
	for _, e := range d.exceptions {
		if e.ended == EndedOpen {
			data.Open++
		}
		if len(data.Exceptions) == maxExceptions {
			data.ExceptionsOmitted++
			continue
		}
		row := e.row()
		data.Exceptions = append(data.Exceptions, exceptionView{
			Seq: row[0], At: row[2], Source: e.model.source, Model: e.name, Version: e.version, Kind: e.kind, Severity: e.severity,
			Verdict: joinNonEmpty(e.verdict, e.reason), Result: e.result, Ended: e.ended, EndedSeq: row[13], EndedAt: row[14], Open: e.ended == EndedOpen,
		})
	}
	var findings int64
	for _, n := range b.verdicts {
		findings += n
	}
	data.Stats = []stat{
		{"entries in the period", strconv.FormatInt(d.entries, 10), ""},
		{"production changes (population)", strconv.FormatInt(findings, 10), ""},
		{"approved before the change", strconv.FormatInt(b.verdicts[policy.VerdictApproved], 10), "ok"},
		{"approved late", strconv.FormatInt(b.verdicts[policy.VerdictLate], 10), "warn"},
		{"missing, self-approved or rejected", strconv.FormatInt(b.verdicts[policy.VerdictMissing]+b.verdicts[policy.VerdictSelfApproved]+b.verdicts[policy.VerdictRejected], 10), "bad"},
		{"exceptions", strconv.Itoa(len(d.exceptions)), ""},
		{"open at period end", strconv.Itoa(data.Open), map[bool]string{true: "bad", false: "ok"}[data.Open > 0]},
	}
	data.Axis = b.axis()
	data.Models = func(yield func(modelView) bool) {
		for _, m := range models {
			t := b.models[modelKey{m.source, m.modelID}]
			if t == nil {
				t = &timeline{key: modelKey{m.source, m.modelID}}
			}
			if !yield(b.modelView(m, t)) {
				return
			}
		}
	}
	sources := make([]string, 0, len(b.coverage))
	for s := range b.coverage {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		c := b.coverage[s]
		data.Coverage = append(data.Coverage, coverageView{Source: s, Windows: strconv.FormatInt(c.windows, 10),
			Polls: strconv.FormatInt(c.polls, 10), Failures: strconv.FormatInt(c.failures, 10), Gaps: strconv.Itoa(c.gaps),
			GapMin: strconv.FormatFloat(c.gapTime.Minutes(), 'f', 1, 64)})
	}
	b.data = data
}

func (b *reportBuilder) modelView(m *modelInfo, t *timeline) modelView {
	v := modelView{Source: m.source, Name: m.name, ModelID: m.modelID, Serving: m.serving, More: t.more}
	for i, bd := range t.bands {
		x1, x2 := b.x(bd.from), b.x(bd.to)
		w := max(x2-x1, 1.5)
		label := ""
		if w > 8*float64(len(bd.serving))+6 {
			label = "v" + bd.serving
		}
		v.Bands = append(v.Bands, svgBand{X: fx(x1), W: fx(w), LabelX: fx(x1 + 4), Label: label, Class: "b" + strconv.Itoa(i%4),
			Title: fmt.Sprintf("serving %s (in production: %s) from %s (seq %d)", bd.serving, strings.Join(bd.versions, ", "), ledger.FormatTime(bd.from), bd.seq)})
	}
	for _, g := range b.gaps[m.source] {
		x1, x2 := b.x(g.from), b.x(g.to)
		v.Gaps = append(v.Gaps, svgBand{X: fx(x1), W: fx(max(x2-x1, 1.5)), Class: "gap",
			Title: fmt.Sprintf("coverage gap %s to %s (%s)", ledger.FormatTime(g.from), ledger.FormatTime(g.to), g.cause)})
	}
	for i := range t.findings {
		f := &t.findings[i]
		class := verdictClass(f.verdict, f.order, f.result)
		superseded := ""
		if f.supersededBy > 0 {
			superseded = strconv.FormatInt(f.supersededBy, 10)
		}
		if len(v.Rows) < maxModelRows {
			v.Rows = append(v.Rows, findingView{
				Seq: strconv.FormatInt(f.seq, 10), At: ledger.FormatTime(f.changed), Version: f.version, Kind: f.kind,
				ChangeType: f.changeType, Verdict: f.verdict, Approver: f.approver, ApprovedBefore: f.approvedBefore, SoD: f.sod,
				Duration: f.duration(), Result: f.result, SupersededBy: superseded, Class: class,
			})
		} else {
			v.Omitted++
		}
		shape := "circle"
		switch f.kind {
		case policy.KindRollback:
			shape = "down"
		case policy.KindRestored:
			shape = "up"
		}
		title := fmt.Sprintf("seq %d: %s of %s version %s, verdict %s", f.seq, f.kind, m.name, f.version, f.verdict)
		if f.result != "" {
			title += fmt.Sprintf(", rollback %s (%s)", f.result, f.duration())
		}
		v.Marks = append(v.Marks, b.mark(f.observed, 56, shape, class, title))
		if f.approvedAt != "" {
			at := f.approvedAt
			if i := len(at) - len(ledger.TimeLayout); i > 0 {
				at = at[i:] // the end of an interval
			}
			v.Marks = append(v.Marks, b.mark(parseTime(at), 80, "diamond", class,
				fmt.Sprintf("approval of %s version %s by %s at %s", m.name, f.version, f.approver, f.approvedAt)))
		}
	}
	return v
}

// mark is an SVG marker of a shape at time at.
func (b *reportBuilder) mark(at time.Time, y float64, shape, class, title string) svgMark {
	x := b.x(at)
	sm := svgMark{Shape: "polygon", X: fx(x), Y: fx(y), Title: title, Class: class}
	switch shape {
	case "circle":
		sm.Shape = "circle"
	case "down":
		sm.Points = fmt.Sprintf("%s,%s %s,%s %s,%s", fx(x-6), fx(y-5), fx(x+6), fx(y-5), fx(x), fx(y+6))
	case "up":
		sm.Points = fmt.Sprintf("%s,%s %s,%s %s,%s", fx(x-6), fx(y+5), fx(x+6), fx(y+5), fx(x), fx(y-6))
	default: // diamond
		sm.Points = fmt.Sprintf("%s,%s %s,%s %s,%s %s,%s", fx(x), fx(y-6), fx(x+6), fx(y), fx(x), fx(y+6), fx(x-6), fx(y))
	}
	return sm
}

// axis returns six ticks across the period.
func (b *reportBuilder) axis() []tick {
	layout := "2006-01-02"
	if b.to.Sub(b.from) <= 72*time.Hour {
		layout = "01-02 15:04"
	}
	if b.to.Sub(b.from) <= 10*time.Minute {
		layout = "15:04:05"
	}
	var ticks []tick
	for i := 0; i <= 5; i++ {
		t := b.from.Add(time.Duration(float64(b.to.Sub(b.from)) * float64(i) / 5))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 5:
			anchor = "end"
		}
		ticks = append(ticks, tick{X: fx(b.x(t)), Label: t.UTC().Format(layout), Anchor: anchor})
	}
	return ticks
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " (" + b + ")"
}

// render writes report.html.
func (b *reportBuilder) render(w io.Writer) error {
	if b.data == nil {
		return fmt.Errorf("report: nothing derived")
	}
	return reportTemplate.Execute(w, b.data)
}
