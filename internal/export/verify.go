package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// ErrBundleInvalid is returned by VerifyBundle when the bundle fails a
// check; the message names the first file or entry that fails.
var ErrBundleInvalid = errors.New("bundle does not verify")

// VerifyOptions configures VerifyBundle.
type VerifyOptions struct {
	// Keys are the trusted public keys: the one that signed the manifest
	// and the ledger key in force at the bundle's checkpoint (often the
	// same). At least one is required.
	Keys []crypto.PublicKey
	// Checkpoints are signed checkpoints kept from earlier; the bundle's
	// checkpoint must be proven to extend each of them.
	Checkpoints [][]byte
}

// BundleReport is what VerifyBundle found.
type BundleReport struct {
	Manifest   *Manifest
	Checkpoint ledger.Checkpoint
	// Files is the number of files checked against the manifest.
	Files int
	// Events and CarryIn are the entries proven to be in the checkpoint's
	// tree; Samples the evidence packets checked.
	Events, CarryIn, Samples int64
	// Extends is the number of kept checkpoints the bundle proves it
	// extends.
	Extends int
	// Problems lists what failed, in the order checked; empty when the
	// bundle verifies.
	Problems []string
}

// OK reports whether the bundle verified.
func (r *BundleReport) OK() bool { return len(r.Problems) == 0 }

func (r *BundleReport) fail(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

// VerifyBundle checks an evidence bundle (a directory or a .zip) offline:
// the manifest's signature, every file's SHA-256, the checkpoint's
// signature by the key in force, the range proof (the checkpoint's root
// recomputed from events.jsonl and the manifest's compact ranges) or, when
// filtered, each entry's inclusion proof, the carry-in proofs, the
// consistency with opts.Checkpoints, the sample and its packets; and it
// derives the CSV files again from events.jsonl and carry_in.jsonl and
// compares them byte for byte, and population.xlsx with population.csv.
//
// It returns an error wrapping ErrBundleInvalid, naming the first problem,
// when the report has problems; other errors mean the check could not run.
func VerifyBundle(ctx context.Context, bundle string, opts VerifyOptions) (*BundleReport, error) {
	if len(opts.Keys) == 0 {
		return nil, errors.New("verify bundle: no trusted key: give the public key of the bundle's signer and of the ledger")
	}
	fsys, closeFS, err := openBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	defer closeFS()
	v := &bundleVerifier{ctx: ctx, fs: fsys, opts: opts, r: &BundleReport{}}
	if err := v.run(); err != nil {
		return v.r, fmt.Errorf("verify bundle: %w", err)
	}
	if p := v.r.Problems; len(p) > 0 {
		msg := p[0]
		if n := len(p) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more problem%s)", n, map[bool]string{true: "s"}[n > 1])
		}
		return v.r, fmt.Errorf("%w: %s", ErrBundleInvalid, msg)
	}
	return v.r, nil
}

// openBundle opens a bundle directory or zip as a file system rooted where
// manifest.json is.
func openBundle(p string) (fs.FS, func(), error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return os.DirFS(p), func() {}, nil
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	closeFn := func() { zr.Close() }
	if _, err := fs.Stat(zr, FileManifest); err == nil {
		return zr, closeFn, nil
	}
	entries, err := fs.ReadDir(zr, ".")
	if err == nil && len(entries) == 1 && entries[0].IsDir() {
		sub, err := fs.Sub(zr, entries[0].Name())
		if err == nil {
			return sub, closeFn, nil
		}
	}
	closeFn()
	return nil, nil, fmt.Errorf("%s: no %s at the top of the zip or in its single folder", p, FileManifest)
}

type bundleVerifier struct {
	ctx  context.Context
	fs   fs.FS
	opts VerifyOptions
	r    *BundleReport
	m    *Manifest
	root []byte
	size int64
	// present lists the files whose hash matched the manifest.
	present map[string]bool
}

