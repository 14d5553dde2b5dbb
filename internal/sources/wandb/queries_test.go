package wandb

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// fixtureDir holds the recorded W&B schema, queries and responses.
const fixtureDir = "../../../../shared/fixtures/wandb"

var allQueries = map[string]string{
	opOrgEntity:                   queryOrgEntity,
	opProbeHistory:                queryProbeHistory,
	opCollections:                 queryCollections,
	opCollections + "WithHistory": queryCollectionsHistory,
	opMemberships:                 queryMemberships,
	opAliasActions:                queryAliasActions,
}

// usesHistory lists the operations that select the action-history fields.
var usesHistory = map[string]bool{
	opProbeHistory: true, opCollections + "WithHistory": true, opAliasActions: true,
}

// TestQueriesValidateAgainstFixtureSchema checks every operation against the
// W&B schema reconstructed from public sources.
func TestQueriesValidateAgainstFixtureSchema(t *testing.T) {
	sdl, err := os.ReadFile(filepath.Join(fixtureDir, "schema.graphql"))
	if err != nil {
		t.Skipf("W&B fixtures not available at %s: %v", fixtureDir, err)
	}
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(sdl)})
	if err != nil {
		t.Fatalf("fixture schema: %v", err)
	}
	for name, q := range allQueries {
		t.Run(name, func(t *testing.T) {
			if _, errs := gqlparser.LoadQueryWithRules(schema, q, rules.NewDefaultRules()); len(errs) > 0 {
				t.Fatalf("invalid against the W&B schema: %v", errs)
			}
		})
	}
}

// TestQueriesValidateAgainstFake checks every operation against the fake's
// schema, with and without the action-history fields: the operations that
// need them must fail exactly as on a server without them.
func TestQueriesValidateAgainstFake(t *testing.T) {
	for _, history := range []bool{true, false} {
		schema, err := gqlparser.LoadSchema(&ast.Source{Name: "fake.graphql", Input: wandbfake.SchemaSDL(history)})
		if err != nil {
			t.Fatal(err)
		}
		for name, q := range allQueries {
			_, errs := gqlparser.LoadQueryWithRules(schema, q, rules.NewDefaultRules())
			switch {
			case history || !usesHistory[name]:
				if len(errs) > 0 {
					t.Errorf("%s (history %v): %v", name, history, errs)
				}
			case len(errs) == 0:
				t.Errorf("%s validates without action history", name)
			case !isMissingField(errs, "aliasActionHistory"):
				t.Errorf("%s without action history: %v, want Cannot query field", name, errs)
			}
		}
	}
}
