package mlflow

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

type canned struct{ bodies map[string][]byte }

func (c *canned) RoundTrip(req *http.Request) (*http.Response, error) {
	b, ok := c.bodies[req.URL.String()]
	if !ok {
		return &http.Response{StatusCode: 404, Body: io.NopCloser(bytes.NewReader(nil)), Header: http.Header{}}, nil
	}
	b = bytes.Clone(b)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Header: http.Header{}}, nil
}

func BenchmarkZClient(b *testing.B) {
	clk := clock.NewFake(time.UnixMilli(1795960124449))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk})
	populate(b, fake, clk, 1000, 10)
	srv := fake.Start()
	rec := &recorder{next: benchTransport()}
	c, _ := New(config.Source{Name: "bench", Type: sources.TypeMLflow, URL: srv.URL, Concurrency: 8},
		Options{HTTPClient: &http.Client{Transport: rec}, Clock: clk})
	res, err := c.Snapshot(context.Background(), sources.Previous{})
	if err != nil {
		b.Fatal(err)
	}
	cn := &canned{bodies: map[string][]byte{}}
	for _, u := range rec.take() {
		resp, _ := http.Get(u)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cn.bodies[u] = body
	}
	srv.Close()
	for _, warm := range []bool{true, false} {
		name := "warm"
		if !warm {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			c, _ := New(config.Source{Name: "bench", Type: sources.TypeMLflow, URL: srv.URL, Concurrency: 8},
				Options{HTTPClient: &http.Client{Transport: cn}, Clock: clk})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if !warm {
					c.cache.set(cacheState{})
				}
				if _, err := c.Snapshot(context.Background(), sources.Previous{Snapshot: res.Snapshot}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type timedBody struct {
	io.ReadCloser
	t0   time.Time
	done *time.Duration
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		*b.done = time.Since(b.t0)
	}
	return n, err
}

type timer struct {
	next http.RoundTripper
	t0   time.Time
	hdr  map[string]time.Duration
	eof  map[string]*time.Duration
}

func (t *timer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	k := req.URL.Path[len(req.URL.Path)-8:]
	t.hdr[k] = time.Since(t.t0)
	d := new(time.Duration)
	t.eof[k] = d
	resp.Body = &timedBody{resp.Body, t.t0, d}
	return resp, err
}

func TestZTiming(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1795960124449))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk})
	populate(t, fake, clk, 1000, 10)
	srv := fake.Start()
	defer srv.Close()
	rec := &recorder{next: benchTransport()}
	tm := &timer{next: rec}
	c, _ := New(config.Source{Name: "bench", Type: sources.TypeMLflow, URL: srv.URL, Concurrency: 8},
		Options{HTTPClient: &http.Client{Transport: tm}, Clock: clk})
	tm.hdr, tm.eof = map[string]time.Duration{}, map[string]*time.Duration{}
	res, _ := c.Snapshot(context.Background(), sources.Previous{})
	urls := rec.take()
	rt := &timer{next: benchTransport()}
	raw := &http.Client{Transport: rt}
	for i := 0; i < 10; i++ {
		tm.hdr, tm.eof, tm.t0 = map[string]time.Duration{}, map[string]*time.Duration{}, time.Now()
		c.Snapshot(context.Background(), sources.Previous{Snapshot: res.Snapshot})
		ours := time.Since(tm.t0)
		rt.hdr, rt.eof, rt.t0 = map[string]time.Duration{}, map[string]*time.Duration{}, time.Now()
		replay(raw, urls, 8)
		plain := time.Since(rt.t0)
		rec.take()
		f := func(m map[string]time.Duration, e map[string]*time.Duration) string {
			s := ""
			for k, v := range m {
				s += fmt.Sprintf(" %s hdr %.1f eof %.1f", k, float64(v.Microseconds())/1000, float64(e[k].Microseconds())/1000)
			}
			return s
		}
		t.Logf("ours %.1f:%s | raw %.1f:%s", float64(ours.Microseconds())/1000, f(tm.hdr, tm.eof), float64(plain.Microseconds())/1000, f(rt.hdr, rt.eof))
	}
}
