// Package export writes the evidence bundle an auditor checks offline
// (DESIGN.md section 7) and verifies one: every ledger entry of a period
// with the proofs tying them to a signed checkpoint, the files derived from
// those entries alone (population, exceptions, production history,
// coverage, inventory, report), a sample of evidence packets, and a manifest
// signed so that stock OpenSSL can check it.
//
// Run streams: its memory holds the period's findings, production changes
// and models, never its entries. VerifyBundle re-derives the files from the
// bundle's own entries and compares them byte for byte.
package export

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// ErrUsage marks options that cannot make a bundle (a usage error).
var ErrUsage = errors.New("invalid export options")

// Options configures Run.
type Options struct {
	// Ledger is the ledger file, read without a lock.
	Ledger string
	// From and To bound the period [From, To) on observed_at; both are
	// truncated to the millisecond.
	From, To time.Time
	// Out is the bundle to write: a directory, or a file ending in .zip. It
	// MUST not exist or be empty; the bundle is written beside it first.
	Out string
	// Signer signs manifest.json (required): pure Ed25519, or ECDSA P-256
	// over SHA-256, as ledger.LoadSigner returns them.
	Signer signature.Signer
	// Keys are the trusted public keys the whole ledger is verified against
	// first; without them the keys recorded in the ledger are trusted and
	// Summary.TrustedEmbeddedKey says so.
	Keys []crypto.PublicKey
	// SinceCheckpoint is a signed checkpoint kept from an earlier export:
	// the bundle carries the proof that its checkpoint extends it.
	SinceCheckpoint []byte
	// Sample, with Seed, selects that many population rows for evidence
	// packets (see Rank).
	Sample int
	Seed   string
	// Source and Model restrict the export to one source or one model name;
	// the bundle is then not complete, and each entry carries its own
	// inclusion proof.
	Source, Model string
	// Tool names the exporting program and its version, for the manifest.
	Tool string
	// Clock stamps the manifest's created_at; nil means the real clock.
	Clock clock.Clock
	// Progress, if set, is called now and then with the phase ("verify",
	// then "export") and the entries done out of total.
	Progress func(phase string, done, total int64)
}

// Summary reports what Run wrote.
type Summary struct {
	Out    string
	Origin string
	// First and Last bound the exported range (Last = First-1 when empty).
	First, Last int64
	// Entries are the exported entries of the period, Boundary those of the
	// range outside it, CarryIn the carry-in entries.
	Entries, Boundary, CarryIn int64
	Population                 int64
	Exceptions, Open           int
	// Samples are the sampled ledger_seq, smallest rank first.
	Samples        []int64
	CheckpointSize int64
	Complete       bool
	// TrustedEmbeddedKey is set when no key was given and the ledger was
	// verified against the keys recorded in it.
	TrustedEmbeddedKey bool
	Files              int
}

// ParseDate parses an export date: YYYY-MM-DD (UTC midnight) or RFC 3339.
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad date %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t.UTC(), nil
}

