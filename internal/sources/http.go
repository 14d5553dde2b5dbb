package sources

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
)

// Defaults of the HTTP helpers.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 4
	DefaultMaxBody     = 256 << 20
	defaultBaseDelay   = 500 * time.Millisecond
	defaultMaxDelay    = 30 * time.Second
	maxRetryAfter      = 5 * time.Minute
	excerptLen         = 160
)

// errAttemptTimeout is the cause given to a request attempt that ran past the
// source's timeout.
var errAttemptTimeout = errors.New("request timed out")

// NewHTTPClient builds the *http.Client of an HTTP source from its config:
// connection and header timeouts from cfg.Timeout, and the system roots plus
// cfg.CAFile, when set, as trusted certificate authorities.
func NewHTTPClient(cfg config.Source) (*http.Client, error) {
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = min(timeout, 10*time.Second)
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 64
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("source %q: read ca_file: %w", cfg.Name, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("source %q: ca_file %s holds no PEM certificate", cfg.Name, cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// HTTPOptions tunes NewHTTP. Zero values take the defaults.
type HTTPOptions struct {
	// Client sends the requests; nil builds one with NewHTTPClient.
	Client *http.Client
	// Clock times backoffs and attempt timeouts; nil is clock.Real.
	Clock  clock.Clock
	Logger *slog.Logger
	// MaxAttempts bounds the tries of one request (default 4).
	MaxAttempts int
	// BaseDelay is the first backoff (default 500ms); each retry doubles it,
	// up to MaxDelay (default 30s), with jitter.
	BaseDelay, MaxDelay time.Duration
	// MaxBody bounds a response body (default 256 MiB).
	MaxBody int64
}

// HTTP sends JSON requests to one registry: authentication and extra headers
// on every request, bounded retries with exponential backoff and jitter on
// 429, 5xx and transport errors (honouring Retry-After), a timeout per attempt
// on the clock, a bound on the body size, and errors that name the source and
// the endpoint (method and path, never the query or credentials). It is safe
// for concurrent use.
type HTTP struct {
	source   string
	base     *url.URL
	client   *http.Client
	header   http.Header
	secrets  []string
	clock    clock.Clock
	log      *slog.Logger
	timeout  time.Duration
	attempts int
	base0    time.Duration
	maxDelay time.Duration
	maxBody  int64
	requests atomic.Int64
}

// NewHTTP returns the requester of the source cfg: cfg.URL is the base URL
// (user info in it becomes basic auth), cfg.Token a bearer token, else
// cfg.Username and cfg.Password basic auth, and cfg.Headers extra headers.
// Secrets given only as *_file are read here.
func NewHTTP(cfg config.Source, opts HTTPOptions) (*HTTP, error) {
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("source %q: url must be an absolute http(s) URL", cfg.Name)
	}
	if base.Scheme != "http" && base.Scheme != "https" {
		return nil, fmt.Errorf("source %q: url scheme %q is not http or https", cfg.Name, base.Scheme)
	}
	h := &HTTP{
		source:   cfg.Name,
		client:   opts.Client,
		header:   http.Header{},
		clock:    opts.Clock,
		log:      opts.Logger,
		timeout:  cfg.Timeout.D(),
		attempts: opts.MaxAttempts,
		base0:    opts.BaseDelay,
		maxDelay: opts.MaxDelay,
		maxBody:  opts.MaxBody,
	}
	if h.client == nil {
		if h.client, err = NewHTTPClient(cfg); err != nil {
			return nil, err
		}
	}
	if h.clock == nil {
		h.clock = clock.Real{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	if h.attempts <= 0 {
		h.attempts = DefaultMaxAttempts
	}
	if h.base0 <= 0 {
		h.base0 = defaultBaseDelay
	}
	if h.maxDelay <= 0 {
		h.maxDelay = defaultMaxDelay
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	for k, v := range cfg.Headers {
		h.header.Set(k, v.Reveal())
		h.addSecret(v.Reveal())
	}
	token, err := secretValue(cfg.Token, cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("source %q: token_file: %w", cfg.Name, err)
	}
	password, err := secretValue(cfg.Password, cfg.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("source %q: password_file: %w", cfg.Name, err)
	}
	user := cfg.Username
	if base.User != nil {
		if user == "" {
			user = base.User.Username()
		}
		if p, ok := base.User.Password(); ok && password == "" {
			password = p
		}
		base.User = nil
	}
	switch {
	case token != "":
		h.header.Set("Authorization", "Bearer "+token)
		h.addSecret(token)
	case user != "" || password != "":
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, password)
		h.header.Set("Authorization", r.Header.Get("Authorization"))
		h.addSecret(password)
	}
	if h.header.Get("Authorization") != "" {
		h.addSecret(h.header.Get("Authorization"))
	}
	base.RawQuery, base.Fragment = "", ""
	h.base = base
	return h, nil
}

func secretValue(s config.Secret, file string) (string, error) {
	if s != "" || file == "" {
		return s.Reveal(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (h *HTTP) addSecret(s string) {
	if len(s) >= 4 {
		h.secrets = append(h.secrets, s)
	}
}

// BaseURL returns the base URL without credentials, query or trailing slash.
func (h *HTTP) BaseURL() string { return h.base.String() }

// Source returns the source name used in errors.
func (h *HTTP) Source() string { return h.source }

// Requests returns how many HTTP requests (attempts included) were sent so far.
func (h *HTTP) Requests() int64 { return h.requests.Load() }

// HTTPError is a response with a non-2xx status. Its message names the source,
// the endpoint (method and path) and the status, with the registry's error
// code and a short sanitized excerpt of the body.
type HTTPError struct {
	Source string
	Method string
	Path   string
	Status int
	// Code is the error_code of a JSON error body ({"error_code", "message"}), or "".
	Code string
	// Message is the sanitized, shortened error message or body excerpt.
	Message string
	// RetryAfter is the delay the server asked for (429, 503), or 0.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %q: %s %s: HTTP %d", e.Source, e.Method, e.Path, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		b.WriteString(" (authentication failed: check the source's token or token_file, or username and password)")
	case http.StatusForbidden:
		b.WriteString(" (permission denied: the source's credentials cannot read the registry)")
	}
	return b.String()
}

// Is reports ErrNotFound for a 404 whose code says the object does not exist.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound && e.Code == "RESOURCE_DOES_NOT_EXIST"
}

// Retryable reports whether the status is worth another attempt (429 and 5xx).
func (e *HTTPError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// EndpointError is a failure of one request that is not an HTTP status: a
// transport error, a timeout, a body too large or a body that does not decode.
type EndpointError struct {
	Source string
	Method string
	Path   string
	Err    error
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("source %q: %s %s: %v", e.Source, e.Method, e.Path, e.Err)
}

func (e *EndpointError) Unwrap() error { return e.Err }

// Call describes one request.
type Call struct {
	Method string
	// Path is joined to the base URL's path ("/api/2.0/mlflow/...").
	Path  string
	Query url.Values
	// Body, when not nil, is sent as JSON.
	Body any
}

// Errorf returns an error naming the source and the call's endpoint.
func (h *HTTP) Errorf(c Call, format string, args ...any) error {
	return &EndpointError{Source: h.source, Method: c.Method, Path: c.Path, Err: fmt.Errorf(format, args...)}
}

// GetJSON sends a GET and decodes the JSON answer into out.
func (h *HTTP) GetJSON(ctx context.Context, path string, query url.Values, out any) error {
	return h.Do(ctx, Call{Method: http.MethodGet, Path: path, Query: query}, jsonInto(out))
}

// PostJSON sends in as a JSON POST and decodes the JSON answer into out.
func (h *HTTP) PostJSON(ctx context.Context, path string, in, out any) error {
	return h.Do(ctx, Call{Method: http.MethodPost, Path: path, Body: in}, jsonInto(out))
}

func jsonInto(out any) func([]byte) error {
	return func(b []byte) error {
		if out == nil {
			return nil
		}
		return json.Unmarshal(b, out)
	}
}

// Do sends the call, retrying as described on HTTP, and hands the complete
// body of a 2xx answer to decode. A decode error is final (not retried) and is
// returned naming the endpoint, with a short excerpt when the body is not JSON
// (an HTML error page, for instance). A cancelled context ends Do at once.
func (h *HTTP) Do(ctx context.Context, c Call, decode func(body []byte) error) error {
	var payload []byte
	if c.Body != nil {
		var err error
		if payload, err = json.Marshal(c.Body); err != nil {
			return h.Errorf(c, "encode request: %w", err)
		}
	}
	u := *h.base
	u.Path = h.base.Path + c.Path
	u.RawQuery = c.Query.Encode()
	target := u.String()

	var last error
	for attempt := 1; ; attempt++ {
		body, retryAfter, err := h.attempt(ctx, c, target, payload)
		if err == nil {
			if decode == nil {
				return nil
			}
			if derr := decode(body); derr != nil {
				return h.Errorf(c, "decode response: %v%s", derr, describeBody(body, h.secrets))
			}
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return h.ctxError(ctx, c, last)
		}
		if !retryable(err) || attempt >= h.attempts {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", last, attempt)
			}
			return last
		}
		delay := h.backoff(attempt)
		if retryAfter > 0 {
			delay = min(retryAfter, maxRetryAfter)
		}
		h.log.Warn("registry request failed, retrying", "source", h.source, "endpoint", c.Method+" "+c.Path,
			"attempt", attempt, "delay", delay, "error", last)
		if !clock.Sleep(h.clock, delay, ctx.Done()) {
			return h.ctxError(ctx, c, last)
		}
	}
}

func (h *HTTP) ctxError(ctx context.Context, c Call, last error) error {
	err := context.Cause(ctx)
	if last != nil {
		return &EndpointError{Source: h.source, Method: c.Method, Path: c.Path,
			Err: fmt.Errorf("%w (last error: %s)", err, strings.TrimPrefix(last.Error(), h.prefix(c)))}
	}
	return &EndpointError{Source: h.source, Method: c.Method, Path: c.Path, Err: err}
}

func (h *HTTP) prefix(c Call) string {
	return fmt.Sprintf("source %q: %s %s: ", h.source, c.Method, c.Path)
}

// retryableError marks transport failures and timeouts of one attempt.
type retryableError struct{ error }

func (e retryableError) Unwrap() error { return e.error }

func retryable(err error) bool {
	var re retryableError
	if errors.As(err, &re) {
		return true
	}
	var he *HTTPError
	return errors.As(err, &he) && he.Retryable()
}

func (h *HTTP) backoff(attempt int) time.Duration {
	d := h.base0 << (attempt - 1)
	if d > h.maxDelay || d <= 0 {
		d = h.maxDelay
	}
	// Jitter in [d/2, d].
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// attempt sends one request. It returns the body of a 2xx answer, or an error
// with the Retry-After delay asked by the server.
func (h *HTTP) attempt(ctx context.Context, c Call, target string, payload []byte) ([]byte, time.Duration, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := h.clock.NewTimer(h.timeout)
	defer timer.Stop()
	go func() {
		select {
		case <-timer.C():
			cancel(fmt.Errorf("%w after %s", errAttemptTimeout, h.timeout))
		case <-actx.Done():
		}
	}()

	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, c.Method, target, rd)
	if err != nil {
		return nil, 0, h.Errorf(c, "build request: %w", err)
	}
	for k, v := range h.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	h.requests.Add(1)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, 0, h.transportError(actx, c, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp, h.maxBody)
	if err == nil && actx.Err() != nil {
		err = context.Cause(actx) // timed out while the answer arrived
	}
	if err != nil {
		return nil, 0, h.transportError(actx, c, fmt.Errorf("read body: %w", err))
	}
	if int64(len(body)) > h.maxBody {
		return nil, 0, h.Errorf(c, "response body larger than %d bytes", h.maxBody)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, 0, nil
	}
	he := &HTTPError{Source: h.source, Method: c.Method, Path: c.Path, Status: resp.StatusCode}
	he.Code, he.Message = errorBody(body, h.secrets)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		he.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), h.clock.Now())
	}
	return nil, he.RetryAfter, he
}

// readBody reads at most limit+1 bytes of the body, in one allocation when
// the length is announced.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength < 0 || resp.ContentLength > limit {
		return io.ReadAll(io.LimitReader(resp.Body, limit+1))
	}
	buf := bytes.NewBuffer(make([]byte, 0, resp.ContentLength+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	return buf.Bytes(), err
}

// transportError turns a client error into an endpoint error without the URL
// (url.Error prints the full URL, query included).
func (h *HTTP) transportError(actx context.Context, c Call, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if cause := context.Cause(actx); errors.Is(cause, errAttemptTimeout) {
		err = cause
	}
	return retryableError{h.Errorf(c, "%w", scrub(err, h.secrets))}
}

func scrub(err error, secrets []string) error {
	msg := err.Error()
	clean := redact(msg, secrets)
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "<secret>")
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// errorBody extracts error_code and message from a JSON error body, or a short
// description of any other body.
func errorBody(body []byte, secrets []string) (code, msg string) {
	var e struct {
		ErrorCode any    `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && (e.ErrorCode != nil || e.Message != "") {
		if e.ErrorCode != nil {
			code = sanitize(fmt.Sprint(e.ErrorCode), 64)
		}
		return code, sanitize(redact(e.Message, secrets), excerptLen)
	}
	return "", strings.TrimPrefix(describeBody(body, secrets), ": ")
}

// describeBody gives ": <description>" of a body that is not valid JSON (an
// HTML page or a short printable excerpt), or "" for JSON bodies.
func describeBody(body []byte, secrets []string) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return ": empty body"
	}
	if json.Valid(trimmed) {
		return ""
	}
	if trimmed[0] == '<' {
		desc := ": HTML error page"
		if t := htmlTitle(trimmed); t != "" {
			desc += " (" + sanitize(redact(t, secrets), 80) + ")"
		}
		return desc
	}
	return fmt.Sprintf(": body %q", sanitize(redact(string(trimmed[:min(len(trimmed), 4*excerptLen)]), secrets), excerptLen))
}

func htmlTitle(b []byte) string {
	lower := bytes.ToLower(b)
	i := bytes.Index(lower, []byte("<title>"))
	if i < 0 {
		return ""
	}
	rest := b[i+len("<title>"):]
	j := bytes.Index(bytes.ToLower(rest), []byte("</title>"))
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// sanitize keeps printable characters, collapses whitespace and cuts s to n runes.
func sanitize(s string, n int) string {
	var b strings.Builder
	count, space := 0, false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			count++
		}
		space = false
		if count >= n {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}
