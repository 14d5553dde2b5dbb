package sagemaker

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// BenchmarkPollUnchanged polls 100 groups × 50 packages where nothing
// changed, reports the requests per poll by operation (list calls and
// LookupEvents only: no describe), and the poll's time against the raw
// operation underneath: the identical requests sent by plain net/http at the
// same concurrency, bodies discarded (x_raw = poll / raw).
func BenchmarkPollUnchanged(b *testing.B) {
	e := newEnv(b, nil)
	e.fake.SetCloudTrailRateLimit(0) // the raw replay repeats lookups at one instant
	seed(b, e, 100, 50)
	e.mustPoll()
	e.clk.Advance(time.Hour)
	e.capture(true)
	e.mustPoll()
	reqs := e.capture(false)
	e.fake.ResetRequests()

	polls := 0
	start := time.Now()
	for b.Loop() {
		e.clk.Advance(time.Minute)
		e.mustPoll()
		polls++
	}
	pollTime := time.Since(start)

	counts := e.fake.Requests()
	if counts["DescribeModelPackage"] != 0 {
		b.Fatalf("%d describes while nothing changed", counts["DescribeModelPackage"])
	}
	for op, n := range counts {
		b.ReportMetric(float64(n)/float64(polls), op+"/poll")
	}

	replay := rawReplay(b, e.srv.URL, reqs, e.client.concurrency)
	start = time.Now()
	for range polls {
		replay()
	}
	rawTime := time.Since(start)
	b.ReportMetric(float64(pollTime)/float64(rawTime), "x_raw")
}

// rawReplay returns a function sending reqs as a poll does: the group list,
// then the package lists concurrency at a time, then the lookups.
func rawReplay(b *testing.B, url string, reqs []rawRequest, concurrency int) func() {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	send := func(r rawRequest) error {
		req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(r.body))
		if err != nil {
			return err
		}
		req.Header.Set("X-Amz-Target", r.target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return func() {
		var g errgroup.Group
		g.SetLimit(concurrency)
		for _, r := range reqs {
			if r.target == "SageMaker.ListModelPackages" {
				g.Go(func() error { return send(r) })
				continue
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			if err := send(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
