package sources

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
)

// server answers with the handler of the n-th request (the last one repeats).
func server(t *testing.T, handlers ...http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		handlers[min(i, len(handlers)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

func newHTTP(t *testing.T, cfg config.Source, clk clock.Clock) *HTTP {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "src"
	}
	h, err := NewHTTP(cfg, HTTPOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitRetry runs fn in the background and returns the successive backoff
// waits it makes on the fake clock, firing each.
func waitRetry(t *testing.T, clk *clock.Fake, fn func() error) ([]time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	var waits []time.Duration
	for {
		select {
		case err := <-done:
			return waits, err
		default:
		}
		// A backoff is the only timer far from the attempt timeout (30s
		// default here, so waits are recognised by being pending alone).
		if d, ok := clk.NextDeadline(); ok && clk.Pending() == 1 && d.Sub(clk.Now()) != DefaultTimeout {
			waits = append(waits, d.Sub(clk.Now()))
			clk.Set(d)
		}
		runtime.Gosched()
	}
}

func TestRetryThenSuccess(t *testing.T) {
	srv, n := server(t, status(503, `{"error_code":"TEMPORARILY_UNAVAILABLE","message":"busy"}`),
		status(429, `{}`, "Retry-After", "120"), status(200, `{"ok":true}`))
	clk := clock.NewFake(time.Unix(1e9, 0))
	h := newHTTP(t, config.Source{URL: srv.URL}, clk)
	var out struct{ OK bool }
	waits, err := waitRetry(t, clk, func() error { return h.GetJSON(context.Background(), "/x", nil, &out) })
	if err != nil || !out.OK {
		t.Fatalf("err %v out %+v", err, out)
	}
	if n.Load() != 3 || h.Requests() != 3 {
		t.Errorf("%d requests served, %d counted", n.Load(), h.Requests())
	}
	if len(waits) != 2 || waits[0] < 250*time.Millisecond || waits[0] > 500*time.Millisecond || waits[1] != 120*time.Second {
		t.Errorf("waits %v, want a jittered 250-500ms then Retry-After 120s", waits)
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("date: %v", got)
	}
	for v, want := range map[string]time.Duration{"": 0, "-3": 0, "junk": 0, "7": 7 * time.Second, "999999": maxRetryAfter} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}

func TestBoundedAttempts(t *testing.T) {
	srv, n := server(t, status(502, "<html><title>502 Bad Gateway</title></html>"))
	clk := clock.NewFake(time.Unix(1e9, 0))
	h := newHTTP(t, config.Source{URL: srv.URL}, clk)
	waits, err := waitRetry(t, clk, func() error {
		return h.GetJSON(context.Background(), "/api/x", map[string][]string{"token": {"q-secret"}}, nil)
	})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 502 {
		t.Fatalf("err %v", err)
	}
	if n.Load() != DefaultMaxAttempts || len(waits) != DefaultMaxAttempts-1 {
		t.Errorf("%d attempts, %d waits", n.Load(), len(waits))
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1]/2*2-waits[i-1]/2 || waits[i] > 4*waits[i-1] {
			t.Errorf("waits do not grow exponentially: %v", waits)
		}
	}
	msg := err.Error()
	for _, want := range []string{`source "src"`, "GET /api/x", "HTTP 502", "HTML error page (502 Bad Gateway)", "after 4 attempts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "q-secret") || strings.Contains(msg, srv.URL) {
		t.Errorf("error shows the query or URL: %q", msg)
	}
}

func TestNoRetry(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		want string
	}{
		{404, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Model m not found"}`, "HTTP 404 RESOURCE_DOES_NOT_EXIST: Model m not found"},
		{400, `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad\n\tvalue"}`, "HTTP 400 INVALID_PARAMETER_VALUE: bad value"},
		{401, "", "HTTP 401: empty body"},
		{403, "Forbidden: token tok-very-secret is not allowed", `HTTP 403: body "Forbidden: token <secret> is not allowed"`},
	} {
		srv, n := server(t, status(tc.code, tc.body))
		h := newHTTP(t, config.Source{URL: srv.URL, Token: "tok-very-secret"}, clock.NewFake(time.Unix(1e9, 0)))
		err := h.GetJSON(context.Background(), "/p", nil, nil)
		if err == nil || n.Load() != 1 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: %d attempts, err %v, want %q", tc.code, n.Load(), err, tc.want)
		}
		if errors.Is(err, ErrNotFound) != (tc.code == 404) {
			t.Errorf("%d: errors.Is(ErrNotFound) wrong", tc.code)
		}
		if strings.Contains(err.Error(), "tok-very-secret") {
			t.Errorf("secret in error: %v", err)
		}
	}
}

func TestDecodeAndBodyErrors(t *testing.T) {
	big := strings.Repeat("x", 2048)
	srv, _ := server(t, status(200, "<!doctype html><title>Sign in</title>"), status(200, `{"a":`), status(200, `"`+big+`"`))
	h, err := NewHTTP(config.Source{Name: "s", URL: srv.URL}, HTTPOptions{Clock: clock.NewFake(time.Unix(1e9, 0)), MaxBody: 1024})
	if err != nil {
		t.Fatal(err)
	}
	var v any
	for _, want := range []string{"decode response", "decode response", "larger than 1024 bytes"} {
		err := h.GetJSON(context.Background(), "/p", nil, &v)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `source "s": GET /p`) {
			t.Errorf("err %v, want %q", err, want)
		}
	}
}

func TestAuthHeadersAndPost(t *testing.T) {
	var got http.Header
	var body string
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b := make([]byte, 100)
		k, _ := r.Body.Read(b)
		body = string(b[:k])
		fmt.Fprint(w, `{}`)
	})
	u := strings.Replace(srv.URL, "http://", "http://alice:pw-1234@", 1)
	h := newHTTP(t, config.Source{URL: u, Headers: map[string]config.Secret{"X-Org": "acme"}}, nil)
	if err := h.PostJSON(context.Background(), "/post", map[string]int{"n": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if user, pw, ok := (&http.Request{Header: got}).BasicAuth(); !ok || user != "alice" || pw != "pw-1234" {
		t.Errorf("basic auth %q %q %v", user, pw, ok)
	}
	if got.Get("X-Org") != "acme" || got.Get("Content-Type") != "application/json" || body != `{"n":1}` {
		t.Errorf("headers %v body %q", got, body)
	}
	if strings.Contains(h.BaseURL(), "pw-1234") {
		t.Errorf("base URL keeps credentials: %s", h.BaseURL())
	}

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h = newHTTP(t, config.Source{URL: srv.URL, TokenFile: tokenFile}, nil)
	if err := h.GetJSON(context.Background(), "/", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got.Get("Authorization") != "Bearer file-token" {
		t.Errorf("authorization %q", got.Get("Authorization"))
	}
}

func TestCustomCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Unix(1e9, 0))
	// Without the CA the certificate is unknown (not retried: a TLS error
	// is a transport error, so it is retried; the fake clock drives it).
	h := newHTTP(t, config.Source{URL: srv.URL}, clk)
	if _, err := waitRetry(t, clk, func() error { return h.GetJSON(context.Background(), "/", nil, nil) }); err == nil {
		t.Error("unknown CA accepted")
	}
	h = newHTTP(t, config.Source{URL: srv.URL, CAFile: ca}, clk)
	if err := h.GetJSON(context.Background(), "/", nil, nil); err != nil {
		t.Errorf("with ca_file: %v", err)
	}
	if _, err := NewHTTP(config.Source{Name: "s", URL: srv.URL, CAFile: filepath.Join(dir, "missing")}, HTTPOptions{}); err == nil {
		t.Error("missing ca_file accepted")
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	srv, _ := server(t, status(503, "{}"))
	clk := clock.NewFake(time.Unix(1e9, 0))
	h := newHTTP(t, config.Source{URL: srv.URL}, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.GetJSON(ctx, "/slow", nil, nil) }()
	for {
		if d, ok := clk.NextDeadline(); ok && clk.Pending() == 1 && d.Sub(clk.Now()) != DefaultTimeout {
			break // in the backoff wait
		}
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "GET /slow") || !strings.Contains(err.Error(), "HTTP 503") {
			t.Errorf("err %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not cancelled")
	}
}

func TestAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, n := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	clk := clock.NewFake(time.Unix(1e9, 0))
	h, err := NewHTTP(config.Source{Name: "s", URL: srv.URL, Timeout: config.Duration(time.Minute)},
		HTTPOptions{Clock: clk, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.GetJSON(context.Background(), "/hang", nil, nil) }()
	seen := int32(0)
	for {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "request timed out after 1m0s") || n.Load() != 2 {
				t.Fatalf("err %v after %d attempts", err, n.Load())
			}
			return
		default:
		}
		// A new request reached the server: time it out. Otherwise fire
		// the backoff (under a minute away).
		if c := n.Load(); c > seen {
			if d, ok := clk.NextDeadline(); ok {
				seen = c
				clk.Set(d)
			}
		} else if d, ok := clk.NextDeadline(); ok && d.Sub(clk.Now()) < time.Minute {
			clk.Set(d)
		}
		runtime.Gosched()
	}
}

func TestSanitize(t *testing.T) {
	if got := sanitize("a\x00b\n\n  c", 10); got != "a?b c" {
		t.Errorf("%q", got)
	}
	if got := sanitize(strings.Repeat("é", 20), 5); got != "ééééé…" {
		t.Errorf("%q", got)
	}
}
