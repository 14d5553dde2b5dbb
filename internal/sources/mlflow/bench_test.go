package mlflow

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		})
	}
	return g.Wait()
}

// BenchmarkSnapshot polls a fake registry of 1,000 models x 10 versions at
// concurrency 8, and beside it replays the exact request list the client
// made, with plain GETs at the same concurrency and bodies discarded.
func BenchmarkSnapshot(b *testing.B) {
	clk := clock.NewFake(time.UnixMilli(1795960124449))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk})
	populate(b, fake, clk, 1000, 10)
	srv := fake.Start()
	defer srv.Close()

	rec := &recorder{next: benchTransport()}
	c, err := New(config.Source{Name: "bench", Type: sources.TypeMLflow, URL: srv.URL, Concurrency: 8},
		Options{HTTPClient: &http.Client{Transport: rec}, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Snapshot(ctx, sources.Previous{})
	if err != nil {
		b.Fatal(err)
	}
	if m, v := res.Snapshot.Counts(); m != 1000 || v != 10000 {
		b.Fatalf("snapshot has %d models and %d versions", m, v)
	}
	urls := rec.take()
	raw := &http.Client{Transport: benchTransport()}
	if err := replay(raw, urls, 8); err != nil {
		b.Fatal(err)
	}

	var ours, plain time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := c.Snapshot(ctx, sources.Previous{Snapshot: res.Snapshot}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := replay(raw, urls, 8); err != nil {
			b.Fatal(err)
		}
		ours += t1.Sub(t0)
		plain += time.Since(t1)
		rec.take()
	}
	b.StopTimer()
	b.ReportMetric(float64(len(urls)), "requests/op")
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ns/snapshot")
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "ns/raw")
	b.ReportMetric(float64(plain)/float64(ours), "x_raw")
	b.ReportMetric(100*(float64(ours)-float64(plain))/float64(plain), "overhead_%")
}
