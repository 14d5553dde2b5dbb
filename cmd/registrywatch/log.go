package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registrywatch/registrywatch/internal/ledger"
)

// logCmd is `registrywatch log`.
type logCmd struct{}

func init() { register(logCmd{}) }

func (logCmd) Name() string     { return "log" }
func (logCmd) Synopsis() string { return "list ledger entries" }

const logHelp = `
Lists ledger entries in seq order, as a table, or with -json as the leaf bytes
exactly as signed, one entry per line. Filters combine; -since takes an RFC 3339
time or a duration back from now (e.g. 24h).`

func (logCmd) Run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "log", "-ledger FILE [-json] [-source S] [-model M] [-kind K] [-since RFC3339|DURATION]", logHelp)
	ledgerPath := ledgerPathFlag(fs)
	asJSON := fs.Bool("json", false, "print the leaf bytes, one entry per line")
	source := fs.String("source", "", "only entries of source `S`")
	model := fs.String("model", "", "only entries of model `M`")
	kind := fs.String("kind", "", "only entries of kind `K`")
	since := fs.String("since", "", "only entries observed at or after `TIME` (RFC 3339) or DURATION ago")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := ledgerPath()
	if err != nil {
		return err
	}
	q := ledger.Query{Source: *source, Model: *model, Kind: *kind}
	if *since != "" {
		if q.Since, err = parseSince(*since, time.Now()); err != nil {
			return usageErr(err)
		}
	}
	l, err := ledger.OpenReadOnly(path)
	if err != nil {
		return usageErr(err)
	}
	defer l.Close()
	out := bufio.NewWriter(env.Stdout)
	if *asJSON {
		err = l.FindLeaves(ctx, q, func(_ int64, leaf []byte) error {
			out.Write(leaf)
			return out.WriteByte('\n')
		})
	} else {
		err = printTable(ctx, l, q, out)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// parseSince reads an RFC 3339 time or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("-since %q: want an RFC 3339 time (2025-06-01T00:00:00Z) or a duration (24h)", s)
	}
	return now.Add(-d), nil
}

// printTable writes the entries as aligned columns, flushing every few
// hundred rows so memory does not grow with the ledger.
func printTable(ctx context.Context, l *ledger.Ledger, q ledger.Query, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "SEQ\tOBSERVED_AT\tSOURCE\tKIND\tMODEL\tVERSION\tACTOR\tDETAILS\n"
	fmt.Fprint(tw, header)
	n := 0
	err := l.Find(ctx, q, func(r ledger.Record) error {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, ledger.FormatTime(r.ObservedAt),
			cell(r.Source), cell(r.Kind), cell(r.Model), cell(r.Version), cell(r.Actor), details(r.Payload))
		if n++; n%500 == 0 {
			return tw.Flush()
		}
		return nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// cell makes registry text safe for a terminal table: control and other
// non-printable characters are escaped, and "" shows as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// details summarizes a payload as key=value pairs, at most about 100
// characters.
func details(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+summary(p[k]))
	}
	s := strings.Join(parts, " ")
	if utf8.RuneCountInString(s) > 100 {
		s = string([]rune(s)[:99]) + "…"
	}
	return s
}

func summary(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" || strings.ContainsAny(v, " \t\"=") {
			return strconv.Quote(v)
		}
		return cell(v)
	case []any:
		if len(v) <= 3 {
			parts := make([]string, len(v))
			for i, x := range v {
				parts[i] = summary(x)
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
		return fmt.Sprintf("[%d items]", len(v))
	case map[string]any:
		return "{" + details(v) + "}"
	default:
		return fmt.Sprint(v)
	}
}