func (v *bundleVerifier) run() error {
	mb, err := fs.ReadFile(v.fs, FileManifest)
	if err != nil {
		v.r.fail("%s: %v", FileManifest, err)
		return nil
	}
	sig, err := fs.ReadFile(v.fs, FileSignature)
	if err != nil {
		v.r.fail("%s: %v", FileSignature, err)
	}
	if v.m, err = parseManifest(mb); err != nil {
		v.r.fail("%v", err)
		return nil
	}
	v.r.Manifest = v.m
	if sig != nil {
		v.checkSignature(mb, sig)
	}
	v.checkFiles()
	if !v.checkCheckpoint() {
		return nil
	}
	steps := []func() error{v.checkEvents, v.checkCarryIn, v.checkConsistency, v.checkDerived, v.checkXLSX, v.checkSamples}
	for _, step := range steps {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// trusted returns the trusted key with the given fingerprint.
func (v *bundleVerifier) trusted(fp string) crypto.PublicKey {
	for _, k := range v.opts.Keys {
		if f, err := ledger.Fingerprint(k); err == nil && f == fp {
			return k
		}
	}
	return nil
}

func (v *bundleVerifier) checkSignature(manifest, sig []byte) {
	for _, k := range v.opts.Keys {
		if checkSignature(k, manifest, sig) == nil {
			return
		}
	}
	if v.trusted(v.m.SignedBy) == nil {
		v.r.fail("%s: the manifest says it was signed by key %s, which is not a trusted key, and no trusted key verifies it", FileSignature, v.m.SignedBy)
		return
	}
	v.r.fail("%s: the signature of %s does not verify with the trusted key %s", FileSignature, FileManifest, v.m.SignedBy)
}

// checkFiles compares every file with the manifest, and SHA256SUMS too.
func (v *bundleVerifier) checkFiles() {
	v.present = map[string]bool{}
	listed := map[string]bool{FileManifest: true, FileSignature: true}
	for _, f := range v.m.Files {
		listed[f.Name] = true
		sum, n, err := hashFile(v.fs, f.Name)
		switch {
		case err != nil:
			v.r.fail("%s: listed in the manifest but %v", f.Name, err)
		case sum != f.SHA256 || n != f.Bytes:
			v.r.fail("%s: its SHA-256 %s (%d bytes) differs from the manifest's %s (%d bytes)", f.Name, sum, n, f.SHA256, f.Bytes)
		default:
			v.present[f.Name] = true
			v.r.Files++
		}
	}
	_ = fs.WalkDir(v.fs, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !listed[p] {
			v.r.fail("%s: not listed in the manifest", p)
		}
		return nil
	})
	sums, err := fs.ReadFile(v.fs, FileSums)
	if err != nil {
		return // reported above
	}
	var want bytes.Buffer
	for _, f := range v.m.Files {
		if f.Name != FileSums {
			fmt.Fprintf(&want, "%s  %s\n", f.SHA256, f.Name)
		}
	}
	if !bytes.Equal(sums, want.Bytes()) {
		v.r.fail("%s: differs from the files listed in the manifest", FileSums)
	}
}

func hashFile(fsys fs.FS, name string) (string, int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkCheckpoint checks the checkpoint's signature by the key in force; it
// reports whether there is a root to check proofs against.
func (v *bundleVerifier) checkCheckpoint() bool {
	note := []byte(v.m.Checkpoint)
	if b, err := fs.ReadFile(v.fs, FileCheckpoint); err == nil && !bytes.Equal(b, note) {
		v.r.fail("%s: differs from the checkpoint in the manifest", FileCheckpoint)
	}
	cp, err := ledger.ParseCheckpoint(note)
	if err != nil {
		v.r.fail("%s: %v", FileCheckpoint, err)
		return false
	}
	v.r.Checkpoint, v.root, v.size = cp, cp.Root, cp.Size
	pub := v.trusted(v.m.Key.Fingerprint)
	if pub == nil {
		v.r.fail("%s: the key in force at size %d is %s, which is not a trusted key", FileCheckpoint, cp.Size, v.m.Key.Fingerprint)
		return true
	}
	if _, err := ledger.VerifyCheckpoint(note, v.m.Origin, pub); err != nil {
		v.r.fail("%s: %v", FileCheckpoint, err)
	}
	return true
}

var hasher = rfc6962.DefaultHasher

// lines calls fn with each line of a bundle file (without its newline) and
// its number from 1. The line is only valid during the call.
func lines(fsys fs.FS, name string, fn func(n int, line []byte) error) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<28)
	for n := 1; s.Scan(); n++ {
		if err := fn(n, s.Bytes()); err != nil {
			return err
		}
	}
	return s.Err()
}