func (o *Options) check() error {
	o.From, o.To = o.From.UTC().Truncate(time.Millisecond), o.To.UTC().Truncate(time.Millisecond)
	switch {
	case o.Ledger == "":
		return fmt.Errorf("%w: no ledger", ErrUsage)
	case o.Out == "":
		return fmt.Errorf("%w: no destination (-out)", ErrUsage)
	case o.From.IsZero() || o.To.IsZero():
		return fmt.Errorf("%w: the period needs -from and -to", ErrUsage)
	case !o.From.Before(o.To):
		return fmt.Errorf("%w: the period is empty (-from %s is not before -to %s)", ErrUsage, ledger.FormatTime(o.From), ledger.FormatTime(o.To))
	case o.Signer == nil:
		return fmt.Errorf("%w: no signer for the manifest", ErrUsage)
	case o.Sample < 0:
		return fmt.Errorf("%w: negative sample size", ErrUsage)
	case o.Sample > 0 && o.Seed == "":
		return fmt.Errorf("%w: a sample needs a seed (-seed)", ErrUsage)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Tool == "" {
		o.Tool = "registrywatch"
	}
	return nil
}

// exporter is one Run.
type exporter struct {
	ctx    context.Context
	opts   Options
	l      *ledger.Ledger
	b      *bundleWriter
	filter filter
	period period
	size   int64 // the checkpoint's tree size: every read stays below it
	cp     ledger.Checkpoint
	key    KeyInForce
	first  int64
	last   int64
	carry  [][]byte
	// exported counts the lines of events.jsonl.
	exported int64
	d        *deriver
	m        *Manifest
}

// Run exports the bundle described by opts: it verifies the ledger, then
// writes every file into a temporary directory beside opts.Out and moves it
// into place. A ledger that fails verification is refused with an error
// wrapping ledger.ErrTampered; a destination that is not empty with
// ErrOutExists; bad options with ErrUsage.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if err := checkOut(opts.Out); err != nil {
		return nil, err
	}
	x := &exporter{ctx: ctx, opts: opts, filter: filter{opts.Source, opts.Model},
		period: period{ledger.FormatTime(opts.From), ledger.FormatTime(opts.To)}}
	sum, err := x.verifyLedger()
	if err != nil {
		return nil, err
	}
	if x.l, err = ledger.OpenReadOnly(opts.Ledger); err != nil {
		return nil, err
	}
	defer x.l.Close()
	if err := x.findRange(); err != nil {
		return nil, err
	}
	if x.b, err = newBundleWriter(opts.Out); err != nil {
		return nil, err
	}
	if err := x.write(); err != nil {
		x.b.abort()
		return nil, err
	}
	if err := x.b.commit(); err != nil {
		x.b.abort()
		return nil, err
	}
	d := x.d
	sum.Out, sum.Origin, sum.First, sum.Last = opts.Out, x.l.Origin(), x.first, x.last
	sum.Entries, sum.Boundary, sum.CarryIn = d.entries, d.boundary, int64(len(x.carry))
	sum.Population, sum.Exceptions, sum.CheckpointSize = d.rows, len(d.exceptions), x.size
	sum.Complete, sum.Samples, sum.Files = x.filter.none(), x.m.Samples, len(x.m.Files)+2
	for _, e := range d.exceptions {
		if e.ended == EndedOpen {
			sum.Open++
		}
	}
	return sum, nil
}

// verifyLedger runs ledger.Verify and takes its latest checkpoint as the
// bundle's: every proof leads to it.
func (x *exporter) verifyLedger() (*Summary, error) {
	vo := ledger.VerifyOptions{Keys: x.opts.Keys, TrustEmbeddedKey: len(x.opts.Keys) == 0}
	if x.opts.SinceCheckpoint != nil {
		vo.Checkpoints = [][]byte{x.opts.SinceCheckpoint}
	}
	if p := x.opts.Progress; p != nil {
		vo.Progress = func(done, total int64) { p("verify", done, total) }
	}
	r, err := ledger.Verify(x.ctx, x.opts.Ledger, vo)
	if err != nil {
		return nil, fmt.Errorf("the ledger does not verify, nothing exported: %w", err)
	}
	if r.Latest == nil {
		return nil, errors.New("the ledger has no entries yet: nothing to export")
	}
	if x.cp, err = ledger.ParseCheckpoint(r.Latest); err != nil {
		return nil, err
	}
	x.size = x.cp.Size
	for _, k := range r.Keys {
		if k.FromSeq < x.size {
			x.key = KeyInForce{Fingerprint: k.Fingerprint, FromSeq: k.FromSeq}
		}
	}
	return &Summary{TrustedEmbeddedKey: r.TrustedEmbeddedKey}, nil
}

