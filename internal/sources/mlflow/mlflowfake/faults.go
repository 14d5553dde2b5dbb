package mlflowfake

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// Fault is a failure or a registry change injected into the requests that
// match it. The first active fault matching a request applies; its effects
// apply in this order: Delay, Mutate, then one of Reset, HTML, Body, Status,
// Truncate (or the normal answer when none is set).
type Fault struct {
	// Method matches the request method ("" any). Path matches the request
	// path exactly ("/api/2.0/mlflow/model-versions/search") or its endpoint
	// suffix ("model-versions/search"); "" matches any path.
	Method, Path string
	// Skip lets the first Skip matching requests through; Times then limits
	// the fault to that many requests (0 = every later matching request).
	Skip, Times int

	// Delay holds the answer for this long on the server's clock (a
	// cancelled request stops waiting).
	Delay time.Duration
	// Mutate changes the registry before the request is answered, for
	// instance between two pages of one search.
	Mutate func(s *Server)
	// Reset closes the connection without an answer.
	Reset bool
	// HTML answers an HTML error page with Status (default 502).
	HTML bool
	// Body answers these bytes with Status (default 200) and ContentType
	// (default application/json): garbage for the client to reject.
	Body        string
	ContentType string
	// Status answers a JSON error {"error_code": Code, "message": Message}
	// (Code defaults by status), with RetryAfter as the Retry-After header.
	Status     int
	Code       string
	Message    string
	RetryAfter string
	// Truncate sends the normal answer cut in half, then closes the
	// connection.
	Truncate bool
}

type faultState struct {
	f       Fault
	seen    int
	applied int
}

func (f *Fault) matches(method, path string) bool {
	if f.Method != "" && f.Method != method {
		return false
	}
	return f.Path == "" || f.Path == path || strings.HasSuffix(path, "/"+strings.TrimPrefix(f.Path, "/"))
}

// Inject adds a fault and returns a function removing it.
func (s *Server) Inject(f Fault) (remove func()) {
	st := &faultState{f: f}
	s.mu.Lock()
	s.faults = append(s.faults, st)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, x := range s.faults {
			if x == st {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
				return
			}
		}
	}
}

// Delaying returns the number of requests held by a Delay fault right now.
func (s *Server) Delaying() int { return int(s.delaying.Load()) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// matchFault finds the fault applying to a request and counts it. s.mu is held.
func (s *Server) matchFault(method, path string) *Fault {
	for _, st := range s.faults {
		if !st.f.matches(method, path) {
			continue
		}
		st.seen++
		if st.seen <= st.f.Skip {
			continue
		}
		if st.f.Times > 0 && st.applied >= st.f.Times {
			continue
		}
		st.applied++
		f := st.f
		return &f
	}
	return nil
}

var defaultCodes = map[int]string{
	http.StatusBadRequest:          "INVALID_PARAMETER_VALUE",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "RESOURCE_DOES_NOT_EXIST",
	http.StatusTooManyRequests:     "REQUEST_LIMIT_EXCEEDED",
	http.StatusInternalServerError: "INTERNAL_ERROR",
	http.StatusBadGateway:          "BAD_GATEWAY",
	http.StatusServiceUnavailable:  "TEMPORARILY_UNAVAILABLE",
}

// applyFault applies f and reports whether the request was fully answered.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, path string, f *Fault) bool {
	if f.Delay > 0 {
		s.delaying.Add(1)
		ok := clock.Sleep(s.clock, f.Delay, r.Context().Done())
		s.delaying.Add(-1)
		if !ok {
			return true
		}
	}
	if f.Mutate != nil {
		f.Mutate(s)
	}
	switch {
	case f.Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case f.HTML:
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		page := fmt.Sprintf("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
			status, http.StatusText(status), status, http.StatusText(status))
		writeHTML(w, status, page)
		return true
	case f.Body != "":
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		ct := f.ContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return true
	case f.Status != 0:
		code := f.Code
		if code == "" {
			code = defaultCodes[f.Status]
		}
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeJSON(w, f.Status, map[string]string{"error_code": code, "message": msg})
		return true
	case f.Truncate:
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		s.serve(rec, r, path)
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		body := rec.body.Bytes()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n",
			rec.status, http.StatusText(rec.status), strconv.Itoa(len(body)))
		_, _ = buf.Write(body[:len(body)/2])
		_ = buf.Flush()
		_ = conn.Close()
		return true
	}
	return false
}

// recorder captures an answer in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
