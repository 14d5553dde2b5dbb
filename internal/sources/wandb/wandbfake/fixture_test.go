package wandbfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// fixtureDir holds the recorded W&B queries and responses.
const fixtureDir = "../../../../../shared/fixtures/wandb"

func requireFixtures(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(fixtureDir, "schema.graphql")); err != nil {
		t.Skipf("W&B fixtures not available at %s: %v", fixtureDir, err)
	}
}

func readFixture(t testing.TB, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{fixtureDir}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSchemaMatchesFixture checks that every type, field, argument, enum value
// and union member the fake serves exists with the same type in the
// reconstructed W&B schema.
func TestSchemaMatchesFixture(t *testing.T) {
	requireFixtures(t)
	ref, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: readFixture(t, "schema.graphql")})
	if err != nil {
		t.Fatalf("fixture schema: %v", err)
	}
	schemas, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	fake := schemas[1]
	checked := 0
	for name, def := range fake.Types {
		if def.BuiltIn {
			continue
		}
		rdef := ref.Types[name]
		if rdef == nil {
			t.Errorf("type %s is not in the W&B schema", name)
			continue
		}
		if rdef.Kind != def.Kind {
			t.Errorf("type %s: kind %s, W&B %s", name, def.Kind, rdef.Kind)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			rf := rdef.Fields.ForName(f.Name)
			if rf == nil {
				t.Errorf("%s.%s is not in the W&B schema", name, f.Name)
				continue
			}
			if f.Type.String() != rf.Type.String() {
				t.Errorf("%s.%s: type %s, W&B %s", name, f.Name, f.Type, rf.Type)
			}
			for _, a := range f.Arguments {
				ra := rf.Arguments.ForName(a.Name)
				if ra == nil {
					t.Errorf("%s.%s(%s) is not in the W&B schema", name, f.Name, a.Name)
				} else if a.Type.String() != ra.Type.String() {
					t.Errorf("%s.%s(%s): type %s, W&B %s", name, f.Name, a.Name, a.Type, ra.Type)
				}
			}
			checked++
		}
		for _, v := range def.EnumValues {
			if rdef.EnumValues.ForName(v.Name) == nil {
				t.Errorf("enum %s value %s is not in the W&B schema", name, v.Name)
			}
		}
		for _, tn := range def.Types {
			if !slices.Contains(rdef.Types, tn) {
				t.Errorf("union %s member %s is not in the W&B schema", name, tn)
			}
		}
		for _, in := range def.Interfaces {
			if !slices.Contains(rdef.Interfaces, in) {
				t.Errorf("type %s implements %s, W&B's does not", name, in)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d fields", checked)
	}
	// Without history the two action-history fields must be gone.
	base := schemas[0].Types["ArtifactCollection"]
	if base.Fields.ForName("aliasActionHistory") != nil || base.Fields.ForName("artifactCollectionActions") != nil {
		t.Error("base schema serves action-history fields")
	}
}

// fixtureCase is one recorded query with the variables that make the fake
// answer what the recorded response shows.
type fixtureCase struct {
	query, response string
	vars            func(Example) map[string]any
	// skipValues lists JSON paths (dot-joined keys, no indexes) whose values
	// are not compared, where the recorded scenario is not self-consistent.
	skipValues []string
}

func fixtureCases() []fixtureCase {
	none := func(Example) map[string]any { return map[string]any{} }
	return []fixtureCase{
		{query: "ServerFeaturesQuery", response: "ServerFeaturesQuery", vars: none},
		{query: "FetchOrganization", response: "FetchOrganization", vars: func(Example) map[string]any { return map[string]any{"org": "acme"} }},
		{query: "FetchOrgInfoFromEntity", response: "FetchOrgInfoFromEntity", vars: func(Example) map[string]any { return map[string]any{"entity": "acme-ml"} }},
		{query: "FetchRegistries", response: "FetchRegistries", vars: func(Example) map[string]any {
			return map[string]any{"organization": "acme", "perPage": 100}
		}},
		{query: "FetchRegistry", response: "FetchRegistry", vars: func(Example) map[string]any {
			return map[string]any{"name": "wandb-registry-model", "entity": "acme-org"}
		}},
		{query: "RegistryCollections", response: "RegistryCollections", vars: func(Example) map[string]any {
			return map[string]any{"organization": "acme", "perPage": 100}
		}},
		{query: "RegistryVersions", response: "RegistryVersions", vars: func(Example) map[string]any {
			return map[string]any{"organization": "acme", "perPage": 2}
		}},
		{query: "RegistryVersions", response: "RegistryVersions.page2", vars: func(Example) map[string]any {
			return map[string]any{"organization": "acme", "perPage": 2, "cursor": encodeCursor(2, "")}
		}},
		{query: "ProjectArtifactCollections", response: "ProjectArtifactCollections", vars: func(Example) map[string]any {
			return map[string]any{"entity": "acme-ml", "project": "model-registry", "perPage": 100}
		}},
		{query: "ProjectArtifacts", response: "ProjectArtifacts", vars: func(Example) map[string]any {
			return map[string]any{"entity": "acme-ml", "project": "model-registry", "typeName": "model", "collection": "fraud-detector"}
		},
			// The recorded artifact-level alias lists omit the artifacts' aliases
			// in the registry collection and the legacy `latest`.
			skipValues: []string{"data.project.artifactType.artifactCollection.artifacts.edges.node.aliases"}},
		{query: "ArtifactCollectionAliases", response: "ArtifactCollectionAliases", vars: func(ex Example) map[string]any {
			return map[string]any{"id": ex.Collection}
		}},
		{query: "ArtifactMembershipByName", response: "ArtifactMembershipByName", vars: func(Example) map[string]any {
			return map[string]any{"entity": "acme-org", "project": "wandb-registry-model", "name": "fraud-detector:production"}
		}},
		{query: "FetchLinkedArtifacts", response: "FetchLinkedArtifacts", vars: func(ex Example) map[string]any {
			return map[string]any{"artifactID": ex.Artifacts[2]}
		}},
		{query: "ArtifactCreatedBy", response: "ArtifactCreatedBy", vars: func(ex Example) map[string]any {
			return map[string]any{"id": ex.Artifacts[1]}
		}},
		{query: "ArtifactCreatedBy", response: "ArtifactCreatedBy.user", vars: func(ex Example) map[string]any {
			return map[string]any{"id": ex.Artifacts[2]}
		}},
		{query: "RegistryUserMembers", response: "RegistryUserMembers", vars: func(Example) map[string]any {
			return map[string]any{"project": "wandb-registry-model", "entity": "acme-org"}
		}},
		{query: "PollerCollectionMemberships", response: "PollerCollectionMemberships", vars: func(ex Example) map[string]any {
			return map[string]any{"collectionID": ex.Collection}
		}},
		{query: "PollerAliasActionHistory", response: "PollerAliasActionHistory", vars: func(ex Example) map[string]any {
			return map[string]any{"collectionID": ex.Collection, "collectionName": "fraud-detector"}
		}},
		{query: "PollerCollectionActions", response: "PollerCollectionActions", vars: func(ex Example) map[string]any {
			return map[string]any{"collectionID": ex.Collection, "collectionName": "fraud-detector"}
		}},
		{query: "PollerProtectedAliases", response: "PollerProtectedAliases", vars: func(Example) map[string]any {
			return map[string]any{"entityName": "acme-ml"}
		}},
	}
}

// withFragments appends the fragments a query uses, transitively, from
// fragments.graphql (unused fragments would fail validation).
func withFragments(query, fragments string) string {
	defs := map[string]string{}
	for _, part := range strings.Split(fragments, "\nfragment ")[1:] {
		name, _, _ := strings.Cut(part, " ")
		defs[name] = "fragment " + part
	}
	spread := regexp.MustCompile(`\.\.\.([A-Za-z_][A-Za-z0-9_]*)`)
	out := query
	seen := map[string]bool{}
	queue := []string{query}
	for len(queue) > 0 {
		text := queue[0]
		queue = queue[1:]
		for _, m := range spread.FindAllStringSubmatch(text, -1) {
			if d, ok := defs[m[1]]; ok && !seen[m[1]] {
				seen[m[1]] = true
				out += "\n" + d
				queue = append(queue, d)
			}
		}
	}
	return out
}

func postQuery(t testing.TB, url, key, query string, vars map[string]any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("api", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes()
}

func newExampleServer(t testing.TB) (*Server, Example, *httptest.Server) {
	t.Helper()
	s := New(clock.NewFake(time.Date(2025, 6, 10, 8, 15, 2, 0, time.UTC)))
	s.SetAPIKey("test-key")
	ex, err := s.LoadExample()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, ex, hs
}

// TestFixtureResponses runs every recorded query against the fake loaded with
// the recorded scenario and compares the response with the recorded one: the
// same keys, nesting, JSON types and list lengths, and the same values of the
// fields that carry meaning (IDs, cursors and times may differ).
func TestFixtureResponses(t *testing.T) {
	requireFixtures(t)
	_, ex, hs := newExampleServer(t)
	fragments := readFixture(t, "queries", "fragments.graphql")
	for _, tc := range fixtureCases() {
		t.Run(tc.response, func(t *testing.T) {
			query := withFragments(readFixture(t, "queries", tc.query+".graphql"), fragments)
			status, got := postQuery(t, hs.URL, "test-key", query, tc.vars(ex))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, got)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatalf("decode fake response: %v\n%s", err, got)
			}
			if err := json.Unmarshal([]byte(readFixture(t, "responses", tc.response+".json")), &wantV); err != nil {
				t.Fatal(err)
			}
			pruneTypename(wantV, gotV)
			var loose []string
			for _, p := range tc.skipValues {
				loose = append(loose, "."+p)
			}
			if diffs := compareShape("", wantV, gotV, loose); len(diffs) > 0 {
				t.Errorf("shape differs from the recorded response:\n%s\nfake: %s", strings.Join(diffs, "\n"), got)
			}
			if diff := cmp.Diff(values(wantV, tc.skipValues), values(gotV, tc.skipValues)); diff != "" {
				t.Errorf("values differ from the recorded response (-recorded +fake):\n%s", diff)
			}
		})
	}
}