// checkEvents checks events.jsonl: its seqs, and that its leaves lead to the
// checkpoint's root (range proof) or each has a valid inclusion proof.
func (v *bundleVerifier) checkEvents() error {
	m := v.m
	f := filter{m.Parameters.Source, m.Parameters.Model}
	if m.Complete != f.none() {
		v.r.fail("%s: complete is %t but the export filter is source %q model %q", FileManifest, m.Complete, f.source, f.model)
	}
	if m.Range.First < 0 || m.Range.Last < m.Range.First-1 || m.Range.Last >= v.size {
		v.r.fail("%s: range %d..%d is not within the checkpoint's tree of size %d", FileManifest, m.Range.First, m.Range.Last, v.size)
		return nil
	}
	var rng *compact.Range
	if m.Complete {
		if m.RangeProof == nil || m.RangeProof.Size != v.size {
			v.r.fail("%s: a complete export needs a range proof for the checkpoint's size %d", FileManifest, v.size)
			return nil
		}
		left, err := unhexList(m.RangeProof.Left)
		if err == nil {
			rng, err = compactFactory.NewRange(0, uint64(m.Range.First), left)
		}
		if err != nil {
			v.r.fail("%s: range proof [0, %d): %v", FileManifest, m.Range.First, err)
			return nil
		}
	}
	var proofs *bufio.Scanner
	if !m.Complete {
		pf, err := v.fs.Open(FileProofs)
		if err != nil {
			v.r.fail("%s: a filtered export needs %s: %v", FileManifest, FileProofs, err)
			return nil
		}
		defer pf.Close()
		proofs = bufio.NewScanner(pf)
		proofs.Buffer(make([]byte, 64<<10), 1<<20)
	}
	next, count, bad := m.Range.First, int64(0), false
	err := lines(v.fs, FileEvents, func(n int, leaf []byte) error {
		count++
		h, err := parseHead(leaf)
		if err != nil {
			v.r.fail("%s line %d: %v", FileEvents, n, err)
			bad = true
			return errStop
		}
		if m.Complete {
			if h.seq != next {
				v.r.fail("%s line %d: seq %d where seq %d was expected (an entry is missing or out of place)", FileEvents, n, h.seq, next)
				bad = true
				return errStop
			}
			next++
			lh := ledger.LeafHash(leaf)
			return rng.Append(lh[:], nil)
		}
		if h.seq < next || h.seq > m.Range.Last {
			v.r.fail("%s line %d: seq %d is out of order or outside %d..%d", FileEvents, n, h.seq, m.Range.First, m.Range.Last)
			return nil
		}
		next = h.seq + 1
		if !f.matches(h) {
			v.r.fail("%s line %d (seq %d): does not match the export's filter", FileEvents, n, h.seq)
		}
		var p EntryProof
		if !proofs.Scan() || json.Unmarshal(proofs.Bytes(), &p) != nil {
			v.r.fail("%s line %d: no inclusion proof for %s line %d (seq %d)", FileProofs, n, FileEvents, n, h.seq)
			return errStop
		}
		if err := v.inclusion(h.seq, leaf, p); err != nil {
			v.r.fail("%s line %d (seq %d): %v", FileEvents, n, h.seq, err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		v.r.fail("%s: %v", FileEvents, err)
		return nil
	}
	v.r.Events = count
	if count != m.Range.Exported {
		v.r.fail("%s: %d lines, the manifest says %d", FileEvents, count, m.Range.Exported)
	}
	if bad || !m.Complete {
		if proofs != nil && proofs.Scan() {
			v.r.fail("%s: more proofs than %s has lines", FileProofs, FileEvents)
		}
		return nil
	}
	if next != m.Range.Last+1 {
		v.r.fail("%s: ends at seq %d, the range ends at seq %d (entries are missing)", FileEvents, next-1, m.Range.Last)
		return nil
	}
	right, err := unhexList(m.RangeProof.Right)
	var rr *compact.Range
	if err == nil {
		rr, err = compactFactory.NewRange(uint64(m.Range.Last+1), uint64(v.size), right)
	}
	if err == nil {
		err = rng.AppendRange(rr, nil)
	}
	var root []byte
	if err == nil {
		root, err = rng.GetRootHash(nil)
	}
	switch {
	case err != nil:
		v.r.fail("%s: range proof [%d, %d): %v", FileManifest, m.Range.Last+1, v.size, err)
	case !bytes.Equal(root, v.root):
		v.r.fail("%s: its entries and the manifest's range proof do not lead to the checkpoint's root: an entry was changed", FileEvents)
	}
	return nil
}

var errStop = errors.New("stop")

var compactFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// inclusion checks an inclusion proof of leaf (entry seq) in the
// checkpoint's tree.
func (v *bundleVerifier) inclusion(seq int64, leaf []byte, p EntryProof) error {
	lh := ledger.LeafHash(leaf)
	if p.Seq != seq {
		return fmt.Errorf("the proof is for seq %d", p.Seq)
	}
	if p.LeafHash != hex.EncodeToString(lh[:]) {
		return fmt.Errorf("leaf hash %x differs from the proof's %s", lh, p.LeafHash)
	}
	nodes, err := unhexList(p.Proof)
	if err != nil {
		return err
	}
	if err := proof.VerifyInclusion(hasher, uint64(seq), uint64(v.size), lh[:], nodes, v.root); err != nil {
		return fmt.Errorf("inclusion proof fails: %v", err)
	}
	return nil
}

// checkCarryIn checks each line of carry_in.jsonl against its proof.
func (v *bundleVerifier) checkCarryIn() error {
	proofs := v.m.CarryIn
	var n int
	err := lines(v.fs, FileCarryIn, func(line int, leaf []byte) error {
		n = line
		h, err := parseHead(leaf)
		if err != nil {
			v.r.fail("%s line %d: %v", FileCarryIn, line, err)
			return nil
		}
		switch k := string(h.kind); {
		case k != policy.KindProductionChanged && k != kindConfigApplied:
			v.r.fail("%s line %d (seq %d): a %s entry cannot be carried in", FileCarryIn, line, h.seq, k)
		case h.seq >= v.m.Range.First:
			v.r.fail("%s line %d (seq %d): not before the range (first seq %d)", FileCarryIn, line, h.seq, v.m.Range.First)
		}
		if line > len(proofs) {
			v.r.fail("%s line %d (seq %d): no carry-in proof in the manifest", FileCarryIn, line, h.seq)
			return nil
		}
		if err := v.inclusion(h.seq, leaf, proofs[line-1]); err != nil {
			v.r.fail("%s line %d (seq %d): %v", FileCarryIn, line, h.seq, err)
			return nil
		}
		v.r.CarryIn++
		return nil
	})
	if err != nil {
		v.r.fail("%s: %v", FileCarryIn, err)
		return nil
	}
	if n < len(proofs) {
		v.r.fail("%s: %d lines, the manifest proves %d", FileCarryIn, n, len(proofs))
	}
	return nil
}

// verifyKept checks a kept checkpoint's signature with any trusted key.
func (v *bundleVerifier) verifyKept(note []byte) (ledger.Checkpoint, error) {
	var last error
	for _, k := range v.opts.Keys {
		cp, err := ledger.VerifyCheckpoint(note, v.m.Origin, k)
		if err == nil {
			return cp, nil
		}
		last = err
	}
	return ledger.Checkpoint{}, fmt.Errorf("no trusted key verifies it: %w", last)
}

// checkConsistency checks the manifest's consistency proof and that the
// bundle's checkpoint extends every kept checkpoint given.
func (v *bundleVerifier) checkConsistency() error {
	var proven *ledger.Checkpoint
	if c := v.m.Consistency; c != nil {
		old, err := v.verifyKept([]byte(c.Checkpoint))
		if err == nil && old.Size != c.Size {
			err = fmt.Errorf("its size is %d, the proof's %d", old.Size, c.Size)
		}
		if err == nil {
			var nodes [][]byte
			if nodes, err = unhexList(c.Proof); err == nil {
				err = proof.VerifyConsistency(hasher, uint64(old.Size), uint64(v.size), nodes, old.Root, v.root)
			}
		}
		if err != nil {
			v.r.fail("%s: consistency proof from the checkpoint at size %d: %v", FileManifest, c.Size, err)
		} else {
			proven = &old
		}
	}
	for _, note := range v.opts.Checkpoints {
		kept, err := v.verifyKept(note)
		switch {
		case err != nil:
			v.r.fail("kept checkpoint: %v", err)
		case kept.Size > v.size:
			v.r.fail("kept checkpoint at size %d: newer than the bundle's checkpoint (size %d)", kept.Size, v.size)
		case kept.Size == v.size:
			if !bytes.Equal(kept.Root, v.root) {
				v.r.fail("kept checkpoint at size %d: its root differs from the bundle's checkpoint: the ledger was rewritten", kept.Size)
			} else {
				v.r.Extends++
			}
		case proven == nil || proven.Size != kept.Size:
			v.r.fail("kept checkpoint at size %d: the bundle carries no consistency proof from it (export with -since-checkpoint set to it)", kept.Size)
		case !bytes.Equal(proven.Root, kept.Root):
			v.r.fail("kept checkpoint at size %d: its root differs from the one the bundle proves: the ledger was rewritten", kept.Size)
		default:
			v.r.Extends++
		}
	}
	return nil
}

// comparer is a writer that compares what is written with a file of the
// bundle and remembers the first line that differs.
type comparer struct {
	name string
	r    *bufio.Reader
	c    io.Closer
	line int
	bad  int
}

func (v *bundleVerifier) comparer(name string) *comparer {
	c := &comparer{name: name, line: 1}
	f, err := v.fs.Open(name)
	if err != nil {
		c.r = bufio.NewReader(bytes.NewReader(nil))
		return c
	}
	c.r, c.c = bufio.NewReaderSize(f, 64<<10), f
	return c
}

func (c *comparer) Write(p []byte) (int, error) {
	if c.bad > 0 {
		return len(p), nil
	}
	for _, b := range p {
		got, err := c.r.ReadByte()
		if err != nil || got != b {
			c.bad = c.line
			return len(p), nil
		}
		if b == '\n' {
			c.line++
		}
	}
	return len(p), nil
}

// result names the first line that differs, or "" when the file matches.
func (c *comparer) result() string {
	defer func() {
		if c.c != nil {
			c.c.Close()
		}
	}()
	if c.bad == 0 {
		if _, err := c.r.ReadByte(); err == io.EOF {
			return ""
		}
		c.bad = c.line
	}
	return fmt.Sprintf("%s line %d: differs from what %s and %s derive (a row was changed, added or removed)", c.name, c.bad, FileEvents, FileCarryIn)
}

// checkDerived derives the CSV files again from the bundle's entries and
// compares them with the files, and the counts with the manifest's.
func (v *bundleVerifier) checkDerived() error {
	m := v.m
	d := newDeriver(period{m.Parameters.From, m.Parameters.To})
	var carry [][]byte
	err := lines(v.fs, FileCarryIn, func(_ int, leaf []byte) error {
		if _, err := parseHead(leaf); err == nil {
			carry = append(carry, bytes.Clone(leaf))
		}
		return nil
	})
	if err != nil {
		return nil // reported by checkCarryIn
	}
	fail := func(err error) error {
		v.r.fail("cannot derive the files from %s: %v", FileEvents, err)
		return nil
	}
	for _, leaf := range carry {
		if err := d.pre(leaf, true); err != nil {
			return fail(err)
		}
	}
	if err := lines(v.fs, FileEvents, func(_ int, leaf []byte) error { return d.pre(leaf, false) }); err != nil {
		return fail(err)
	}
	cmp := map[string]*comparer{}
	for _, n := range []string{FilePopulation, FileExceptions, FileHistory, FileCoverage, FileInventory} {
		cmp[n] = v.comparer(n)
	}
	if err := d.start(outputs{population: cmp[FilePopulation], exceptions: cmp[FileExceptions], history: cmp[FileHistory],
		coverage: cmp[FileCoverage], inventory: cmp[FileInventory]}); err != nil {
		return fail(err)
	}
	for _, leaf := range carry {
		if err := d.carryIn(leaf); err != nil {
			return fail(err)
		}
	}
	if err := lines(v.fs, FileEvents, func(_ int, leaf []byte) error { return d.entry(leaf) }); err != nil {
		return fail(err)
	}
	if err := d.finish(); err != nil {
		return fail(err)
	}
	for _, n := range slices.Sorted(maps.Keys(cmp)) {
		if p := cmp[n].result(); p != "" {
			v.r.fail("%s", p)
		}
	}
	if d.entries != m.Range.Entries || d.boundary != m.Range.Boundary || d.rows != m.Population {
		v.r.fail("%s: says %d entries in the period, %d at its boundary and %d population rows; %s holds %d, %d and %d",
			FileManifest, m.Range.Entries, m.Range.Boundary, m.Population, FileEvents, d.entries, d.boundary, d.rows)
	}
	if !countsEqual(d.countsByKind(), m.Counts) {
		v.r.fail("%s: the counts per source and kind differ from those of %s", FileManifest, FileEvents)
	}
	if !slices.Equal(d.configs, m.ConfigApplied) {
		v.r.fail("%s: config_applied differs from the config.applied entries of %s and %s", FileManifest, FileCarryIn, FileEvents)
	}
	return nil
}

func countsEqual(a, b map[string]map[string]int64) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]int64) bool { return maps.Equal(x, y) })
}

