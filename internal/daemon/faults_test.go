package daemon

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// TestPollFaultsAppendNothing injects each fault of the MLflow fault matrix
// while a change is pending: the poll fails and appends no change, snapshot
// or finding; the next good poll records the true changes once.
func TestPollFaultsAppendNothing(t *testing.T) {
	faults := map[string]mlflowfake.Fault{
		"500":               {Status: 500},
		"503 every attempt": {Status: 503},
		"429":               {Status: 429, RetryAfter: "1"},
		"401":               {Status: 401},
		"403":               {Status: 403, Code: "PERMISSION_DENIED"},
		"reset":             {Reset: true},
		"truncated":         {Truncate: true},
		"garbage":           {Body: `{"model_versions": [{"name": 7`},
		"html":              {HTML: true, Status: 502},
		"versions page":     {Path: "model-versions/search", Status: 500},
		"model get":         {Path: "registered-models/get", Status: 500},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			r := newMLflowRig(t, sources.TypeMLflow, config.SourceApproval{Tag: "approved_by"})
			r.driven = true // retries back off on the clock
			f := r.fake
			r.must(f.CreateModel("m", mlflowfake.ModelSpec{}))
			_, err := f.CreateVersion("m", mlflowfake.VersionSpec{Source: "s3://m/1"})
			r.must(err)
			r.poll()
			r.must(f.TransitionStage("m", "1", "Production", false))

			r.clk.Advance(time.Minute)
			before, _ := r.led.Size(t.Context())
			remove := f.Inject(fault)
			drive(r.clk, func() { _, err = r.p.PollOnce(t.Context()) })
			if err == nil {
				t.Fatal("the poll succeeded through the fault")
			}
			if !strings.Contains(err.Error(), `"dbx"`) || !strings.Contains(err.Error(), "/api/2.0/mlflow/") {
				t.Errorf("error does not name the source and the endpoint: %v", err)
			}
			if got := r.entries(before); len(got) != 0 {
				t.Fatalf("failed poll appended %v", got)
			}
			remove()
			sameLines(t, "after the fault", r.poll(), []string{
				"stage.changed m@1 unknown",
				"production.changed m@ registrywatch",
				"promotion m@1 registrywatch",
			})
			sameLines(t, "once", r.poll(), nil)
		})
	}
}

// TestEditedStateRefusesToPoll edits, then deletes, the stored state with
// raw SQL: the next poll refuses to run and names the source.
func TestEditedStateRefusesToPoll(t *testing.T) {
	for _, edit := range []string{
		`UPDATE state SET bytes = CAST('{"models":[]}' AS BLOB) WHERE source = 'dbx'`,
		`DELETE FROM state WHERE source = 'dbx'`,
	} {
		t.Run(strings.Fields(edit)[0], func(t *testing.T) {
			r := newMLflowRig(t, sources.TypeMLflow, config.SourceApproval{Tag: "approved_by"})
			r.must(r.fake.CreateModel("m", mlflowfake.ModelSpec{}))
			r.poll()
			db, err := sql.Open("sqlite3", r.path)
			r.must(err)
			defer db.Close()
			if _, err := db.Exec(edit); err != nil {
				t.Fatal(err)
			}
			fresh := NewPoller(r.p.src, r.led, PollerOptions{Clock: r.clk, Policy: r.p.cfg})
			_, err = fresh.PollOnce(t.Context())
			if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "dbx") {
				t.Fatalf("poll after %q: %v", edit, err)
			}
		})
	}
}
