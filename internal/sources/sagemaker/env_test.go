package sagemaker

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
)

// env is a Client polling a fake on a fake clock.
type env struct {
	t      testing.TB
	clk    *clock.Fake
	fake   *sagemakerfake.Fake
	srv    *httptest.Server
	cfg    config.Source
	client *Client
	logs   *syncBuffer
	prev   sources.Previous

	mu        sync.Mutex
	capturing bool
	captured  []rawRequest
}

// rawRequest is one request as the client sent it.
type rawRequest struct {
	target string
	body   []byte
}

var epoch0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, mod func(*config.Source)) *env {
	t.Helper()
	clk := clock.NewFake(epoch0)
	f := sagemakerfake.New(clk, sagemakerfake.Options{})
	e := &env{t: t, clk: clk, fake: f, logs: &syncBuffer{}}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	cfg := config.Source{
		Name:     "sm-test",
		Type:     sources.TypeSageMaker,
		Region:   sagemakerfake.DefaultRegion,
		Endpoint: srv.URL,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.srv, e.cfg = srv, cfg
	e.client = e.newClient()
	return e
}

// ServeHTTP passes requests to the fake, keeping a copy while capturing.
func (e *env) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	capturing := e.capturing
	e.mu.Unlock()
	if capturing {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.mu.Lock()
		e.captured = append(e.captured, rawRequest{r.Header.Get("X-Amz-Target"), body})
		e.mu.Unlock()
	}
	e.fake.ServeHTTP(w, r)
}

// capture starts or stops keeping the requests sent; starting clears them.
func (e *env) capture(on bool) []rawRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.capturing = on
	out := e.captured
	if on {
		e.captured = nil
	}
	return out
}

// newClient returns a fresh Client on the env (a restarted daemon).
func (e *env) newClient() *Client {
	e.t.Helper()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(e.t.Context(), e.cfg, Options{
		Clock:       e.clk,
		Logger:      logger,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "not-a-secret", ""),
	})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return c
}

// poll takes one snapshot, moving the fake clock whenever the client waits
// on it (rate limit, retry backoff). A successful result becomes prev.
func (e *env) poll() (sources.Result, error) {
	e.t.Helper()
	var (
		res sources.Result
		err error
	)
	drive(e.clk, func() { res, err = e.client.Snapshot(e.t.Context(), e.prev) })
	if err == nil {
		e.prev = sources.Previous{Snapshot: res.Snapshot, Aux: res.Aux}
	}
	return res, err
}

// mustPoll is poll failing the test on error.
func (e *env) mustPoll() sources.Result {
	e.t.Helper()
	res, err := e.poll()
	if err != nil {
		e.t.Fatalf("Snapshot: %v", err)
	}
	return res
}

// drive runs fn, advancing clk to the next timer deadline whenever a timer
// is pending, until fn returns.
func drive(clk *clock.Fake, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	for {
		select {
		case <-done:
			return
		case <-clk.WaitForTimers(1):
			if d, ok := clk.NextDeadline(); ok {
				clk.Set(d)
			}
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
