package wandb

import (
	"encoding/json"
	"testing"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// FuzzDecodeResponse feeds arbitrary bodies to the response decoder and the
// snapshot conversion: they must never panic, a body with GraphQL errors must
// never decode, and whatever decodes must give a snapshot whose canonical
// form round-trips.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"data":{"project":{"artifactCollections":{"pageInfo":{"endCursor":"c","hasNextPage":false},"edges":[` +
		`{"node":{"__typename":"ArtifactPortfolio","id":"QQ==","name":"m","description":null,"createdAt":"2025-06-10T08:15:02Z",` +
		`"updatedAt":null,"state":"READY","defaultArtifactType":{"name":"model"},"tags":{"edges":[{"node":{"name":"t"}}]},` +
		`"artifactMemberships":{"pageInfo":{"endCursor":null,"hasNextPage":false},"edges":[{"node":{"id":"TQ==","versionIndex":0,` +
		`"createdAt":"2025-06-10T08:15:02Z","aliases":[{"alias":"v0"},{"alias":"latest"},{"alias":"production"}],` +
		`"artifact":{"id":"QQ==","digest":"d","description":"x","metadata":"{\"a\": {\"b\": [1, 2]}, \"c\": \"<&>\"}",` +
		`"state":"COMMITTED","createdAt":"2025-06-10T08:15:02Z","updatedAt":"2025-06-10T08:15:03.123456Z","versionIndex":9,` +
		`"tags":[{"name":"tier-1"}],"artifactSequence":{"name":"s","project":{"name":"p","entity":{"name":"e"}}},` +
		`"createdBy":{"__typename":"Run","name":"r","user":{"username":"alice"}}}}}]},` +
		`"aliasActionHistory":{"pageInfo":{"endCursor":null,"hasNextPage":false},"edges":[{"node":{"actionType":"X","alias":"production",` +
		`"createdAt":"2025-06-10T08:15:02Z","user":{"username":"bob","name":"Bob"},"sourceArtifact":null,"targetArtifact":{"id":"QQ=="}}}]}}}]}}}}`))
	f.Add([]byte(`{"data":null,"errors":[{"message":"Cannot query field \"aliasActionHistory\" on type \"ArtifactCollection\"."}]}`))
	f.Add([]byte(`{"data":{"project":null}}`))
	f.Add([]byte(`{"data":{"project":{"artifactCollections":{"pageInfo":{"hasNextPage":true},"edges":[]}}}`))
	f.Add([]byte(`{"data":{"project":{"artifactCollections":{"edges":[{"node":{"id":"x","artifactMemberships":{"edges":[{"node":{"versionIndex":null}}]}}}]}}}}`))
	f.Add([]byte(`{"data":{"project":{"artifactCollections":{"edges":[{"node":{"id":"x","artifactMemberships":{"edges":[{"node":{"versionIndex":1,"artifact":{"metadata":"[1,"}}}]}}}]}}}}`))

	c, err := New(config.Source{Name: "fuzz", APIKey: "k", Organization: "o", Registries: []string{"model"}}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	p := project{entity: "e", name: "wandb-registry-model", registry: "model"}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := decodeResponse[collectionsData](body)
		var probe struct {
			Errors []json.RawMessage `json:"errors"`
		}
		if json.Unmarshal(body, &probe) == nil && len(probe.Errors) > 0 && err == nil {
			t.Fatal("a response with errors decoded")
		}
		if err != nil || d.Project == nil || d.Project.ArtifactCollections == nil {
			return
		}
		var models []sources.Model
		for _, n := range nodes(d.Project.ArtifactCollections.Edges) {
			col := &collection{project: p, node: n}
			if n.ArtifactMemberships != nil {
				col.memberships = nodes(n.ArtifactMemberships.Edges)
			}
			if n.AliasActionHistory != nil {
				col.actions = nodes(n.AliasActionHistory.Edges)
			}
			m, err := c.model(col)
			if err != nil {
				continue
			}
			models = append(models, m)
		}
		snap := &sources.Snapshot{Models: models}
		snap.Sort()
		b, err := snap.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		back, err := sources.ParseSnapshot(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := back.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(b2) {
			t.Fatalf("canonical bytes do not round-trip:\n%s\n%s", b, b2)
		}
	})
}
