package mlflowfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// fixturesDir is ../shared/fixtures of the repository root, seen from this
// package's directory.
const fixturesDir = "../../../../../shared/fixtures"

func fixtures(t *testing.T, sub string) string {
	t.Helper()
	dir := filepath.Join(fixturesDir, sub)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("recorded registry answers not available (%s): %v", dir, err)
	}
	return dir
}

// exchange is one recorded request and answer.
type exchange struct {
	Request struct {
		Method string         `json:"method"`
		Path   string         `json:"path"`
		Query  map[string]any `json:"query"`
		Body   any            `json:"body"`
	} `json:"request"`
	Response struct {
		Status int `json:"status"`
		Body   any `json:"body"`
	} `json:"response"`
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// matcher compares answers with recorded ones: same key sets, array lengths
// and values, except that timestamps must correspond one to one (the same
// recorded instant is always the same instant of the fake, and two recorded
// instants are never one) and keys in masked are only required to exist.
type matcher struct {
	recToGot map[string]string
	gotToRec map[string]string
	masked   map[string]bool
}

func newMatcher(masked ...string) *matcher {
	m := &matcher{recToGot: map[string]string{}, gotToRec: map[string]string{}, masked: map[string]bool{}}
	for _, k := range masked {
		m.masked[k] = true
	}
	return m
}

func (m *matcher) compare(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want object", path, got)}
		}
		var diffs []string
		for _, k := range sortedKeys(w, g) {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected key (value %v)", path, k, gv))
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing key (want %v)", path, k, wv))
			case m.masked[k]:
			case strings.HasSuffix(k, "timestamp"):
				diffs = append(diffs, m.timestamp(path+"."+k, wv, gv)...)
			default:
				diffs = append(diffs, m.compare(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %d elements", path, got, len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, m.compare(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) || fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got, want)}
		}
		return nil
	}
}

func (m *matcher) timestamp(path string, want, got any) []string {
	w, ok1 := want.(json.Number)
	g, ok2 := got.(json.Number)
	if !ok1 || !ok2 {
		return []string{fmt.Sprintf("%s: got %#v, want a number like %v", path, got, want)}
	}
	if prev, ok := m.recToGot[w.String()]; ok && prev != g.String() {
		return []string{fmt.Sprintf("%s: recorded instant %s was %s before, now %s", path, w, prev, g)}
	}
	if prev, ok := m.gotToRec[g.String()]; ok && prev != w.String() {
		return []string{fmt.Sprintf("%s: instant %s stands for recorded %s and %s", path, g, prev, w)}
	}
	m.recToGot[w.String()], m.gotToRec[g.String()] = g.String(), w.String()
	return nil
}

func sortedKeys(a, b map[string]any) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// send replays one recorded request against the fake.
func send(t *testing.T, base, token string, x *exchange) (int, []byte) {
	t.Helper()
	q := url.Values{}
	for k, v := range x.Request.Query {
		switch v := v.(type) {
		case string:
			q.Add(k, v)
		case []any:
			for _, e := range v {
				q.Add(k, e.(string))
			}
		}
	}
	var body io.Reader
	switch b := x.Request.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	u := base + x.Request.Path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(x.Request.Method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, got
}

// check compares an answer with the recorded one.
func check(t *testing.T, name string, m *matcher, x *exchange, status int, got []byte) {
	t.Helper()
	if status != x.Response.Status {
		t.Errorf("%s: status %d, want %d (body %s)", name, status, x.Response.Status, got)
		return
	}
	if page, ok := x.Response.Body.(string); ok {
		if json.Valid(got) || !bytes.HasPrefix(bytes.TrimSpace(got), []byte("<")) {
			t.Errorf("%s: got %q, want an HTML page like %q", name, got, page)
		}
		return
	}
	var g any
	if err := decodeNumbers(got, &g); err != nil {
		t.Errorf("%s: answer is not JSON: %v: %q", name, err, got)
		return
	}
	want := x.Response.Body.(map[string]any)
	if code, ok := want["error_code"]; ok {
		gm, _ := g.(map[string]any)
		if gm["error_code"] != code {
			t.Errorf("%s: error_code %v, want %v (%s)", name, gm["error_code"], code, got)
		}
		if _, ok := gm["message"].(string); !ok {
			t.Errorf("%s: error without message: %s", name, got)
		}
		return
	}
	for _, d := range m.compare("", want, g) {
		t.Errorf("%s: %s", name, d)
	}
}

func readExchange(t *testing.T, file string) *exchange {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var x exchange
	if err := decodeNumbers(raw, &x); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &x
}

// TestRecordedMLflow replays every recorded request of the MLflow 2.17 and
// 3.5 scenarios, in order, one second apart on a fake clock, and compares
// each answer with the recorded one.
func TestRecordedMLflow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dir     string
		mlflow3 bool
	}{{"2.17", "mlflow", false}, {"3.5", "mlflow/v3", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixtures(t, tc.dir)
			files, err := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.json"))
			if err != nil || len(files) < 79 {
				t.Fatalf("expected 79 recorded exchanges in %s, found %d (%v)", dir, len(files), err)
			}
			clk := clock.NewFake(time.UnixMilli(1795960124449))
			s := New(Options{Clock: clk, MLflow3: tc.mlflow3})
			srv := s.Start()
			defer srv.Close()
			m := newMatcher()
			for _, f := range files {
				clk.Advance(time.Second)
				x := readExchange(t, f)
				status, got := send(t, srv.URL, "", x)
				check(t, filepath.Base(f), m, x, status, got)
			}
		})
	}
}

