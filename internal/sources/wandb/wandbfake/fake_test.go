package wandbfake

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const collectionQuery = `query C($id: ID!) {
  artifactCollection(id: $id) {
    name
    artifactMemberships { edges { node { versionIndex aliases { alias } } } }
    aliasActionHistory { edges { node { actionType alias user { username } sourceArtifact { id } targetArtifact { id } } } }
  }
}`

type collectionResult struct {
	Data struct {
		ArtifactCollection *struct {
			Name                string `json:"name"`
			ArtifactMemberships struct {
				Edges []struct {
					Node struct {
						VersionIndex int `json:"versionIndex"`
						Aliases      []struct {
							Alias string `json:"alias"`
						} `json:"aliases"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"artifactMemberships"`
			AliasActionHistory struct {
				Edges []struct {
					Node struct {
						ActionType string `json:"actionType"`
						Alias      string `json:"alias"`
						User       struct {
							Username string `json:"username"`
						} `json:"user"`
						SourceArtifact *struct{ ID string } `json:"sourceArtifact"`
						TargetArtifact *struct{ ID string } `json:"targetArtifact"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"aliasActionHistory"`
		} `json:"artifactCollection"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

func TestDrivingMethods(t *testing.T) {
	s, ex, hs := newExampleServer(t)
	if err := s.SetAlias(ex.Collection, 0, "latest", "alice"); err == nil {
		t.Error("set the automatic alias latest")
	}
	if err := s.SetAlias(ex.Collection, 0, "v7", "alice"); err == nil {
		t.Error("set a version alias")
	}
	if err := s.RemoveAlias(ex.Collection, "staging", "carol"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlink(ex.Collection, 2, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameCollection(ex.Collection, "fraud-scorer"); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameCollection(ex.Collection, "churn-model"); err == nil {
		t.Error("renamed onto an existing collection")
	}
	if n, err := s.LinkVersion(ex.Collection, ex.Artifacts[2], "carol"); err != nil || n != 3 {
		t.Errorf("relink = v%d, %v; want v3 (indexes are not reused)", n, err)
	}
	status, body := postQuery(t, hs.URL, "test-key", collectionQuery, map[string]any{"id": ex.Collection})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var r collectionResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	c := r.Data.ArtifactCollection
	if c == nil || c.Name != "fraud-scorer" {
		t.Fatalf("collection %s", body)
	}
	var got []string
	for _, e := range c.ArtifactMemberships.Edges {
		var as []string
		for _, a := range e.Node.Aliases {
			as = append(as, a.Alias)
		}
		got = append(got, strings.Join(as, ","))
	}
	want := []string{"v3,latest", "v1", "v0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("memberships %v, want %v", got, want)
	}
	last := c.AliasActionHistory.Edges[0].Node
	if last.ActionType != ActionRemoveAlias || last.Alias != "staging" || last.User.Username != "carol" ||
		last.SourceArtifact == nil || last.TargetArtifact != nil {
		t.Errorf("latest action %+v", last)
	}
	if err := s.DeleteCollection(ex.Churn); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CollectionID("acme-org", "wandb-registry-model", "churn-model"); err == nil {
		t.Error("deleted collection still found")
	}
}

func TestAuthAndActionHistorySwitch(t *testing.T) {
	s, ex, hs := newExampleServer(t)
	if status, _ := postQuery(t, hs.URL, "wrong", collectionQuery, map[string]any{"id": ex.Collection}); status != http.StatusUnauthorized {
		t.Errorf("wrong key: status %d, want 401", status)
	}
	s.SetActionHistory(false)
	status, body := postQuery(t, hs.URL, "test-key", collectionQuery, map[string]any{"id": ex.Collection})
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `Cannot query field \"aliasActionHistory\" on type \"ArtifactCollection\"`) {
		t.Errorf("without action history: %d %s", status, body)
	}
	if n := s.Operations()["C"]; n != 1 {
		t.Errorf("operation C counted %d times, want 1", n)
	}
}

func TestFaultInjection(t *testing.T) {
	s, ex, hs := newExampleServer(t)
	vars := map[string]any{"id": ex.Collection}
	s.InjectFault(Fault{Kind: FaultRateLimited, RetryAfter: 1500 * time.Millisecond, Times: 1})
	s.InjectFault(Fault{Kind: FaultServerError, Operation: "Other"})
	s.InjectFault(Fault{Kind: FaultTruncated, Operation: "C", Times: 1})
	if status, _ := postQuery(t, hs.URL, "test-key", collectionQuery, vars); status != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", status)
	}
	status, body := postQuery(t, hs.URL, "test-key", collectionQuery, vars)
	if status != http.StatusOK || json.Valid(body) {
		t.Errorf("truncated: %d %s", status, body)
	}
	if status, body = postQuery(t, hs.URL, "test-key", collectionQuery, vars); status != http.StatusOK || !json.Valid(body) {
		t.Errorf("after the faults: %d %s", status, body)
	}
	s.ClearFaults()
	s.InjectFault(Fault{Kind: FaultEmptyPage, Times: 1})
	_, body = postQuery(t, hs.URL, "test-key", collectionQuery, vars)
	var r collectionResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Data.ArtifactCollection.ArtifactMemberships.Edges); n != 0 {
		t.Errorf("empty page has %d edges", n)
	}
	if n := len(r.Data.ArtifactCollection.AliasActionHistory.Edges); n == 0 {
		t.Error("the empty-page fault emptied more than the first connection")
	}
	if s.Requests() != 4 {
		t.Errorf("requests %d, want 4", s.Requests())
	}
}