func (v *bundleVerifier) checkXLSX() error {
	x, err := v.fs.Open(FileXLSX)
	if err != nil {
		v.r.fail("%s: %v", FileXLSX, err)
		return nil
	}
	defer x.Close()
	c, err := v.fs.Open(FilePopulation)
	if err != nil {
		return nil // reported with the files
	}
	defer c.Close()
	if err := compareXLSX(x, c); err != nil {
		v.r.fail("%s: %v", FileXLSX, err)
	}
	return nil
}

// checkSamples checks that the sample is the rows of smallest rank, and
// every packet's entries and proofs.
func (v *bundleVerifier) checkSamples() error {
	m := v.m
	var want []int64
	if m.Parameters.Sample > 0 {
		f, err := v.fs.Open(FilePopulation)
		if err != nil {
			return nil // reported with the files
		}
		rows, err := selectSample(f, m.Parameters.Seed, m.Parameters.Sample)
		f.Close()
		if err != nil {
			v.r.fail("%v", err)
			return nil
		}
		for _, s := range rows {
			want = append(want, s.seq)
		}
	}
	if !slices.Equal(want, m.Samples) {
		v.r.fail("%s: samples %v are not the %d rows of %s with the smallest rank for seed %q (%v)", FileManifest, m.Samples, m.Parameters.Sample, FilePopulation, m.Parameters.Seed, want)
	}
	dirs := map[string]bool{}
	if entries, err := fs.ReadDir(v.fs, DirSamples); err == nil {
		for _, e := range entries {
			dirs[e.Name()] = true
		}
	}
	for _, seq := range m.Samples {
		name := strconv.FormatInt(seq, 10)
		if !dirs[name] {
			v.r.fail("%s/%s: missing", DirSamples, name)
			continue
		}
		delete(dirs, name)
		v.checkPacket(seq)
		v.r.Samples++
	}
	for _, name := range slices.Sorted(maps.Keys(dirs)) {
		v.r.fail("%s/%s: not a sampled row", DirSamples, name)
	}
	return nil
}

