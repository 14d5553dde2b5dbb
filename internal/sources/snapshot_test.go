package sources

import (
	"bytes"
	"testing"

	"github.com/gowebpki/jcs"
)

func FuzzSnapshotCanonical(f *testing.F) {
	f.Add("fraud-detector", "a\u2028b<>&\"\\", "\\u2028", int64(3))
	f.Add("\xff\xfe", "\x00\x1f\b\f", "€𝄞", int64(-1))
	f.Fuzz(func(t *testing.T, name, desc, tag string, order int64) {
		if order > 1<<53-1 || order < -(1<<53-1) {
			order = 0
		}
		s := &Snapshot{Models: []Model{{
			Name: name, ID: name + "@x", Description: Str(desc),
			Tags:     []KV{{Key: tag, Value: desc}},
			Versions: []Version{{ID: "1", Order: order, Aliases: []string{desc}, Description: Str(tag)}},
		}}}
		s.Sort()
		b, err := s.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		want, err := jcs.Transform(b)
		if err != nil {
			t.Fatalf("jcs: %v on %q", err, b)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("not canonical:\n got %q\nwant %q", b, want)
		}
		back, err := ParseSnapshot(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := back.Canonical()
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed bytes")
		}
	})
}

func TestDigestStable(t *testing.T) {
	s := &Snapshot{}
	s.Sort()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d != DigestBytes([]byte(`{"models":[]}`)) {
		t.Fatalf("digest of empty snapshot = %s", d)
	}
}
