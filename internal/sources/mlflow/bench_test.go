package mlflow

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// recorder is a RoundTripper that keeps the URL of every request.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.urls
	r.urls = nil
	return u
}

func benchTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return tr
}

// populate fills the fake with models x versions, each model with tags, an
// alias and versions in every stage.
func populate(tb testing.TB, s *mlflowfake.Server, clk *clock.Fake, models, versions int) {
	tb.Helper()
	for i := 0; i < models; i++ {
		name := fmt.Sprintf("model-%04d", i)
		if err := s.CreateModel(name, mlflowfake.ModelSpec{Description: "model " + name,
			Tags: []mlflowfake.Tag{{Key: "team", Value: "risk"}, {Key: "owner", Value: "alice@example.com"}}}); err != nil {
			tb.Fatal(err)
		}
		for v := 1; v <= versions; v++ {
			clk.Advance(time.Millisecond)
			if _, err := s.CreateVersion(name, mlflowfake.VersionSpec{Source: fmt.Sprintf("s3://bucket/%s/%d", name, v),
				RunID: fmt.Sprintf("run%d", v), Description: "trained",
				Tags: []mlflowfake.Tag{{Key: "git_sha", Value: "3f2c1aa"}}}); err != nil {
				tb.Fatal(err)
			}
		}
		must(tb, s.TransitionStage(name, fmt.Sprint(versions), mlflowfake.StageProduction, false))
		if versions > 1 {
			must(tb, s.TransitionStage(name, fmt.Sprint(versions-1), mlflowfake.StageStaging, false))
			must(tb, s.SetAlias(name, "champion", fmt.Sprint(versions-1)))
		}
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// replay sends the urls with plain GETs at the given concurrency and
// discards the bodies.
func replay(client *http.Client, urls []string, concurrency int) error {
	var g errgroup.Group
	g.SetLimit(concurrency)
	for _, u := range urls {
		g.Go(func() error {
			resp, err := client.Get(u)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", u, resp.Status)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		})
	}
	return g.Wait()
}

// sameRequests reports whether a and b hold the same URLs, in any order.
func sameRequests(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// helperRegistryEnv tells the test binary, run as a child process, to serve
// the benchmark's registry (see TestHelperRegistry).
const helperRegistryEnv = "REGISTRYWATCH_MLFLOW_BENCH_REGISTRY"

// TestHelperRegistry is the registry process of BenchmarkSnapshot: with
// helperRegistryEnv set to "<models>x<versions>", it fills a fake registry,
// prints its URL and serves it until its standard input closes. Otherwise it
// does nothing.
func TestHelperRegistry(t *testing.T) {
	spec := os.Getenv(helperRegistryEnv)
	if spec == "" {
		return
	}
	var models, versions int
	if _, err := fmt.Sscanf(spec, "%dx%d", &models, &versions); err != nil {
		t.Fatalf("%s=%q: %v", helperRegistryEnv, spec, err)
	}
	clk := clock.NewFake(time.UnixMilli(1795960124449))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk})
	populate(t, fake, clk, models, versions)
	srv := fake.Start()
	defer srv.Close()
	fmt.Println(srv.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startRegistry runs TestHelperRegistry in a child process and returns the
// registry's URL. The registry runs in its own process so that its work
// (the fake's JSON encoding, its garbage collection) weighs the same on both
// sides of the comparison.
func startRegistry(b *testing.B, models, versions int) string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRegistry$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%dx%d", helperRegistryEnv, models, versions))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(b, err)
	stdout, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		b.Fatalf("registry process: %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return strings.TrimSpace(line)
}

// BenchmarkSnapshot polls a fake registry of 1,000 models x 10 versions at
// concurrency 8, and beside it replays the exact request list the client
// made, with plain GETs at the same concurrency and bodies discarded. Each
// poll passes the last snapshot, as the daemon does (deletions are
// confirmed against it), on an unchanged registry: the daemon's steady
// state. The two sides alternate which goes first. x_raw is the raw time
// over ours (higher is better) and overhead_pct ours over raw, minus 100%,
// both from the medians of the polls and the replays.
func BenchmarkSnapshot(b *testing.B) { benchmarkSnapshot(b, false) }

// BenchmarkSnapshotCold is BenchmarkSnapshot with the client's cache of
// the last poll emptied before each poll, as at the first poll after a start
// or after a change anywhere in the registry: every answer is decoded and
// every model built.
func BenchmarkSnapshotCold(b *testing.B) { benchmarkSnapshot(b, true) }

func benchmarkSnapshot(b *testing.B, cold bool) {
	url := startRegistry(b, 1000, 10)
	rec := &recorder{next: benchTransport()}
	c, err := New(config.Source{Name: "bench", Type: sources.TypeMLflow, URL: url, Concurrency: 8},
		Options{HTTPClient: &http.Client{Transport: rec}})
	must(b, err)
	ctx := context.Background()
	res, err := c.Snapshot(ctx, sources.Previous{})
	must(b, err)
	if m, v := res.Snapshot.Counts(); m != 1000 || v != 10000 {
		b.Fatalf("snapshot has %d models and %d versions", m, v)
	}
	urls := rec.take()
	raw := &http.Client{Transport: benchTransport()}
	must(b, replay(raw, urls, 8))

	var ours, plain []time.Duration
	poll := func() {
		if cold {
			c.cache.set(cacheState{})
		}
		t0 := time.Now()
		if _, err := c.Snapshot(ctx, sources.Previous{Snapshot: res.Snapshot}); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(t0))
		if got := rec.take(); !sameRequests(got, urls) {
			b.Fatalf("the poll sent %d requests, the one replayed %d: the registry changed", len(got), len(urls))
		}
	}
	replayed := func() {
		t0 := time.Now()
		must(b, replay(raw, urls, 8))
		plain = append(plain, time.Since(t0))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			poll()
			replayed()
		} else {
			replayed()
			poll()
		}
	}
	b.StopTimer()
	// Medians keep the figures stable on a machine shared with other work.
	o, r := median(ours), median(plain)
	b.ReportMetric(float64(len(urls)), "requests/op")
	b.ReportMetric(float64(o.Nanoseconds()), "ns/snapshot")
	b.ReportMetric(float64(r.Nanoseconds()), "ns/raw")
	b.ReportMetric(float64(r)/float64(o), "x_raw")
	b.ReportMetric(100*(float64(o)-float64(r))/float64(r), "overhead_pct")
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}
