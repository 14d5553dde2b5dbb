package mlflowfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
)

type ts struct{ model, v1, v2 int64 }

func (s *Server) stamps(t *testing.T) ts {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.models["m"]
	return ts{m.updated, m.versions[1].updated, m.versions[2].updated}
}

// TestTimestampBumps checks exactly which operations move which
// last_updated_timestamp (mlflow README, "Response shapes").
func TestTimestampBumps(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1000000))
	s := New(Options{Clock: clk})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateModel("m", ModelSpec{}))
	for range 2 {
		clk.Advance(time.Second)
		_, err := s.CreateVersion("m", VersionSpec{Source: "s3://x"})
		must(err)
	}
	steps := []struct {
		name       string
		op         func() error
		model, ver [2]bool // want bumped: model; v1, v2
	}{
		{"version tag", func() error { return s.SetVersionTag("m", "1", "k", "v") }, [2]bool{}, [2]bool{}},
		{"version tag delete", func() error { return s.DeleteVersionTag("m", "1", "k") }, [2]bool{}, [2]bool{}},
		{"model tag", func() error { return s.SetModelTag("m", "k", "v") }, [2]bool{}, [2]bool{}},
		{"alias", func() error { return s.SetAlias("m", "champion", "1") }, [2]bool{}, [2]bool{}},
		{"alias move", func() error { return s.SetAlias("m", "champion", "2") }, [2]bool{}, [2]bool{}},
		{"alias delete", func() error { return s.DeleteAlias("m", "champion") }, [2]bool{}, [2]bool{}},
		{"version description", func() error { return s.UpdateVersionDescription("m", "1", "d") }, [2]bool{}, [2]bool{true, false}},
		{"model description", func() error { return s.UpdateModelDescription("m", "d") }, [2]bool{true}, [2]bool{}},
		{"transition", func() error { return s.TransitionStage("m", "2", "Production", false) }, [2]bool{true}, [2]bool{false, true}},
		{"transition archiving", func() error { return s.TransitionStage("m", "1", "Production", true) }, [2]bool{true}, [2]bool{true, true}},
		{"rename", func() error {
			if err := s.RenameModel("m", "n"); err != nil {
				return err
			}
			return s.RenameModel("n", "m")
		}, [2]bool{true}, [2]bool{true, true}},
	}
	for _, st := range steps {
		before := s.stamps(t)
		clk.Advance(time.Second)
		must(st.op())
		after := s.stamps(t)
		got := [3]bool{after.model != before.model, after.v1 != before.v1, after.v2 != before.v2}
		want := [3]bool{st.model[0], st.ver[0], st.ver[1]}
		if got != want {
			t.Errorf("%s: bumped model/v1/v2 = %v, want %v", st.name, got, want)
		}
	}
	before := s.stamps(t)
	clk.Advance(time.Second)
	must(s.DeleteVersion("m", "2"))
	if after := s.stamps(t); after.model == before.model {
		t.Error("deleting a version did not bump the model")
	}
	v, err := s.CreateVersion("m", VersionSpec{Source: "s3://x"})
	if err != nil || v != "3" {
		t.Errorf("version after a deleted one: %q %v (want 3: max+1 counts deleted versions)", v, err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutesAndLimits(t *testing.T) {
	for _, db := range []bool{false, true} {
		s := New(Options{Clock: clock.NewFake(time.UnixMilli(1e12)), Databricks: db})
		srv := s.Start()
		defer srv.Close()
		st, body := get(t, srv.URL+"/api/2.0/mlflow/transition-requests/list?name=m&version=1")
		if db && (st != 404 || !strings.Contains(body, "RESOURCE_DOES_NOT_EXIST")) || !db && (st != 404 || !strings.HasPrefix(body, "<!doctype html>")) {
			t.Errorf("databricks=%v: transition-requests/list: %d %s", db, st, body)
		}
		limit := "200000"
		over := "200001"
		if db {
			limit, over = "10000", "10001"
		}
		if st, body := get(t, srv.URL+"/api/2.0/mlflow/model-versions/search?max_results="+limit); st != 200 || body != "{}\n" {
			t.Errorf("databricks=%v: max_results=%s: %d %s", db, limit, st, body)
		}
		if st, body := get(t, srv.URL+"/api/2.0/mlflow/model-versions/search?max_results="+over); st != 400 || !strings.Contains(body, "INVALID_PARAMETER_VALUE") {
			t.Errorf("databricks=%v: max_results=%s: %d %s", db, over, st, body)
		}
		if st, _ := get(t, srv.URL+"/api/2.0/mlflow/registered-models/search?max_results=1001"); st != 400 {
			t.Errorf("registered-models max_results=1001: %d", st)
		}
	}
}

func TestAuth(t *testing.T) {
	s := New(Options{Clock: clock.NewFake(time.UnixMilli(1e12)), Tokens: map[string]string{"t1": "u1"}, BasicAuth: map[string]string{"u": "p"}})
	srv := s.Start()
	defer srv.Close()
	do := func(set func(*http.Request)) int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/2.0/mlflow/registered-models/search", nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := do(func(*http.Request) {}); st != 401 {
		t.Errorf("anonymous: %d", st)
	}
	if st := do(func(r *http.Request) { r.Header.Set("Authorization", "Bearer t1") }); st != 200 {
		t.Errorf("token: %d", st)
	}
	if st := do(func(r *http.Request) { r.SetBasicAuth("u", "p") }); st != 200 {
		t.Errorf("basic: %d", st)
	}
	if st := do(func(r *http.Request) { r.SetBasicAuth("u", "x") }); st != 401 {
		t.Errorf("bad password: %d", st)
	}
}

func TestFaults(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1e12))
	s := New(Options{Clock: clk})
	if err := s.CreateModel("m", ModelSpec{Description: strings.Repeat("x", 500)}); err != nil {
		t.Fatal(err)
	}
	srv := s.Start()
	defer srv.Close()
	url := srv.URL + "/api/2.0/mlflow/registered-models/get?name=m"

	s.Inject(Fault{Path: "registered-models/get", Skip: 1, Times: 1, Status: 429, RetryAfter: "3"})
	if st, _ := get(t, url); st != 200 {
		t.Errorf("skipped request: %d", st)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || !bytes.Contains(b, []byte("REQUEST_LIMIT_EXCEEDED")) {
		t.Errorf("429 fault: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if st, _ := get(t, url); st != 200 {
		t.Errorf("after Times: %d", st)
	}

	remove := s.Inject(Fault{Path: "registered-models/get", Truncate: true})
	resp, err = http.Get(url)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("truncated body read without error")
	}
	remove()

	remove = s.Inject(Fault{Method: "GET", Reset: true})
	if _, err := http.Get(url); err == nil {
		t.Error("reset connection answered")
	}
	remove()

	remove = s.Inject(Fault{HTML: true})
	if st, body := get(t, url); st != 502 || !strings.Contains(body, "<title>502 Bad Gateway</title>") {
		t.Errorf("html fault: %d %s", st, body)
	}
	remove()

	remove = s.Inject(Fault{Body: "garbage", ContentType: "text/plain", Status: 200})
	if st, body := get(t, url); st != 200 || body != "garbage" {
		t.Errorf("body fault: %d %s", st, body)
	}
	remove()

	s.Inject(Fault{Path: "/api/2.0/mlflow/registered-models/get", Times: 1, Mutate: func(s *Server) {
		if err := s.DeleteModel("m"); err != nil {
			t.Error(err)
		}
	}})
	if st, body := get(t, url); st != 404 || !strings.Contains(body, "RESOURCE_DOES_NOT_EXIST") {
		t.Errorf("mutate fault: %d %s", st, body)
	}

	s.ClearFaults()
	s.Inject(Fault{Delay: time.Minute})
	done := make(chan int, 1)
	go func() { st, _ := get(t, url); done <- st }()
	<-clk.WaitForTimers(1)
	if s.Delaying() != 1 {
		t.Errorf("delaying %d", s.Delaying())
	}
	clk.Advance(time.Minute)
	if st := <-done; st != 404 {
		t.Errorf("delayed answer %d", st)
	}
}

func TestPageTokens(t *testing.T) {
	if got := EncodePageToken(1); got != "eyJvZmZzZXQiOiAxfQ==" {
		t.Errorf("token %q", got)
	}
	clk := clock.NewFake(time.UnixMilli(1e12))
	s := New(Options{Clock: clk})
	for _, n := range []string{"c", "a", "b"} {
		clk.Advance(time.Second)
		if err := s.CreateModel(n, ModelSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := s.Start()
	defer srv.Close()
	var names []string
	tok := ""
	for {
		u := srv.URL + "/api/2.0/mlflow/registered-models/search?max_results=2"
		if tok != "" {
			u += "&page_token=" + tok
		}
		_, body := get(t, u)
		var page struct {
			Models []struct{ Name string } `json:"registered_models"`
			Next   string                  `json:"next_page_token"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Models {
			names = append(names, m.Name)
		}
		if tok = page.Next; tok == "" {
			break
		}
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("pages gave %v", names)
	}
}
