package mlflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// recordedBodies returns the response bodies of the recorded MLflow and
// Databricks exchanges, or nil when the recordings are absent.
func recordedBodies(tb testing.TB) [][]byte {
	tb.Helper()
	const dir = "../../../../shared/fixtures"
	var out [][]byte
	files, _ := filepath.Glob(filepath.Join(dir, "mlflow", "[0-9]*.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var x struct {
			Response struct {
				Body json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(raw, &x); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		out = append(out, x.Response.Body)
	}
	files, _ = filepath.Glob(filepath.Join(dir, "databricks", "*.response.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

var seeds = []string{
	`{"registered_models":[{"name":"a","creation_timestamp":1,"aliases":[{"alias":"x","version":"1"}]}],"next_page_token":"eyJvZmZzZXQiOiAxfQ=="}`,
	`{"model_versions":[{"name":"a","version":"12","creation_timestamp":-5,"last_updated_timestamp":0,"current_stage":"None","description":null,"run_id":"","tags":[{"key":"k\u00e9","value":"v\ud83d\ude00"}]}]}`,
	`{"model_version":{"name":"a","version":"1","user_id":"u","tags":null}}`,
	`{"registered_model":{"name":"m","creation_timestamp":5,"description":"d","aliases":[{"alias":"c","version":"2"}],"tags":[]}}`,
	`{"requests":[{"id":"r","user_id":"carol","to_stage":"Production","creation_timestamp":7}]}`,
	`{}`, `[]`, `null`, `{"model_versions":[{"version":"01"}]}`, `{"a":[1,2,{"b":[true,false,null]}],"c":-1.5e-3}`,
	"{\"registered_model\":{\"name\":\"\xff\"}}",
}

// readVersionsPage collects the versions scanVersionsPage reads (inputs with
// duplicate keys are left out of the comparison with encoding/json).
func readVersionsPage(b []byte) ([]wireVersion, string, error) {
	var vs []wireVersion
	next, err := scanVersionsPage(b, func(w *wireVersion) error {
		vs = append(vs, *w)
		return nil
	})
	return vs, next, err
}

// FuzzDecoders feeds arbitrary bytes to every decoder: no panics, only
// malformed-response errors, and whatever the scanner accepts encoding/json
// accepts too, with the same values.
func FuzzDecoders(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, b := range recordedBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkErr := func(err error) {
			if err != nil && !errors.Is(err, errMalformed) {
				t.Fatalf("error is not a malformed-response error: %v", err)
			}
		}
		page, err := decodeModelsPage(data)
		checkErr(err)
		for i := range page.models {
			_, err := convertModel(&page.models[i])
			checkErr(err)
		}
		_, err = decodeModel(data)
		checkErr(err)
		_, _, err = decodeVersionsPage(data)
		checkErr(err)
		_, err = decodeVersion(data)
		checkErr(err)
		_, err = decodeRequests(data)
		checkErr(err)
		compareWithEncodingJSON(t, data)
	})
}

// plainKeys reports whether every object key of data is made of [a-z0-9_]
// and unique in its object (encoding/json matches keys case-insensitively and
// merges duplicates in ways the scanner does not reproduce).
func plainKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   map[string]bool
		want   bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.want {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return false
				}
				top.keys[k] = true
				for _, c := range []byte(k) {
					if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
						return false
					}
				}
				top.want = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, want: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].want = true
		}
	}
}

func compareWithEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	if !plainKeys(data) {
		return
	}
	opts := cmp.Options{cmpopts.EquateEmpty()}
	agree := func(what string, ours any, oursErr error, ref func() (any, error)) {
		if oursErr != nil {
			return // the scanner may be stricter (a top-level null, say)
		}
		want, err := ref()
		if err != nil {
			t.Fatalf("%s: scanner accepted what encoding/json rejects (%v): %q", what, err, data)
		}
		if diff := cmp.Diff(want, ours, opts); diff != "" {
			t.Fatalf("%s: scanner and encoding/json differ (-json +scanner):\n%s\ninput %q", what, diff, data)
		}
	}
	models, next, err := readModelsPage(data)
	agree("models page", []any{models, next}, err, func() (any, error) {
		var p struct {
			Models []wireModel `json:"registered_models"`
			Next   string      `json:"next_page_token"`
		}
		err := json.Unmarshal(data, &p)
		return []any{p.Models, p.Next}, err
	})
	vs, next, err := readVersionsPage(data)
	agree("versions page", []any{vs, next}, err, func() (any, error) {
		var p struct {
			Versions []wireVersion `json:"model_versions"`
			Next     string        `json:"next_page_token"`
		}
		err := json.Unmarshal(data, &p)
		return []any{p.Versions, p.Next}, err
	})
	v, err := readVersion(data)
	agree("version", v, err, func() (any, error) {
		var p struct {
			V *wireVersion `json:"model_version"`
		}
		err := json.Unmarshal(data, &p)
		return p.V, err
	})
	m, err := readModel(data)
	agree("model", m, err, func() (any, error) {
		var p struct {
			M *wireModel `json:"registered_model"`
		}
		err := json.Unmarshal(data, &p)
		return p.M, err
	})
	rs, err := readRequests(data)
	agree("requests", rs, err, func() (any, error) {
		var p struct {
			R []wireActivity `json:"requests"`
		}
		err := json.Unmarshal(data, &p)
		return p.R, err
	})
}

