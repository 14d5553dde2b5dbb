package wandb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// recorder keeps the requests a client sends, to replay them raw.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	on   bool
	reqs []recorded
}

type recorded struct {
	url    string
	header http.Header
	body   []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if r.on {
		var body []byte
		if req.Body != nil {
			body, _ = io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		r.reqs = append(r.reqs, recorded{url: req.URL.String(), header: req.Header.Clone(), body: body})
	}
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// BenchmarkPollUnchanged polls an unchanged registry of 200 collections x 20
// versions (and, as DESIGN.md section 9 budgets, 1,000 x 10), reporting the
// requests per poll and the time of a poll against replaying the identical
// request list with the bodies discarded (x_raw: poll time / raw time).
func BenchmarkPollUnchanged(b *testing.B) {
	for _, size := range []struct{ collections, versions int }{{200, 20}, {1000, 10}} {
		for _, history := range []bool{false, true} {
			b.Run(fmt.Sprintf("%dx%d/history=%v", size.collections, size.versions, history), func(b *testing.B) {
				benchPoll(b, size.collections, size.versions, history)
			})
		}
	}
}

func benchPoll(b *testing.B, collections, versions int, history bool) {
	e := newEnv(b, history, nil)
	populate(b, e.fake, collections, versions)
	rec := &recorder{next: e.hs.Client().Transport}
	hc := &http.Client{Transport: rec}
	cfg := testConfig(e.hs.URL)
	c, err := New(cfg, Options{HTTPClient: hc, Clock: e.clk})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	first, err := c.Snapshot(ctx, sources.Previous{}) // resolves the organization, probes
	if err != nil {
		b.Fatal(err)
	}
	prev := sources.Previous{Snapshot: first.Snapshot, Aux: first.Aux}
	rec.on = true
	if _, err := c.Snapshot(ctx, prev); err != nil {
		b.Fatal(err)
	}
	rec.on = false
	want, _ := first.Snapshot.Digest()

	// The client has one listing request in flight at a time (it requests
	// the next page as soon as a body arrives, and decodes meanwhile); the
	// replay sends the same requests one after the other.
	replay := func() {
		for _, r := range rec.reqs {
			req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(r.body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header = r.header.Clone()
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("raw replay: HTTP %d", resp.StatusCode)
			}
		}
	}

	// Polls and raw replays alternate, so that both see the same machine load.
	var requests int
	var polled, raw time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := c.Snapshot(ctx, prev)
		polled += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		requests = r.Requests
		b.StopTimer()
		if got, _ := r.Snapshot.Digest(); got != want {
			b.Fatal("unchanged registry gave another snapshot")
		}
		start = time.Now()
		replay()
		raw += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(requests), "requests/op")
	b.ReportMetric(float64(polled)/float64(raw), "x_raw")
}
