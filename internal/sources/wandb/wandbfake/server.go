package wandbfake

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

//go:embed schema.graphql
var schemaSDL string

//go:embed history.graphql
var historySDL string

// SchemaSDL returns the schema the fake serves: the base schema, plus the
// action-history fields when withHistory is set.
func SchemaSDL(withHistory bool) string {
	if withHistory {
		return schemaSDL + "\n" + historySDL
	}
	return schemaSDL
}

var loadSchemas = sync.OnceValues(func() ([2]*ast.Schema, error) {
	var out [2]*ast.Schema
	for i, h := range []bool{false, true} {
		s, err := gqlparser.LoadSchema(&ast.Source{Name: "wandbfake.graphql", Input: SchemaSDL(h)})
		if err != nil {
			return out, fmt.Errorf("load fake schema: %w", err)
		}
		out[i] = s
	}
	return out, nil
})

// FaultKind is a kind of injected failure.
type FaultKind int

// Fault kinds.
const (
	// FaultUnauthorized answers 401 with a GraphQL error body.
	FaultUnauthorized FaultKind = iota + 1
	// FaultRateLimited answers 429 with a Retry-After header.
	FaultRateLimited
	// FaultServerError answers a 5xx status (Fault.Status, default 503).
	FaultServerError
	// FaultGraphQLError answers 200 with "data": null and an errors array.
	FaultGraphQLError
	// FaultTruncated answers 200 with the first half of the real body.
	FaultTruncated
	// FaultEmptyPage makes the first connection of the response an empty page
	// that still says hasNextPage: true.
	FaultEmptyPage
)

// Fault is a failure injected into the responses of matching requests.
type Fault struct {
	Kind FaultKind
	// Operation restricts the fault to requests of this GraphQL operation
	// name; "" matches every request.
	Operation string
	// Times is how many matching requests fail; 0 means every one until
	// ClearFaults.
	Times int
	// Status is the FaultServerError status; default 503.
	Status int
	// RetryAfter is the FaultRateLimited Retry-After; default 1s (whole
	// seconds are sent).
	RetryAfter time.Duration
	// Message is the FaultGraphQLError message; default "internal server error".
	Message string
	// StuckCursor makes a FaultEmptyPage page repeat the request's cursor (or
	// give none) instead of advancing it.
	StuckCursor bool

	used int
}

// InjectFault queues f; the earliest queued fault matching a request applies.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) takeFaultLocked(op string) *Fault {
	for i, f := range s.faults {
		if f.Operation != "" && f.Operation != op {
			continue
		}
		f.used++
		if f.Times > 0 && f.used >= f.Times {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

type request struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

// ServeHTTP serves POST /graphql.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/graphql" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	status, header, out := s.serve(r, body)
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (s *Server) serve(r *http.Request, body []byte) (int, map[string]string, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.apiKey != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != "api" || p != s.apiKey {
			return http.StatusUnauthorized, nil, errorBody("user is not logged in")
		}
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return http.StatusBadRequest, nil, errorBody("invalid request body: " + err.Error())
	}
	schemas, err := loadSchemas()
	if err != nil {
		return http.StatusInternalServerError, nil, errorBody(err.Error())
	}
	variant := 0
	if s.actionHistory {
		variant = 1
	}
	schema := schemas[variant]
	doc := s.parsed[variant][req.Query]
	if doc == nil {
		var errs gqlerror.List
		doc, errs = gqlparser.LoadQueryWithRules(schema, req.Query, rules.NewDefaultRules())
		if len(errs) > 0 {
			if d, err := parser.ParseQuery(&ast.Source{Input: req.Query}); err == nil && len(d.Operations) > 0 {
				s.operations[d.Operations[0].Name]++
			}
			// Like gqlgen, an invalid query is a 422 with the validation errors.
			return http.StatusUnprocessableEntity, nil, gqlErrorsBody(errs)
		}
		if s.parsed[variant] == nil || len(s.parsed[variant]) > 256 {
			s.parsed[variant] = map[string]*ast.QueryDocument{}
		}
		s.parsed[variant][req.Query] = doc
	}
	op := doc.Operations.ForName(req.OperationName)
	if op == nil {
		return http.StatusUnprocessableEntity, nil, errorBody("operation " + strconv.Quote(req.OperationName) + " not found")
	}
	s.operations[op.Name]++
	f := s.takeFaultLocked(op.Name)
	if f != nil {
		switch f.Kind {
		case FaultUnauthorized:
			return http.StatusUnauthorized, nil, errorBody("user is not logged in")
		case FaultRateLimited:
			ra := f.RetryAfter
			if ra <= 0 {
				ra = time.Second
			}
			secs := int((ra + time.Second - 1) / time.Second)
			return http.StatusTooManyRequests, map[string]string{"Retry-After": strconv.Itoa(secs)}, errorBody("rate limit exceeded")
		case FaultServerError:
			st := f.Status
			if st == 0 {
				st = http.StatusServiceUnavailable
			}
			return st, nil, []byte(`{"error":"upstream unavailable"}`)
		case FaultGraphQLError:
			msg := f.Message
			if msg == "" {
				msg = "internal server error"
			}
			return http.StatusOK, nil, []byte(`{"data":null,"errors":[{"message":` + quote(msg) + `,"path":[]}]}`)
		}
	}
	vars, err := validator.VariableValues(schema, op, req.Variables)
	if err != nil {
		return http.StatusOK, nil, errorBody(err.Error())
	}
	x := &executor{s: s, schema: schema, doc: doc, vars: vars}
	if f != nil && f.Kind == FaultEmptyPage {
		x.emptyPage = f
	}
	out := x.run(op)
	if f != nil && f.Kind == FaultTruncated {
		out = out[:len(out)/2]
	}
	return http.StatusOK, nil, out
}

func errorBody(msg string) []byte {
	return []byte(`{"errors":[{"message":` + quote(msg) + `}]}`)
}

func gqlErrorsBody(errs gqlerror.List) []byte {
	b := []byte(`{"errors":[`)
	for i, e := range errs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"message":`...)
		b = appendString(b, e.Message)
		b = append(b, `,"extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}`...)
	}
	return append(b, `],"data":null}`...)
}

func quote(s string) string { return string(appendString(nil, s)) }

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