// TestAjaxRoutes checks that the UI's /ajax-api/ prefix serves the same API.
func TestAjaxRoutes(t *testing.T) {
	s := New(Options{Clock: clock.NewFake(time.UnixMilli(1e12))})
	if err := s.CreateModel("m", ModelSpec{}); err != nil {
		t.Fatal(err)
	}
	srv := s.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ajax-api/2.0/mlflow/registered-models/get?name=m")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"name":"m"`)) {
		t.Fatalf("ajax route: %d %s", resp.StatusCode, b)
	}
}

// TestRecordedDatabricks plays the Databricks workspace-registry story of the
// recorded answers (each recorded at its own instant) and compares the
// answers of every workspace-registry endpoint with the recordings. Ids and
// permission levels are only required to be present: the recordings were
// built independently of one another.
func TestRecordedDatabricks(t *testing.T) {
	dir := fixtures(t, "databricks")
	load := func(name string) any {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := decodeNumbers(raw, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	const (
		sp    = "7b3c9f0e-2d41-4c6a-9e85-1f0a2b3c4d5e"
		carol = "carol@example.com"
		dave  = "dave@example.com"
	)
	clk := clock.NewFake(time.UnixMilli(1727773200000))
	at := func(ms int64) { clk.Set(time.UnixMilli(ms)) }
	s := New(Options{Clock: clk, Databricks: true, DefaultUser: sp,
		Tokens: map[string]string{"dapi-sp": sp, "dapi-carol": carol, "dapi-dave": dave}})
	srv := s.Start()
	defer srv.Close()
	m := newMatcher("id", "permission_level")

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tags := func(sha string) []Tag { return []Tag{{Key: "git_sha", Value: sha}} }
	dbfs := "dbfs:/databricks/mlflow-tracking/3141592653589793/%s/artifacts/model"
	must(s.CreateModel("fraud-detector", ModelSpec{Description: "Card-not-present fraud classifier",
		Tags: []Tag{{Key: "owner_team", Value: "risk-ml"}}, User: sp}))
	at(1729419330123)
	_, err := s.CreateVersion("fraud-detector", VersionSpec{Source: fmt.Sprintf(dbfs, "0a1b2c3d4e5f40718293a4b5c6d7e8f9"),
		RunID: "0a1b2c3d4e5f40718293a4b5c6d7e8f9", Description: "xgboost 2.0 baseline", Tags: tags("1d0e3f9"), User: sp})
	must(err)
	at(1729500000000)
	must(s.TransitionStage("fraud-detector", "1", StageProduction, false))
	at(1731420342517)
	_, err = s.CreateVersion("fraud-detector", VersionSpec{Source: fmt.Sprintf(dbfs, "1b2c3d4e5f6a40718293a4b5c6d7e8f0"),
		RunID: "1b2c3d4e5f6a40718293a4b5c6d7e8f0", Description: "xgboost 2.1, retrained on 2024-10 data", Tags: tags("4be77d0"), User: sp})
	must(err)
	at(1731500000000)
	must(s.TransitionStage("fraud-detector", "2", StageStaging, false))
	at(1731510000000)
	_, err = s.CreateTransitionRequest(carol, "fraud-detector", "2", StageProduction, "please")
	must(err)

	post := func(name, path, token, reqFile string) {
		t.Helper()
		x := &exchange{}
		x.Request.Method, x.Request.Path, x.Request.Body = http.MethodPost, path, load(reqFile)
		x.Response.Status, x.Response.Body = 200, load(name)
		status, got := send(t, srv.URL, token, x)
		check(t, name, m, x, status, got)
	}
	get := func(name, path string, query map[string]any, status int) {
		t.Helper()
		x := &exchange{}
		x.Request.Method, x.Request.Path, x.Request.Query = http.MethodGet, path, query
		x.Response.Status, x.Response.Body = status, load(name)
		st, got := send(t, srv.URL, "dapi-sp", x)
		check(t, name, m, x, st, got)
	}

	at(1731600131204)
	post("transition-request.approve.response.json", "/api/2.0/mlflow/transition-requests/approve", "dapi-dave",
		"transition-request.approve.request.json")
	at(1732095067880)
	_, err = s.CreateVersion("fraud-detector", VersionSpec{Source: fmt.Sprintf(dbfs, "2c3d4e5f6a7b40718293a4b5c6d7e8f1"),
		RunID: "2c3d4e5f6a7b40718293a4b5c6d7e8f1", Description: "xgboost 2.1, retrained on 2024-11 data", Tags: tags("9f1c2ab"), User: sp})
	must(err)
	at(1732095300000)
	must(s.TransitionStage("fraud-detector", "3", StageStaging, false))

	at(1732100000000)
	name := map[string]any{"name": "fraud-detector"}
	get("registered-model-databricks.get.response.json", "/api/2.0/mlflow/databricks/registered-models/get", name, 200)
	get("model-version.get.response.json", "/api/2.0/mlflow/model-versions/get",
		map[string]any{"name": "fraud-detector", "version": "2"}, 200)
	get("model-versions.search.response.json", "/api/2.0/mlflow/model-versions/search",
		map[string]any{"filter": "name='fraud-detector'", "max_results": "10000"}, 200)
	get("error.resource-does-not-exist.response.json", "/api/2.0/mlflow/model-versions/get",
		map[string]any{"name": "fraud-detector", "version": "99"}, 404)

	at(1732183200321)
	post("transition-request.create.response.json", "/api/2.0/mlflow/transition-requests/create", "dapi-carol",
		"transition-request.create.request.json")
	v3 := map[string]any{"name": "fraud-detector", "version": "3"}
	get("transition-requests.list.response.json", "/api/2.0/mlflow/transition-requests/list", v3, 200)
	at(1732202444100)
	post("transition-request.reject.response.json", "/api/2.0/mlflow/transition-requests/reject", "dapi-dave",
		"transition-request.reject.request.json")
	get("transition-requests.list.empty.response.json", "/api/2.0/mlflow/transition-requests/list", v3, 200)
	at(1732241649777)
	post("transition-stage.response.json", "/api/2.0/mlflow/databricks/model-versions/transition-stage", "dapi-sp",
		"transition-stage.request.json")

	// Unity Catalog (uc-*), registry webhooks and webhook payloads are outside
	// the workspace registry this fake serves.
	for _, f := range []string{"uc-registered-model.get.response.json", "registry-webhooks.list.response.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("expected recording %s: %v", f, err)
		}
	}
}
