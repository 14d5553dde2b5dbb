// Package conformance is the test suite that every source runs against its
// in-process fake: empty registries, canonical and sorted snapshots, stable
// digests, confirmed deletions, failing endpoints and cancellation. A source
// package calls Run from a test with a Harness that builds the source on a
// fresh fake.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// Registry drives a source's fake generically.
type Registry interface {
	// CreateModel registers a model with no versions.
	CreateModel(name string) error
	// CreateVersion adds a version to a model and returns its version id as
	// the source reports it.
	CreateVersion(model string) (string, error)
	DeleteVersion(model, version string) error
	DeleteModel(name string) error
	SetModelTag(model, key, value string) error
	SetVersionTag(model, version, key, value string) error
	// Fail makes every request answer the HTTP status until restore is called.
	Fail(status int) (restore func())
	// Hang holds every request (until its context ends) until release is
	// called; Held reports how many requests are being held.
	Hang() (release func())
	Held() int
}

// Instance is a source polling a fresh, empty fake.
type Instance struct {
	Source   sources.Source
	Registry Registry
	// Clock is the fake clock of the source's retries; the suite moves it to
	// each deadline at most five minutes away (so the source's request
	// timeout must be longer than that).
	Clock *clock.Fake
}

// Harness builds instances.
type Harness struct {
	// New returns a source on a new, empty fake; it registers its cleanup on t.
	New func(t *testing.T) Instance
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, h.New(t)) })
	t.Run("Canonical", func(t *testing.T) { testCanonical(t, h.New(t)) })
	t.Run("StableDigest", func(t *testing.T) { testStable(t, h.New(t)) })
	t.Run("Deletions", func(t *testing.T) { testDeletions(t, h.New(t)) })
	t.Run("FailingEndpoint", func(t *testing.T) { testFailing(t, h.New(t)) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, h.New(t)) })
}

// poll runs one Snapshot, moving the clock through retry backoffs.
func poll(in Instance, prev *sources.Snapshot) (sources.Result, error) {
	type out struct {
		r   sources.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := in.Source.Snapshot(context.Background(), sources.Previous{Snapshot: prev})
		done <- out{r, err}
	}()
	for {
		select {
		case o := <-done:
			return o.r, o.err
		default:
			if d, ok := in.Clock.NextDeadline(); ok && d.Sub(in.Clock.Now()) <= 5*time.Minute {
				in.Clock.Set(d)
			}
			runtime.Gosched()
		}
	}
}