// FuzzFormatMillis checks the fast time formatter against sources.FormatMillis.
func FuzzFormatMillis(f *testing.F) {
	for _, ms := range []int64{0, 1, 1795960124449, 951782400000, 253402300799999, 253402300800000, -1, 4102444800000 - 1} {
		f.Add(ms)
	}
	f.Fuzz(func(t *testing.T, ms int64) {
		if got, want := formatMillis(ms), sources.FormatMillis(ms); got != want {
			t.Fatalf("formatMillis(%d) = %q, want %q", ms, got, want)
		}
	})
}

func TestFormatMillisDays(t *testing.T) {
	for ms := int64(0); ms < 253402300800000; ms += 86400000*37 + 3601001 {
		if got, want := formatMillis(ms), sources.FormatMillis(ms); got != want {
			t.Fatalf("formatMillis(%d) = %q, want %q", ms, got, want)
		}
	}
}

// TestRecordedBodies decodes every recorded answer with the decoder of its
// endpoint.
func TestRecordedBodies(t *testing.T) {
	bodies := recordedBodies(t)
	if len(bodies) == 0 {
		t.Skip("recorded registry answers not available (../shared/fixtures)")
	}
	counts := map[string]int{}
	for _, b := range bodies {
		switch {
		case bytes.Contains(b, []byte(`"registered_models"`)):
			page, err := decodeModelsPage(b)
			if err != nil || len(page.models) == 0 {
				t.Errorf("models page: %v %q", err, b)
			}
			for i := range page.models {
				if _, err := convertModel(&page.models[i]); err != nil {
					t.Errorf("models page: %v", err)
				}
			}
			counts["models"]++
		case bytes.Contains(b, []byte(`"model_versions"`)):
			vs, _, err := decodeVersionsPage(b)
			if err != nil || len(vs) == 0 {
				t.Errorf("versions page: %v", err)
			}
			counts["versions"]++
		case bytes.HasPrefix(bytes.TrimSpace(b), []byte(`{"model_version"`)) || bytes.Contains(b, []byte("\"model_version\": {")):
			v, err := decodeVersion(b)
			if err != nil || v.v.Order == 0 {
				t.Errorf("version: %v", err)
			}
			counts["version"]++
		case bytes.Contains(b, []byte(`"registered_model"`)):
			m, err := decodeModel(b)
			if err != nil || !strings.HasPrefix(m.m.ID, m.m.Name+"@") {
				t.Errorf("model: %v", err)
			}
			counts["model"]++
		case bytes.Contains(b, []byte(`"requests"`)):
			rs, err := decodeRequests(b)
			if err != nil || len(rs) != 1 || rs[0].Requester != "carol@example.com" || rs[0].CreatedAt != "2024-11-21T10:00:00.321Z" {
				t.Errorf("requests: %v %+v", err, rs)
			}
			counts["requests"]++
		}
	}
	for _, k := range []string{"models", "versions", "version", "model", "requests"} {
		if counts[k] == 0 {
			t.Errorf("no recorded %s answer decoded", k)
		}
	}
}

func TestStrictness(t *testing.T) {
	bad := []string{
		`{"model_versions":[{"name":"a","version":"1","creation_timestamp":"1"}]}`,
		`{"model_versions":[{"name":"a","version":"1","creation_timestamp":1.5}]}`,
		`{"model_versions":[{"name":"a","version":"1","creation_timestamp":99999999999999999999}]}`,
		`{"model_versions":[{"name":"a","version":1}]}`,
		`{"model_versions":[{"name":"a","version":"+1"}]}`,
		`{"model_versions":[{"name":"a","version":"01"}]}`,
		`{"model_versions":[{"name":"a","version":"9007199254740992"}]}`,
		`{"model_versions":[{"name":"","version":"1"}]}`,
		`{"model_versions":[{"name":"a","version":"1","tags":[{"key":1}]}]}`,
		`{"model_versions":[{"name":"a","version":"1"}]} x`,
		`{"model_versions":[{"name":"a","version":"1"},]}`,
		`{"model_versions":[{"name":"a","version":"1","description":"\x01"}]}`,
		`{"model_versions":{}}`,
		"{\"model_versions\":[]}\x00",
		`<html>`,
	}
	for _, b := range bad {
		if _, _, err := decodeVersionsPage([]byte(b)); err == nil || !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted (%v)", b, err)
		}
	}
	ok := `{"unknown":{"deep":[1,{"x":null}]},"model_versions":[{"name":"a","version":"9007199254740991","extra":true,"description":null}],"next_page_token":null}`
	vs, next, err := decodeVersionsPage([]byte(ok))
	if err != nil || len(vs) != 1 || vs[0].v.Order != 1<<53-1 || vs[0].v.Description != nil || next != "" {
		t.Errorf("%v %+v %q", err, vs, next)
	}
}
