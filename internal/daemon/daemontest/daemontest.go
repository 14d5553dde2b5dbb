// Package daemontest plays the recorded MLflow scenario of
// ../shared/fixtures/mlflow on the MLflow fake and polls it into a real
// ledger, for the tests of the daemon and of the export. It is an ordinary
// package so that several packages' tests can share it.
package daemontest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// FixtureDir returns ../shared/fixtures relative to the repository root.
func FixtureDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "fixtures")
}

// OpenLedger opens a new ledger in a temp dir with a fresh Ed25519 key and
// returns it, its path and the public key (PKIX PEM).
func OpenLedger(t testing.TB, clk clock.Clock) (*ledger.Ledger, string, []byte) {
	t.Helper()
	priv, pub, _, err := ledger.GenerateKey("ed25519", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.ParseSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	led, err := ledger.Open(path, ledger.Options{Signer: signer, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return led, path, pub
}

// Step is one recorded exchange of the MLflow scenario.
type Step struct {
	// N is the step number of the file name.
	N    int
	File string
	req  struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Query  map[string]any  `json:"query"`
		Body   json.RawMessage `json:"body"`
	}
	// Response is the recorded response body.
	Response json.RawMessage
	// At is when the step happens: the newest registry timestamp its answer
	// reveals, or a time interpolated between its neighbours.
	At time.Time
}

var msTimestamp = regexp.MustCompile(`\b1[7-9][0-9]{11}\b`)

// LoadScenario reads the numbered fixture files of dir and dates each step.
// It skips the test when the fixtures are absent.
func LoadScenario(t testing.TB, dir string) []Step {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.json"))
	if len(files) == 0 {
		t.Skipf("fixtures not found in %s (../shared is absent): skipping", dir)
	}
	sort.Strings(files)
	var steps []Step
	var newest int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Request  json.RawMessage `json:"request"`
			Response struct {
				Body json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s := Step{File: filepath.Base(f), Response: raw.Response.Body}
		s.N, _ = strconv.Atoi(s.File[:2])
		if err := json.Unmarshal(raw.Request, &s.req); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var max int64
		for _, m := range msTimestamp.FindAll(raw.Response.Body, -1) {
			if v, _ := strconv.ParseInt(string(m), 10, 64); v > max {
				max = v
			}
		}
		if max > newest {
			s.At, newest = time.UnixMilli(max).UTC(), max
		}
		steps = append(steps, s)
	}
	// Interpolate the undated steps between their dated neighbours.
	for i := 0; i < len(steps); {
		if !steps[i].At.IsZero() {
			i++
			continue
		}
		j := i
		for j < len(steps) && steps[j].At.IsZero() {
			j++
		}
		prev := steps[i-1].At
		next := prev.Add(time.Duration(j-i+1) * time.Second)
		if j < len(steps) {
			next = steps[j].At
		}
		step := next.Sub(prev) / time.Duration(j-i+1)
		for k := i; k < j; k++ {
			steps[k].At = prev.Add(time.Duration(k-i+1) * step).Truncate(time.Millisecond)
		}
		i = j
	}
	return steps
}

// replay sends the step's recorded request to the fake.
func (s *Step) replay(h http.Handler) int {
	u := &url.URL{Path: s.req.Path}
	q := url.Values{}
	for k, v := range s.req.Query {
		switch x := v.(type) {
		case string:
			q.Set(k, x)
		case []any:
			for _, e := range x {
				q.Add(k, fmt.Sprint(e))
			}
		}
	}
	u.RawQuery = q.Encode()
	var body []byte
	if len(s.req.Body) > 0 && string(s.req.Body) != "null" {
		body = s.req.Body
		var text string
		if json.Unmarshal(s.req.Body, &text) == nil { // a raw (malformed) body
			body = []byte(text)
		}
	}
	r := httptest.NewRequest(s.req.Method, u.String(), bytes.NewReader(body))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// timedSource moves the fake clock to the poll's end while it snapshots.
type timedSource struct {
	sources.Source
	clk *clock.Fake
	end time.Time
}

func (s *timedSource) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	res, err := s.Source.Snapshot(ctx, prev)
	s.clk.Set(s.end)
	return res, err
}

// Window is where the poll after a step runs: the middle third of the time
// between the step and the next one.
type Window struct{ Start, End time.Time }

// Run is a ledger written by polling after the steps of a scenario.
type Run struct {
	Ledger *ledger.Ledger
	Path   string
	// PublicKey is the signing key's public key (PKIX PEM).
	PublicKey []byte
	// ByStep holds the entries each poll appended, by the step it followed
	// (0: the poll before step 01).
	ByStep  map[int][]ledger.Record
	Windows map[int]Window
	Clock   *clock.Fake
}

// Options configures Play.
type Options struct {
	// Type is mlflow (default) or databricks.
	Type    string
	MLflow3 bool
	// Skip lists steps not replayed.
	Skip map[int]bool
	// PollAfter selects the steps followed by a poll; nil polls after all.
	PollAfter func(step int) bool
}

// SourceConfig is the source of the scenario (EXPECTED.md "Setting").
func SourceConfig(typ, url string) config.Source {
	return config.Source{
		Name: "mlflow-prod", Type: typ, URL: url, Timeout: config.Duration(time.Hour), Concurrency: 4,
		Production: config.Production{Stages: []string{"Production"}, Aliases: []string{"champion"}},
		Approval:   config.SourceApproval{Tag: "approved_by"},
	}
}

// Policy is the global policy of the scenario.
func Policy() config.Policy {
	return config.Policy{RollbackObjective: config.Duration(30 * time.Minute), EmergencyTag: "emergency_change", RetireTag: "retired",
		Approval: config.Approval{MaxAge: config.Duration(720 * time.Hour)}}
}

// Play replays steps on a fake MLflow and polls after them (poll 0 runs
// before step 01) into a new ledger.
func Play(t testing.TB, steps []Step, o Options) *Run {
	t.Helper()
	ctx := context.Background()
	if o.Type == "" {
		o.Type = sources.TypeMLflow
	}
	clk := clock.NewFake(steps[0].At.Add(-3 * time.Second))
	fake := mlflowfake.New(mlflowfake.Options{Clock: clk, Databricks: o.Type == sources.TypeDatabricks, MLflow3: o.MLflow3, DefaultUser: "svc-ci@example.com"})
	srv := fake.Start()
	t.Cleanup(srv.Close)
	led, path, pub := OpenLedger(t, clk)
	srcCfg := SourceConfig(o.Type, srv.URL)
	client, err := mlflow.New(srcCfg, mlflow.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	src := &timedSource{Source: client, clk: clk}
	p := daemon.NewPoller(src, led, daemon.PollerOptions{Clock: clk, Policy: daemon.PolicyConfig(Policy(), srcCfg)})
	run := &Run{Ledger: led, Path: path, PublicKey: pub, ByStep: map[int][]ledger.Record{}, Windows: map[int]Window{}, Clock: clk}
	poll := func(step int, w Window) {
		t.Helper()
		before, _ := led.Size(ctx)
		clk.Set(w.Start)
		src.end = w.End
		if _, err := p.PollOnce(ctx); err != nil {
			t.Fatalf("poll %02d: %v", step, err)
		}
		run.Windows[step] = w
		err := led.Find(ctx, ledger.Query{FromSeq: before}, func(r ledger.Record) error {
			run.ByStep[step] = append(run.ByStep[step], r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	poll(0, Window{steps[0].At.Add(-2 * time.Second), steps[0].At.Add(-time.Second)})
	for i, s := range steps {
		if !o.Skip[s.N] {
			clk.Set(s.At)
			s.replay(fake.Handler())
		}
		if o.PollAfter != nil && !o.PollAfter(s.N) {
			continue
		}
		next := s.At.Add(time.Second)
		if i+1 < len(steps) {
			next = steps[i+1].At
		}
		gap := next.Sub(s.At)
		poll(s.N, Window{s.At.Add(gap / 3).Truncate(time.Millisecond), s.At.Add(2 * gap / 3).Truncate(time.Millisecond)})
	}
	return run
}