func mustPoll(t *testing.T, in Instance, prev *sources.Snapshot) *sources.Snapshot {
	t.Helper()
	res, err := poll(in, prev)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if res.Snapshot == nil {
		t.Fatal("snapshot: no snapshot and no error")
	}
	if res.Requests <= 0 {
		t.Errorf("snapshot reports %d requests", res.Requests)
	}
	checkCanonical(t, res.Snapshot)
	return res.Snapshot
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testEmpty(t *testing.T, in Instance) {
	if in.Source.Name() == "" {
		t.Error("source has no name")
	}
	switch in.Source.Type() {
	case sources.TypeMLflow, sources.TypeDatabricks, sources.TypeSageMaker, sources.TypeWandB:
	default:
		t.Errorf("unknown source type %q", in.Source.Type())
	}
	s := mustPoll(t, in, nil)
	b, err := s.Canonical()
	must(t, err)
	if string(b) != `{"models":[]}` {
		t.Errorf("empty registry gives %s", b)
	}
}

// populate creates three models: "conformance-a" with two versions and tags,
// "conformance-b" with one version, "conformance-c" with none.
func populate(t *testing.T, r Registry) (a1, a2, b1 string) {
	t.Helper()
	for _, n := range []string{"conformance-b", "conformance-a", "conformance-c"} {
		must(t, r.CreateModel(n))
	}
	var err error
	a1, err = r.CreateVersion("conformance-a")
	must(t, err)
	a2, err = r.CreateVersion("conformance-a")
	must(t, err)
	b1, err = r.CreateVersion("conformance-b")
	must(t, err)
	must(t, r.SetModelTag("conformance-a", "team", "risk"))
	must(t, r.SetVersionTag("conformance-a", a2, "approved_by", "bob@example.com"))
	return a1, a2, b1
}

// checkCanonical checks sorting and canonical encoding of a snapshot.
func checkCanonical(t *testing.T, s *sources.Snapshot) {
	t.Helper()
	b, err := s.Canonical()
	must(t, err)
	want, err := jcs.Transform(b)
	must(t, err)
	if !bytes.Equal(b, want) {
		t.Errorf("snapshot bytes are not RFC 8785 canonical:\n got %s\nwant %s", b, want)
	}
	again, err := sources.ParseSnapshot(b)
	must(t, err)
	again.Sort()
	b2, err := again.Canonical()
	must(t, err)
	if !bytes.Equal(b, b2) {
		t.Errorf("snapshot was not sorted:\n got %s\nsorted %s", b, b2)
	}
	names := map[string]bool{}
	for _, m := range s.Models {
		if m.Name == "" || m.ID == "" || names[m.Name] {
			t.Errorf("model with empty or duplicate name or id: %q %q", m.Name, m.ID)
		}
		names[m.Name] = true
		for i, v := range m.Versions {
			if v.ID == "" || v.Aliases == nil {
				t.Errorf("%s: version %q has no id or nil aliases", m.Name, v.ID)
			}
			if i > 0 && m.Versions[i-1].Order >= v.Order {
				t.Errorf("%s: versions not in strictly increasing order: %d then %d", m.Name, m.Versions[i-1].Order, v.Order)
			}
		}
	}
}

func find(s *sources.Snapshot, model, version string) (*sources.Model, *sources.Version) {
	for i := range s.Models {
		m := &s.Models[i]
		if m.Name != model {
			continue
		}
		for j := range m.Versions {
			if m.Versions[j].ID == version {
				return m, &m.Versions[j]
			}
		}
		return m, nil
	}
	return nil, nil
}

func hasKV(kv []sources.KV, key, value string) bool {
	for _, x := range kv {
		if x.Key == key && x.Value == value {
			return true
		}
	}
	return false
}

func testCanonical(t *testing.T, in Instance) {
	a1, a2, b1 := populate(t, in.Registry)
	s := mustPoll(t, in, nil)
	var names []string
	for _, m := range s.Models {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "conformance-a,conformance-b,conformance-c" {
		t.Fatalf("models %v", names)
	}
	counts := []int{2, 1, 0}
	for i, m := range s.Models {
		if len(m.Versions) != counts[i] {
			t.Errorf("%s has %d versions, want %d", m.Name, len(m.Versions), counts[i])
		}
	}
	for _, ref := range [][2]string{{"conformance-a", a1}, {"conformance-a", a2}, {"conformance-b", b1}} {
		if _, v := find(s, ref[0], ref[1]); v == nil {
			t.Errorf("version %s of %s missing", ref[1], ref[0])
		}
	}
	m, v := find(s, "conformance-a", a2)
	if m == nil || !hasKV(m.Tags, "team", "risk") {
		t.Errorf("model tag missing: %+v", m)
	}
	if v == nil || !hasKV(v.Tags, "approved_by", "bob@example.com") {
		t.Errorf("version tag missing: %+v", v)
	}
}

func testStable(t *testing.T, in Instance) {
	populate(t, in.Registry)
	first := mustPoll(t, in, nil)
	second := mustPoll(t, in, first)
	d1, err := first.Digest()
	must(t, err)
	d2, err := second.Digest()
	must(t, err)
	if d1 != d2 {
		b1, _ := first.Canonical()
		b2, _ := second.Canonical()
		t.Errorf("digest changed without registry changes:\n%s\n%s", b1, b2)
	}
}

func testDeletions(t *testing.T, in Instance) {
	a1, a2, _ := populate(t, in.Registry)
	prev := mustPoll(t, in, nil)
	must(t, in.Registry.DeleteVersion("conformance-a", a1))
	must(t, in.Registry.DeleteModel("conformance-b"))
	s := mustPoll(t, in, prev)
	if _, v := find(s, "conformance-a", a1); v != nil {
		t.Errorf("deleted version %s still reported", a1)
	}
	if _, v := find(s, "conformance-a", a2); v == nil {
		t.Errorf("version %s lost", a2)
	}
	if m, _ := find(s, "conformance-b", ""); m != nil {
		t.Errorf("deleted model still reported")
	}
	if m, _ := find(s, "conformance-c", ""); m == nil {
		t.Errorf("model conformance-c lost")
	}
}

func testFailing(t *testing.T, in Instance) {
	populate(t, in.Registry)
	prev := mustPoll(t, in, nil)
	for _, status := range []int{403, 503} {
		restore := in.Registry.Fail(status)
		res, err := poll(in, prev)
		restore()
		if err == nil || res.Snapshot != nil {
			t.Errorf("HTTP %d: got snapshot %v and error %v, want only an error", status, res.Snapshot != nil, err)
			continue
		}
		if !strings.Contains(err.Error(), in.Source.Name()) {
			t.Errorf("HTTP %d: error does not name the source: %v", status, err)
		}
	}
	mustPoll(t, in, prev)
}

func testCancel(t *testing.T, in Instance) {
	populate(t, in.Registry)
	release := in.Registry.Hang()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		res, err := in.Source.Snapshot(ctx, sources.Previous{})
		if err == nil && res.Snapshot != nil {
			err = errors.New("snapshot returned despite cancellation")
		}
		done <- err
	}()
	for in.Registry.Held() == 0 {
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled snapshot returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot did not return within 10s of cancellation")
	}
}