var indexes = regexp.MustCompile(`\[[0-9]+\]`)

// pruneTypename drops from want each `__typename` that got does not have: the
// SDK's client adds `__typename` to abstract-typed selections before sending,
// so the recording has it where the query file does not select it.
func pruneTypename(want, got any) {
	switch w := want.(type) {
	case map[string]any:
		g, _ := got.(map[string]any)
		if _, ok := g["__typename"]; !ok {
			delete(w, "__typename")
		}
		for k, v := range w {
			pruneTypename(v, g[k])
		}
	case []any:
		g, _ := got.([]any)
		for i, v := range w {
			if i < len(g) {
				pruneTypename(v, g[i])
			}
		}
	}
}

// compareShape reports where got differs in structure from want: object keys,
// nesting, list lengths and scalar JSON types. A null matches any scalar (the
// recording has nullable fields set in some rows and not in others), and
// under a path listed in loose, lists are compared by the union of their elements' shapes.
func compareShape(path string, want, got any, loose []string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %s", path, kind(got))}
		}
		var out []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, compareShape(path+"."+k, wv, gv, loose)...)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: not in the recording", path, k))
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want list, got %s", path, kind(got))}
		}
		if slices.Contains(loose, indexes.ReplaceAllString(path, "")) {
			if (len(w) == 0) != (len(g) == 0) {
				return []string{fmt.Sprintf("%s: %d items, recording %d", path, len(g), len(w))}
			}
			var out []string
			for _, ge := range g {
				out = append(out, compareShape(path+"[]", w[0], ge, loose)...)
			}
			return out
		}
		if len(w) != len(g) {
			return []string{fmt.Sprintf("%s: %d items, recording %d", path, len(g), len(w))}
		}
		var out []string
		for i := range w {
			out = append(out, compareShape(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], loose)...)
		}
		return out
	}
	wk, gk := kind(want), kind(got)
	if wk == gk || (wk == "null" && isScalar(gk)) || (gk == "null" && isScalar(wk)) {
		return nil
	}
	return []string{fmt.Sprintf("%s: want %s, got %s", path, wk, gk)}
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "list"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func isScalar(k string) bool { return k != "object" && k != "list" }

// meaningful are the keys whose values must agree with the recording.
var meaningful = map[string]bool{
	"__typename": true, "name": true, "alias": true, "versionIndex": true, "version": true,
	"hasNextPage": true, "actionType": true, "username": true, "state": true, "digest": true,
	"accountType": true, "isEnabled": true, "totalCount": true, "metadata": true, "description": true,
	"access": true, "email": true, "entityType": true, "commitHash": true, "size": true,
	"protectedAliases": true, "displayName": true,
}

// values lists "path=value" for every meaningful key, sorted, so that list
// order does not matter.
func values(v any, skip []string) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if slices.Contains(skip, path) {
			return
		}
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if meaningful[k] {
					if _, composite := e.(map[string]any); !composite {
						b, _ := json.Marshal(e)
						out = append(out, p+"="+string(b))
						continue
					}
				}
				walk(p, e)
			}
		case []any:
			for _, e := range v {
				walk(path, e)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}