func (v *bundleVerifier) checkPacket(seq int64) {
	dir := path.Join(DirSamples, strconv.FormatInt(seq, 10))
	b, err := fs.ReadFile(v.fs, path.Join(dir, sampleProofs))
	var pp packetProofs
	if err == nil {
		err = json.Unmarshal(b, &pp)
	}
	if err != nil {
		v.r.fail("%s/%s: %v", dir, sampleProofs, err)
		return
	}
	if pp.TreeSize != v.size {
		v.r.fail("%s/%s: proofs for tree size %d, the checkpoint's is %d", dir, sampleProofs, pp.TreeSize, v.size)
		return
	}
	entriesFile := path.Join(dir, sampleEntries)
	var n int
	var finding bool
	err = lines(v.fs, entriesFile, func(line int, leaf []byte) error {
		n = line
		h, err := parseHead(leaf)
		if err != nil {
			v.r.fail("%s line %d: %v", entriesFile, line, err)
			return nil
		}
		if line > len(pp.Entries) {
			v.r.fail("%s line %d (seq %d): no proof", entriesFile, line, h.seq)
			return nil
		}
		p := pp.Entries[line-1]
		if err := v.inclusion(h.seq, leaf, EntryProof{Seq: p.Seq, LeafHash: p.LeafHash, Proof: p.Proof}); err != nil {
			v.r.fail("%s line %d (seq %d): %v", entriesFile, line, h.seq, err)
			return nil
		}
		if p.Role == roleFinding && h.seq == seq {
			finding = true
		}
		return nil
	})
	if err != nil {
		v.r.fail("%s: %v", entriesFile, err)
		return
	}
	if n != len(pp.Entries) {
		v.r.fail("%s: %d lines, %s has %d proofs", entriesFile, n, sampleProofs, len(pp.Entries))
	}
	if !finding {
		v.r.fail("%s: does not hold the finding at seq %d", entriesFile, seq)
	}
}