// findRange sets first (the smallest seq observed at or after From) and
// last (the largest observed before To), below the checkpoint's size.
func (x *exporter) findRange() error {
	x.first, x.last = x.size, -1
	err := x.l.FindLeaves(x.ctx, ledger.Query{Since: x.opts.From, ToSeq: x.size, Limit: 1}, func(seq int64, _ []byte) error {
		x.first = seq
		return nil
	})
	if err != nil {
		return err
	}
	err = x.l.FindLeaves(x.ctx, ledger.Query{Until: x.opts.To, ToSeq: x.size, Desc: true, Limit: 1}, func(seq int64, _ []byte) error {
		x.last = seq
		return nil
	})
	if err != nil {
		return err
	}
	if x.last < x.first {
		x.last = x.first - 1
	}
	return nil
}

// findCarryIn collects the carry-in entries: the latest production.changed
// of each model (with versions in production) and the latest
// config.applied, before first.
func (x *exporter) findCarryIn() error {
	if x.first == 0 {
		return nil
	}
	type found struct {
		seq  int64
		leaf []byte
	}
	var out []found
	seen := map[modelKey]bool{}
	q := ledger.Query{Kind: policy.KindProductionChanged, Source: x.opts.Source, Model: x.opts.Model, ToSeq: x.first, Desc: true}
	err := x.l.Find(x.ctx, q, func(r ledger.Record) error {
		k := modelKey{r.Source, r.ModelID}
		if seen[k] {
			return nil
		}
		seen[k] = true
		if len(strs(r.Payload, "after")) > 0 {
			out = append(out, found{r.Seq, r.Leaf})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("carry-in: %w", err)
	}
	err = x.l.Find(x.ctx, ledger.Query{Kind: kindConfigApplied, ToSeq: x.first, Desc: true, Limit: 1}, func(r ledger.Record) error {
		out = append(out, found{r.Seq, r.Leaf})
		return nil
	})
	if err != nil {
		return fmt.Errorf("carry-in: %w", err)
	}
	slices.SortFunc(out, func(a, b found) int { return cmp.Compare(a.seq, b.seq) })
	for _, f := range out {
		x.carry = append(x.carry, f.leaf)
	}
	return nil
}

// write writes every file of the bundle.
func (x *exporter) write() error {
	if err := x.findCarryIn(); err != nil {
		return err
	}
	x.d = newDeriver(x.period)
	x.d.report = newReportBuilder(reportInfo{
		Origin: x.l.Origin(), From: x.period.from, To: x.period.to, Tool: x.opts.Tool,
		Source: x.opts.Source, Model: x.opts.Model, Complete: x.filter.none(),
		First: x.first, Last: x.last, Checkpoint: x.size, Carry: int64(len(x.carry)),
		Sample: x.opts.Sample, Seed: x.opts.Seed,
	}, x.opts.From, x.opts.To)
	if err := x.firstPass(); err != nil {
		return err
	}
	if err := x.secondPass(); err != nil {
		return err
	}
	if err := x.writeXLSX(); err != nil {
		return err
	}
	samples, err := x.writeSamples()
	if err != nil {
		return err
	}
	f, err := x.b.create(FileReport)
	if err != nil {
		return err
	}
	if err := x.d.report.render(f); err != nil {
		f.abort()
		return fmt.Errorf("write %s: %w", FileReport, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := x.b.writeFile(FileCheckpoint, x.cp.Note); err != nil {
		return err
	}
	return x.writeManifest(samples)
}

// firstPass feeds the deriver the carry-in and the range's findings and
// production changes (through the kind index).
func (x *exporter) firstPass() error {
	for _, leaf := range x.carry {
		if err := x.d.pre(leaf, true); err != nil {
			return err
		}
	}
	if x.last < x.first {
		return nil
	}
	q := ledger.Query{Kinds: policyKinds, FromSeq: x.first, ToSeq: x.last + 1}
	return x.l.FindLeaves(x.ctx, q, func(_ int64, leaf []byte) error {
		h, err := parseHead(leaf)
		if err != nil {
			return err
		}
		if !x.filter.matches(h) {
			return nil
		}
		return x.d.pre(leaf, false)
	})
}

// secondPass streams the range into events.jsonl (and proofs.jsonl when
// filtered), the carry-in into carry_in.jsonl, and the CSV files.
func (x *exporter) secondPass() error {
	names := []string{FileEvents, FileCarryIn, FilePopulation, FileExceptions, FileHistory, FileCoverage, FileInventory}
	if !x.filter.none() {
		names = append(names, FileProofs)
	}
	files := map[string]*bundleFile{}
	defer func() {
		for _, f := range files {
			f.abort()
		}
	}()
	for _, n := range names {
		f, err := x.b.create(n)
		if err != nil {
			return err
		}
		files[n] = f
	}
	d := x.d
	if err := d.start(outputs{population: files[FilePopulation], exceptions: files[FileExceptions],
		history: files[FileHistory], coverage: files[FileCoverage], inventory: files[FileInventory]}); err != nil {
		return err
	}
	for _, leaf := range x.carry {
		if err := writeLine(files[FileCarryIn], leaf); err != nil {
			return err
		}
		if err := d.carryIn(leaf); err != nil {
			return err
		}
	}
	total, done := x.last-x.first+1, int64(0)
	progress := x.opts.Progress
	if x.last >= x.first {
		err := x.l.Scan(x.ctx, x.first, x.last+1, func(seq int64, leaf []byte) error {
			if done++; progress != nil && done%4096 == 0 {
				progress("export", done, total)
			}
			if !x.filter.none() {
				h, err := parseHead(leaf)
				if err != nil {
					return fmt.Errorf("seq %d: %w", seq, err)
				}
				if !x.filter.matches(h) {
					return nil
				}
				if err := x.writeProof(files[FileProofs], seq, leaf); err != nil {
					return err
				}
			}
			if err := writeLine(files[FileEvents], leaf); err != nil {
				return err
			}
			x.exported++
			if err := d.entry(leaf); err != nil {
				return fmt.Errorf("seq %d: %w", seq, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if progress != nil {
		progress("export", total, total)
	}
	if err := d.finish(); err != nil {
		return err
	}
	for _, n := range names {
		f := files[n]
		delete(files, n)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func writeJSONLine(f *bundleFile, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeLine(f, b)
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func writeLine(f *bundleFile, leaf []byte) error {
	if _, err := f.Write(leaf); err != nil {
		return err
	}
	_, err := f.Write([]byte{'\n'})
	return err
}

// entryProof returns the inclusion proof of entry seq in the checkpoint's
// tree.
func (x *exporter) entryProof(seq int64, leaf []byte) (EntryProof, error) {
	p, err := x.l.InclusionProof(x.ctx, seq, x.size)
	if err != nil {
		return EntryProof{}, err
	}
	return EntryProof{Seq: seq, LeafHash: leafHash(leaf), Proof: hexList(p)}, nil
}

// writeProof appends the inclusion proof of an entry to proofs.jsonl.
func (x *exporter) writeProof(f *bundleFile, seq int64, leaf []byte) error {
	p, err := x.entryProof(seq, leaf)
	if err != nil {
		return err
	}
	return writeJSONLine(f, p)
}

func (x *exporter) writeXLSX() error {
	f, err := x.b.create(FileXLSX)
	if err != nil {
		return err
	}
	if err := writeXLSX(x.b.path(FilePopulation), f); err != nil {
		f.abort()
		return err
	}
	return f.Close()
}

// writeSamples selects the sample from population.csv and writes a packet
// per sampled row.
func (x *exporter) writeSamples() ([]int64, error) {
	if x.opts.Sample == 0 {
		return []int64{}, nil
	}
	pop, err := os.Open(x.b.path(FilePopulation))
	if err != nil {
		return nil, err
	}
	defer pop.Close()
	rows, err := selectSample(pop, x.opts.Seed, x.opts.Sample)
	if err != nil {
		return nil, err
	}
	seqs := make([]int64, 0, len(rows))
	for _, s := range rows {
		if err := x.writePacket(s); err != nil {
			return nil, fmt.Errorf("sample %d: %w", s.seq, err)
		}
		seqs = append(seqs, s.seq)
	}
	return seqs, nil
}

// refs reads a finding's triggering_seq and evidence seqs from the ledger
// (-1 when it has no trigger).
func (x *exporter) refs(seq int64) (int64, []int64, error) {
	r, err := x.l.Record(x.ctx, seq)
	if err != nil {
		return 0, nil, err
	}
	trigger, ok := r.Payload["triggering_seq"].(int64)
	if !ok {
		trigger = -1
	}
	return trigger, judgementOf(&r).evidence, nil
}

func (x *exporter) writePacket(s sampled) error {
	roles, err := packetRoles(s.seq, x.refs, x.d.superseder)
	if err != nil {
		return err
	}
	seqs := make([]int64, 0, len(roles))
	for seq := range roles {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	dir := DirSamples + "/" + strconv.FormatInt(s.seq, 10) + "/"
	entries, err := x.b.create(dir + sampleEntries)
	if err != nil {
		return err
	}
	proofs := packetProofs{TreeSize: x.size}
	var listing []string
	for _, seq := range seqs {
		leaf, err := x.l.Leaf(x.ctx, seq)
		if err != nil {
			entries.abort()
			return err
		}
		if err := writeLine(entries, leaf); err != nil {
			entries.abort()
			return err
		}
		p, err := x.entryProof(seq, leaf)
		if err != nil {
			entries.abort()
			return err
		}
		proofs.Entries = append(proofs.Entries, packetProof{Seq: seq, Role: roles[seq], LeafHash: p.LeafHash, Proof: p.Proof})
		h, _ := parseHead(leaf)
		listing = append(listing, fmt.Sprintf("  seq %-8d %-14s %s", seq, roles[seq], text(h.kind)))
	}
	if err := entries.Close(); err != nil {
		return err
	}
	b, err := jsonIndent(proofs)
	if err != nil {
		return err
	}
	if err := x.b.writeFile(dir+sampleProofs, b); err != nil {
		return err
	}
	var readme strings.Builder
	fmt.Fprintf(&readme, "Evidence packet for population row ledger_seq %d\n\n", s.seq)
	for i, c := range populationColumns {
		fmt.Fprintf(&readme, "  %-22s %s\n", c, s.row[i])
	}
	fmt.Fprintf(&readme, "\n%s holds these ledger entries verbatim, one per line, in seq order:\n\n%s\n\n", sampleEntries, strings.Join(listing, "\n"))
	fmt.Fprintf(&readme, "%s holds an inclusion proof of each in the tree of size %d, whose root\n"+
		"is in the bundle's signed checkpoint file. registrywatch verify -bundle checks\n"+
		"them; docs/AUDITOR.md (\"Merkle proofs\") shows how to check one by hand.\n", sampleProofs, x.size)
	return x.b.writeFile(dir+sampleReadme, []byte(readme.String()))
}

// writeManifest writes README.txt, SHA256SUMS, manifest.json and
// manifest.sig.
func (x *exporter) writeManifest(samples []int64) error {
	signerPub, err := x.opts.Signer.PublicKey()
	if err != nil {
		return fmt.Errorf("signer public key: %w", err)
	}
	signedBy, err := ledger.Fingerprint(signerPub)
	if err != nil {
		return err
	}
	d := x.d
	m := &Manifest{
		Format: Format, Tool: x.opts.Tool, CreatedAt: ledger.FormatTime(x.opts.Clock.Now()), Origin: x.l.Origin(),
		Parameters: Parameters{From: x.period.from, To: x.period.to, Source: x.opts.Source, Model: x.opts.Model, Sample: x.opts.Sample},
		Complete:   x.filter.none(),
		Range: Range{First: x.first, Last: x.last, Entries: d.entries, Boundary: d.boundary,
			Exported: x.exported},
		Counts: d.countsByKind(), ConfigApplied: d.configs, Population: d.rows,
		Checkpoint: string(x.cp.Note), Key: x.key, SignedBy: signedBy,
		CarryIn: []EntryProof{}, Samples: samples,
	}
	if x.opts.Sample > 0 {
		m.Parameters.Seed = x.opts.Seed
	}
	if m.ConfigApplied == nil {
		m.ConfigApplied = []configDigest{}
	}
	if m.Complete {
		left, err := x.l.RangeNodes(x.ctx, 0, x.first)
		if err != nil {
			return err
		}
		right, err := x.l.RangeNodes(x.ctx, x.last+1, x.size)
		if err != nil {
			return err
		}
		m.RangeProof = &RangeProof{Size: x.size, Left: hexList(left), Right: hexList(right)}
	}
	for _, leaf := range x.carry {
		h, err := parseHead(leaf)
		if err != nil {
			return err
		}
		p, err := x.entryProof(h.seq, leaf)
		if err != nil {
			return err
		}
		m.CarryIn = append(m.CarryIn, p)
	}
	if x.opts.SinceCheckpoint != nil {
		if m.Consistency, err = x.consistency(); err != nil {
			return err
		}
	}
	readme, err := x.readme(m)
	if err != nil {
		return err
	}
	if err := x.b.writeFile(FileReadme, readme); err != nil {
		return err
	}
	var sums bytes.Buffer
	for _, f := range x.b.hashes() {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Name)
	}
	if err := x.b.writeFile(FileSums, sums.Bytes()); err != nil {
		return err
	}
	m.Files = x.b.hashes()
	b, err := m.marshal()
	if err != nil {
		return err
	}
	sig, err := signManifest(x.opts.Signer, b)
	if err != nil {
		return err
	}
	if err := x.b.writeFile(FileManifest, b); err != nil {
		return err
	}
	x.m = m
	return x.b.writeFile(FileSignature, sig)
}

// consistency proves that the bundle's checkpoint extends the kept one
// (ledger.Verify has already checked it against the ledger).
func (x *exporter) consistency() (*Consistency, error) {
	old, err := ledger.ParseCheckpoint(x.opts.SinceCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("-since-checkpoint: %w", err)
	}
	if old.Origin != x.l.Origin() {
		return nil, fmt.Errorf("-since-checkpoint: origin %q, the ledger's is %q", old.Origin, x.l.Origin())
	}
	if old.Size > x.size {
		return nil, fmt.Errorf("-since-checkpoint: size %d is beyond the ledger's latest checkpoint (%d)", old.Size, x.size)
	}
	root, err := x.l.RootAt(x.ctx, old.Size)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(root, old.Root) {
		return nil, fmt.Errorf("%w: -since-checkpoint: the ledger's root at size %d differs from the kept checkpoint's", ledger.ErrTampered, old.Size)
	}
	p, err := x.l.ConsistencyProof(x.ctx, old.Size, x.size)
	if err != nil {
		return nil, err
	}
	return &Consistency{Checkpoint: string(x.opts.SinceCheckpoint), Size: old.Size, Proof: hexList(p)}, nil
}

//go:embed README.txt.tmpl
var readmeTemplateText string

var readmeTemplate = template.Must(template.New("readme").Funcs(template.FuncMap{
	"shellQuote": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
}).Parse(readmeTemplateText))

func (x *exporter) readme(m *Manifest) ([]byte, error) {
	var b bytes.Buffer
	err := readmeTemplate.Execute(&b, map[string]any{
		"Origin": m.Origin, "From": m.Parameters.From, "To": m.Parameters.To, "First": m.Range.First, "Last": m.Range.Last,
		"Entries": m.Range.Entries, "Boundary": m.Range.Boundary, "Complete": m.Complete,
		"Source": m.Parameters.Source, "Model": m.Parameters.Model, "Size": x.size, "KeyFingerprint": m.Key.Fingerprint,
		"SignedBy": m.SignedBy, "Tool": m.Tool, "CreatedAt": m.CreatedAt, "Samples": m.Samples, "Seed": x.opts.Seed,
	})
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", FileReadme, err)
	}
	return b.Bytes(), nil
}
