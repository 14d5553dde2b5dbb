package export

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrOutExists is returned when the bundle's destination exists and is not
// empty: an export never overwrites.
var ErrOutExists = errors.New("destination exists and is not empty")

// isZip reports whether a bundle path names a zip file.
func isZip(p string) bool { return strings.EqualFold(filepath.Ext(p), ".zip") }

// bundleWriter writes a bundle into a temporary directory beside its
// destination, hashing every file as it is written, and moves it into place
// (or zips it) only when everything is written.
type bundleWriter struct {
	out   string
	tmp   string
	files map[string]FileHash
}

func newBundleWriter(out string) (*bundleWriter, error) {
	if err := checkOut(out); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(filepath.Clean(out))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	return &bundleWriter{out: out, tmp: tmp, files: map[string]FileHash{}}, nil
}

// checkOut refuses a destination that exists and is not empty.
func checkOut(out string) error {
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("bundle destination: %w", err)
	case fi.IsDir():
		if isZip(out) {
			return fmt.Errorf("%s: %w (a directory)", out, ErrOutExists)
		}
		entries, err := os.ReadDir(out)
		if err != nil {
			return fmt.Errorf("bundle destination: %w", err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("%s: %w", out, ErrOutExists)
		}
	case !isZip(out):
		return fmt.Errorf("%s: %w (a file; name a directory, or a .zip file)", out, ErrOutExists)
	case fi.Size() > 0:
		return fmt.Errorf("%s: %w", out, ErrOutExists)
	}
	return nil
}

// bundleFile is a file being written into the bundle.
type bundleFile struct {
	b    *bundleWriter
	name string
	f    *os.File
	w    *bufio.Writer
	h    hash.Hash
	n    int64
}

// create starts the file name (slash-separated, relative to the bundle).
func (b *bundleWriter) create(name string) (*bundleFile, error) {
	p := filepath.Join(b.tmp, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return &bundleFile{b: b, name: name, f: f, w: bufio.NewWriterSize(f, 256<<10), h: sha256.New()}, nil
}

func (f *bundleFile) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.h.Write(p[:n])
	f.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", f.name, err)
	}
	return n, nil
}

// Close flushes and syncs the file and records its hash.
func (f *bundleFile) Close() error {
	err := f.w.Flush()
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.name, err)
	}
	f.b.files[f.name] = FileHash{Name: f.name, SHA256: hex.EncodeToString(f.h.Sum(nil)), Bytes: f.n}
	return nil
}

// abort closes the file without recording it (the bundle is being
// abandoned).
func (f *bundleFile) abort() { f.f.Close() }

// writeFile writes a whole file.
func (b *bundleWriter) writeFile(name string, data []byte) error {
	f, err := b.create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.abort()
		return err
	}
	return f.Close()
}

// path returns where a file of the bundle is while it is written.
func (b *bundleWriter) path(name string) string {
	return filepath.Join(b.tmp, filepath.FromSlash(name))
}

// hashes returns the files written so far, by name.
func (b *bundleWriter) hashes() []FileHash {
	out := make([]FileHash, 0, len(b.files))
	for _, f := range b.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// commit moves the finished bundle to its destination: a rename of the
// directory, or a zip written to a temporary file and renamed.
func (b *bundleWriter) commit() error {
	if err := syncDir(b.tmp); err != nil {
		return err
	}
	if !isZip(b.out) {
		if err := checkOut(b.out); err != nil {
			return err
		}
		// os.Rename refuses an existing directory, even an empty one:
		// remove it (os.Remove fails if something was written into it
		// meanwhile).
		if err := os.Remove(b.out); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("move bundle into place: %w", err)
		}
		if err := os.Rename(b.tmp, b.out); err != nil {
			return fmt.Errorf("move bundle into place: %w", err)
		}
		return syncDir(filepath.Dir(filepath.Clean(b.out)))
	}
	if err := b.zip(); err != nil {
		return err
	}
	return os.RemoveAll(b.tmp)
}

// zip writes the bundle as a zip whose entries sit in one folder named
// after the file.
func (b *bundleWriter) zip() error {
	parent := filepath.Dir(filepath.Clean(b.out))
	tmp, err := os.CreateTemp(parent, "."+filepath.Base(b.out)+".tmp-")
	if err != nil {
		return fmt.Errorf("create zip: %w", err)
	}
	defer os.Remove(tmp.Name())
	zw := zip.NewWriter(tmp)
	folder := strings.TrimSuffix(filepath.Base(b.out), filepath.Ext(b.out))
	err = filepath.WalkDir(b.tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(b.tmp, p)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: path.Join(folder, filepath.ToSlash(rel)), Method: zip.Deflate})
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	if err := checkOut(b.out); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), b.out); err != nil {
		return fmt.Errorf("move bundle into place: %w", err)
	}
	return syncDir(parent)
}

// abort removes the unfinished bundle.
func (b *bundleWriter) abort() { os.RemoveAll(b.tmp) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
