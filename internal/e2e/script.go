package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/registrywatch/registrywatch/internal/daemon"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
	sm "github.com/registrywatch/registrywatch/internal/sources/sagemaker/sagemakerfake"
	"github.com/registrywatch/registrywatch/internal/sources/wandb/wandbfake"
)

// The quarter: registrywatch starts watching at Start; the export covers
// [Start, End).
var (
	Start = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	End   = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	// setUp is when the registries' existing state was made.
	setUp = time.Date(2026, 9, 30, 12, 0, 0, 0, time.UTC)
)

// at returns hh:mm UTC on a day of the quarter (months 10 to 12 of 2026).
func at(month time.Month, day, hh, mm int) time.Time {
	return time.Date(2026, month, day, hh, mm, 0, 0, time.UTC)
}

// The people of the quarter. MLflow open source records no one (its
// approval tag names the approver); Databricks never names an approver;
// SageMaker names callers through CloudTrail; W&B through its action
// history.
var (
	pipeline    = sm.AssumedRole("mlops-pipeline", "build-4812") // a CI role session
	bobAWS      = sm.AssumedRole("MLReviewer", "bob").WithSourceIdentity("bob@example.com")
	aliceAWS    = sm.AssumedRole("MLEngineer", "alice").WithSourceIdentity("alice@example.com")
	pipelineARN = "arn:aws:sts::" + sm.DefaultAccount + ":assumed-role/mlops-pipeline/build-4812"
)

// Values of the population's columns.
const (
	unknown   = "unknown"
	yes       = "yes"
	no        = "no"
	standard  = "standard"
	emergency = "emergency"
	rollback  = "rollback"

	approved     = "approved"
	missing      = "missing"
	selfApproved = "self_approved"
	late         = "late"
	na           = "n/a"

	leftProduction    = "left_production"
	lateApproval      = "late_approval"
	rollbackCompleted = "rollback_completed"
	gapClosed         = "gap_closed"
	openAtEnd         = "open_at_period_end"
)

// Model names.
const (
	fraud       = "fraud-detector"
	aml         = "aml-scorer"
	churn       = "churn-predictor"
	credit      = "credit-risk"
	recommender = wandbOrgOwner + "/" + wandbRegistry + "/recommender"
	ranker      = wandbOrgOwner + "/" + wandbRegistry + "/ranker"
)

// Step is one thing that happens in the quarter: at a time, in a source
// (or to registrywatch itself), described as it would be told.
type Step struct {
	At time.Time
	// Event is the kind of event, for the summary.
	Event  string
	Source string
	What   string
	Do     func(q *Quarter) error
}

// Kinds of events.
const (
	eventAction      = "registry action"
	eventOutage      = "registry outage"
	eventSlackOutage = "slack outage"
	eventRestart     = "daemon restart"
	eventDowntime    = "daemon down"
)

// Quarter plays the script on a World and writes the record of truth.
type Quarter struct {
	// W is the world the script acts on.
	W *World
	// Rec is what the script recorded as it acted.
	Rec *Record

	ctx context.Context // Play's, for restarts

	rows     map[string]*Population
	outages  map[string]func()
	down     map[string]time.Time // source -> start of its outage
	stopped  time.Time
	slackEnd time.Time
}

// NewQuarter prepares the script on w.
func NewQuarter(w *World) *Quarter {
	return &Quarter{W: w, Rec: &Record{Events: map[string]int{}}, rows: map[string]*Population{},
		outages: map[string]func(){}, down: map[string]time.Time{}}
}

// Play sets up the registries, starts the daemon at Start, plays every step,
// runs to End and stops the daemon. logf, when set, tells each step.
func (q *Quarter) Play(ctx context.Context, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := q.Begin(ctx); err != nil {
		return err
	}
	for _, s := range quarter {
		if err := q.W.AdvanceTo(s.At); err != nil {
			return fmt.Errorf("before %s %s: %w", fmtTime(s.At), s.What, err)
		}
		logf("%s %s: %s", s.At.Format("Jan 02 15:04"), s.Source, s.What)
		if err := s.Do(q); err != nil {
			return fmt.Errorf("%s %s: %s: %w", fmtTime(s.At), s.Source, s.What, err)
		}
		q.Rec.Events[s.Source+" "+s.Event]++
	}
	if err := q.W.AdvanceTo(End); err != nil {
		return err
	}
	if err := q.W.Stop(); err != nil {
		return fmt.Errorf("stop the daemon: %w", err)
	}
	q.finish()
	return nil
}

// Begin sets up what the registries hold when registrywatch is deployed
// and starts the daemon at Start.
func (q *Quarter) Begin(ctx context.Context) error {
	q.ctx = ctx
	for _, s := range setting {
		if err := s.Do(q); err != nil {
			return fmt.Errorf("set up: %s: %w", s.What, err)
		}
	}
	if err := q.W.AdvanceTo(Start); err != nil {
		return err
	}
	return q.W.Start(ctx)
}

// SlackOutage is when Slack was down, for checking the deliveries.
func (q *Quarter) SlackOutage() Interval { return Interval{slackDown, q.slackEnd} }

func (q *Quarter) now() time.Time { return q.W.Clock.Now() }

// serves records that from now on versions are in production for model,
// the last one serving.
func (q *Quarter) serves(source, model string, versions ...string) {
	s := &State{Source: source, Model: model, Versions: versions, At: q.now()}
	if len(versions) > 0 {
		s.Serving = versions[len(versions)-1]
	}
	q.Rec.States = append(q.Rec.States, s)
}

// baseline records what serves when registrywatch first looks.
func (q *Quarter) baseline(source, model string, versions ...string) {
	q.serves(source, model, versions...)
	s := q.Rec.States[len(q.Rec.States)-1]
	s.Baseline, s.At = true, Start
}

// judged records a population row for a change made now; name lets a later
// step amend it (a late approval, an attribution).
func (q *Quarter) judged(name string, p Population) {
	p.At = q.now()
	q.rows[name] = &p
	q.Rec.Population = append(q.Rec.Population, &p)
}

func (q *Quarter) row(name string) *Population {
	p, ok := q.rows[name]
	if !ok {
		panic("no population row " + name)
	}
	return p
}

func (q *Quarter) exception(e Exception) { q.Rec.Exceptions = append(q.Rec.Exceptions, &e) }

// outage makes source answer errors until recover is called.
func (q *Quarter) outage(source string) {
	var off func()
	switch source {
	case MLflow:
		off = q.W.MLflow.Inject(mlflowfake.Fault{Status: 503, Message: "service unavailable"})
	case Databricks:
		off = q.W.Databricks.Inject(mlflowfake.Fault{Status: 503, Message: "temporarily unavailable"})
	case SageMaker:
		q.W.SageMaker.AddFault(sm.Fault{Count: -1, Status: 500, Code: "InternalFailure", Message: "internal error"})
		off = q.W.SageMaker.ClearFaults
	case WandB:
		q.W.WandB.InjectFault(wandbfake.Fault{Kind: wandbfake.FaultServerError, Status: 502})
		off = q.W.WandB.ClearFaults
	}
	q.outages[source], q.down[source] = off, q.now()
}

// recover ends source's outage. Once the second tick after the last
// successful poll (the tick at or before the outage began) has failed, a
// gap is recorded from that poll to the first poll that succeeds now (the
// next retry, at most daemon.RetryMax away); once CoverageGap has passed
// since that poll, so is a coverage.late that the gap closes.
func (q *Quarter) recover(source string) {
	q.outages[source]()
	from, to := q.down[source], q.now()
	last := from.Truncate(Period) // the last successful poll: polls fall on the hour
	if to.After(last.Add(2 * Period)) {
		q.Rec.Gaps = append(q.Rec.Gaps, &Gap{Source: source, Cause: "source_error",
			From: Interval{last, last}, To: Interval{to, to.Add(daemon.RetryMax)}, Down: Interval{from, to}})
	}
	if to.After(last.Add(CoverageGap)) {
		q.exception(Exception{Source: source, Kind: "coverage.late", Ended: gapClosed})
	}
	delete(q.outages, source)
}

// stop stops the daemon gracefully.
func (q *Quarter) stop() error {
	q.stopped = q.now()
	return q.W.Stop()
}

// start starts the daemon again on the same ledger. When two ticks passed
// while it was down, each source has a daemon_down gap from its last poll
// (the tick before the stop) to the poll at start; when the downtime is
// longer than CoverageGap, the daemon reports it at start as coverage.late,
// which the gap then closes.
func (q *Quarter) start(ctx context.Context) error {
	now := q.now()
	lastTick := q.stopped.Truncate(Period)
	if now.Sub(lastTick) >= 2*Period {
		for _, s := range []string{MLflow, Databricks, SageMaker, WandB} {
			q.Rec.Gaps = append(q.Rec.Gaps, &Gap{Source: s, Cause: "daemon_down",
				From: Interval{lastTick, lastTick}, To: Interval{now, now}, Down: Interval{q.stopped, now}})
			if now.Sub(lastTick) >= CoverageGap {
				q.exception(Exception{Source: s, Kind: "coverage.late", Ended: gapClosed})
			}
		}
	}
	return q.W.Start(ctx)
}

// finish sets when each state must have been observed: by the first tick
// after the change, or after the outage or downtime that hid it.
func (q *Quarter) finish() {
	for _, s := range q.Rec.States {
		if s.Baseline {
			s.ObservedBy = s.At
			continue
		}
		by := s.At
		for _, g := range q.Rec.Gaps {
			if g.Source == s.Source && g.Down.Contains(by) {
				by = g.Down.To
			}
		}
		s.ObservedBy = by.Add(Period + instantBelow)
	}
}

// joinErrs joins the errors of steps done one after the other.
func joinErrs(errs ...error) error { return errors.Join(errs...) }

func mlflowVersion(model string, n int, tags ...string) mlflowfake.VersionSpec {
	spec := mlflowfake.VersionSpec{Source: fmt.Sprintf("s3://acme-models/%s/%d", model, n), RunID: fmt.Sprintf("run%04d", n)}
	for i := 0; i+1 < len(tags); i += 2 {
		spec.Tags = append(spec.Tags, mlflowfake.Tag{Key: tags[i], Value: tags[i+1]})
	}
	return spec
}

func databricksVersion(n int) mlflowfake.VersionSpec {
	return mlflowfake.VersionSpec{Source: fmt.Sprintf("dbfs:/models/churn-predictor/%d", n), User: "erin@example.com"}
}

// create registers the next MLflow version of model, which MUST be n.
func create(s *mlflowfake.Server, model string, n int, spec mlflowfake.VersionSpec) error {
	v, err := s.CreateVersion(model, spec)
	if err == nil && v != fmt.Sprint(n) {
		err = fmt.Errorf("%s: created version %s, want %d", model, v, n)
	}
	return err
}

// promote moves an MLflow version to Production, archiving the one there.
func promote(s *mlflowfake.Server, model string, v int) error {
	return s.TransitionStage(model, fmt.Sprint(v), mlflowfake.StageProduction, true)
}

// request opens erin's transition request of churn-predictor v to
// Production; approve has frank approve it.
func request(q *Quarter, v int) error {
	_, err := q.W.Databricks.CreateTransitionRequest("erin@example.com", churn, fmt.Sprint(v), mlflowfake.StageProduction, "")
	return err
}

func approve(q *Quarter, v int) error {
	_, err := q.W.Databricks.ApproveTransitionRequest("frank@example.com", churn, fmt.Sprint(v), mlflowfake.StageProduction, true, "")
	return err
}

// link logs recommender artifact n as user and links it as v<n>.
func link(q *Quarter, user string, n int) error {
	coll, err := q.W.WandB.CollectionID(wandbOrgOwner, wandbRegistry, "recommender")
	if err != nil {
		return err
	}
	art, err := q.W.WandB.LogArtifact(wandbTeam, wandbProject, "recommender-two-tower", wandbfake.Artifact{
		Digest: fmt.Sprintf("%032x", 1000+n), Run: fmt.Sprintf("train-%d", 100+n), CreatedBy: user,
	})
	if err != nil {
		return err
	}
	idx, err := q.W.WandB.LinkVersion(coll, art, user)
	if err == nil && idx != n {
		err = fmt.Errorf("recommender: linked as v%d, want v%d", idx, n)
	}
	return err
}

// alias points a recommender alias at v<n> as user.
func alias(q *Quarter, n int, name, user string) error {
	coll, err := q.W.WandB.CollectionID(wandbOrgOwner, wandbRegistry, "recommender")
	if err != nil {
		return err
	}
	return q.W.WandB.SetAlias(coll, n, name, user)
}

func pkg(q *Quarter, v int32) string { return q.W.SageMaker.PackageARN(credit, v) }

func createPackage(q *Quarter, status string, who sm.Identity, v int32) error {
	arn, err := q.W.SageMaker.CreatePackage(credit, status, who)
	if err == nil && arn != pkg(q, v) {
		err = fmt.Errorf("created %s, want version %d", arn, v)
	}
	return err
}

// setting is what the registries hold when registrywatch is deployed.
var setting = []Step{
	{setUp, eventAction, MLflow, "fraud-detector v1 and aml-scorer v1 serve in Production", func(q *Quarter) error {
		m := q.W.MLflow
		err := joinErrs(m.CreateModel(fraud, mlflowfake.ModelSpec{Description: "card fraud scoring"}),
			create(m, fraud, 1, mlflowVersion(fraud, 1, "approved_by", "bob")), promote(m, fraud, 1),
			m.CreateModel(aml, mlflowfake.ModelSpec{}), create(m, aml, 1, mlflowVersion(aml, 1)), promote(m, aml, 1))
		q.baseline(MLflow, fraud, "1")
		q.baseline(MLflow, aml, "1")
		return err
	}},
	{setUp, eventAction, Databricks, "churn-predictor v1 serves in Production", func(q *Quarter) error {
		d := q.W.Databricks
		err := joinErrs(d.CreateModel(churn, mlflowfake.ModelSpec{User: "erin@example.com"}),
			create(d, churn, 1, databricksVersion(1)), promote(d, churn, 1))
		q.baseline(Databricks, churn, "1")
		return err
	}},
	{setUp, eventAction, SageMaker, "credit-risk v1 is Approved", func(q *Quarter) error {
		_, err := q.W.SageMaker.CreateGroup(credit, "credit limit decisions")
		err = joinErrs(err, createPackage(q, sm.PendingManualApproval, pipeline, 1),
			q.W.SageMaker.UpdateApproval(pkg(q, 1), sm.Approved, "", bobAWS))
		q.baseline(SageMaker, credit, "1")
		return err
	}},
	{setUp, eventAction, WandB, "recommender v0 holds the production and approved aliases", func(q *Quarter) error {
		b := q.W.WandB
		b.AddUser(wandbfake.User{Username: "carol", Email: "carol@example.com"})
		b.AddUser(wandbfake.User{Username: "bob", Email: "bob@example.com"})
		b.AddUser(wandbfake.User{Username: "ci-bot", Service: true})
		err := joinErrs(b.AddOrganization(wandbOrg, wandbOrgOwner), b.AddTeam(wandbTeam, wandbOrg),
			b.CreateRegistry(wandbOrg, "model", wandbfake.ProjectSpec{ArtifactTypes: []string{"model"}}),
			b.CreateProject(wandbTeam, wandbProject, wandbfake.ProjectSpec{}))
		if err == nil {
			_, err = b.CreateCollection(wandbOrgOwner, wandbRegistry, "recommender", wandbfake.CollectionSpec{Description: "home page"})
		}
		err = joinErrs(err, link(q, "carol", 0), alias(q, 0, "approved", "bob"), alias(q, 0, "production", "ci-bot"))
		q.baseline(WandB, recommender, "v0")
		return err
	}},
}

// slackDown is when Slack goes down for twelve hours.
var slackDown = at(12, 8, 6, 0)

// quarter is what happens from October to December, in time order.
var quarter = []Step{
	// MLflow open source: an approved promotion; a promotion without
	// approval, approved late; a rollback met and one overrun.
	{at(10, 5, 10, 20), eventAction, MLflow, "the pipeline registers fraud-detector v2", func(q *Quarter) error {
		return create(q.W.MLflow, fraud, 2, mlflowVersion(fraud, 2))
	}},
	{at(10, 5, 14, 20), eventAction, MLflow, "bob approves fraud-detector v2: approved_by=bob", func(q *Quarter) error {
		return q.W.MLflow.SetVersionTag(fraud, "2", "approved_by", "bob")
	}},
	{at(10, 5, 16, 20), eventAction, MLflow, "alice moves fraud-detector v2 to Staging", func(q *Quarter) error {
		return q.W.MLflow.TransitionStage(fraud, "2", mlflowfake.StageStaging, false)
	}},
	{at(10, 6, 9, 20), eventAction, MLflow, "alice promotes fraud-detector v2 from Staging to Production", func(q *Quarter) error {
		q.serves(MLflow, fraud, "2")
		q.judged("fraud v2", Population{Source: MLflow, Model: fraud, Version: "2", ChangeType: standard, Promoter: unknown,
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		return promote(q.W.MLflow, fraud, 2)
	}},
	{at(10, 12, 9, 20), eventAction, MLflow, "the pipeline registers fraud-detector v3", func(q *Quarter) error {
		return create(q.W.MLflow, fraud, 3, mlflowVersion(fraud, 3))
	}},
	{at(10, 12, 11, 20), eventAction, MLflow, "alice promotes fraud-detector v3 without approval", func(q *Quarter) error {
		q.serves(MLflow, fraud, "3")
		q.judged("fraud v3", Population{Source: MLflow, Model: fraud, Version: "3", ChangeType: standard, Promoter: unknown,
			ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: missing})
		return promote(q.W.MLflow, fraud, 3)
	}},
	{at(10, 13, 15, 20), eventAction, MLflow, "bob approves fraud-detector v3 after the fact", func(q *Quarter) error {
		r := q.row("fraud v3")
		r.Verdict, r.Approver = late, "bob"
		q.exception(Exception{Source: MLflow, Model: fraud, Version: "3", Kind: "promotion", Verdict: missing, Reason: "no_evidence", Ended: lateApproval})
		q.exception(Exception{Source: MLflow, Model: fraud, Version: "3", Kind: "promotion", Verdict: late, Ended: lateApproval})
		return q.W.MLflow.SetVersionTag(fraud, "3", "approved_by", "bob")
	}},
	{at(10, 20, 10, 20), eventAction, MLflow, "dave requests a rollback of fraud-detector v3", func(q *Quarter) error {
		return q.W.MLflow.SetVersionTag(fraud, "3", "rollback_requested", "INC-1")
	}},
	{at(10, 20, 11, 10), eventAction, MLflow, "dave rolls fraud-detector back to v2 (within the objective)", func(q *Quarter) error {
		q.serves(MLflow, fraud, "2")
		q.judged("fraud rollback 1", Population{Source: MLflow, Model: fraud, Version: "2", ChangeType: rollback, Promoter: unknown,
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved, Result: "met"})
		return promote(q.W.MLflow, fraud, 2)
	}},
	{at(11, 2, 10, 20), eventAction, MLflow, "the pipeline registers fraud-detector v4, approved_by=bob", func(q *Quarter) error {
		return create(q.W.MLflow, fraud, 4, mlflowVersion(fraud, 4, "approved_by", "bob"))
	}},
	{at(11, 3, 9, 20), eventAction, MLflow, "alice promotes fraud-detector v4", func(q *Quarter) error {
		q.serves(MLflow, fraud, "4")
		q.judged("fraud v4", Population{Source: MLflow, Model: fraud, Version: "4", ChangeType: standard, Promoter: unknown,
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		return promote(q.W.MLflow, fraud, 4)
	}},
	{at(11, 10, 10, 20), eventAction, MLflow, "dave requests a rollback of fraud-detector v4", func(q *Quarter) error {
		return q.W.MLflow.SetVersionTag(fraud, "4", "rollback_requested", "INC-2")
	}},
	{at(11, 10, 15, 10), eventAction, MLflow, "dave rolls fraud-detector back to v2, hours late", func(q *Quarter) error {
		q.serves(MLflow, fraud, "2")
		q.judged("fraud rollback 2", Population{Source: MLflow, Model: fraud, Version: "2", ChangeType: rollback, Promoter: unknown,
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved, Result: "overrun"})
		q.exception(Exception{Source: MLflow, Model: fraud, Version: "4", Kind: "rollback.overdue", Ended: rollbackCompleted})
		q.exception(Exception{Source: MLflow, Model: fraud, Version: "2", Kind: "rollback", Verdict: approved, Result: "overrun", Ended: rollbackCompleted})
		return promote(q.W.MLflow, fraud, 2)
	}},
	{at(11, 17, 9, 20), eventAction, MLflow, "the pipeline registers fraud-detector v5 tagged emergency_change", func(q *Quarter) error {
		return create(q.W.MLflow, fraud, 5, mlflowVersion(fraud, 5, "emergency_change", "INC-3"))
	}},
	{at(11, 17, 10, 20), eventAction, MLflow, "alice rushes fraud-detector v5 to Production without approval", func(q *Quarter) error {
		q.serves(MLflow, fraud, "5")
		q.judged("fraud v5", Population{Source: MLflow, Model: fraud, Version: "5", ChangeType: emergency, Promoter: unknown,
			ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: missing})
		return promote(q.W.MLflow, fraud, 5)
	}},
	{at(11, 18, 9, 20), eventAction, MLflow, "the pipeline registers fraud-detector v6, approved_by=bob", func(q *Quarter) error {
		return create(q.W.MLflow, fraud, 6, mlflowVersion(fraud, 6, "approved_by", "bob"))
	}},
	{at(11, 18, 13, 20), eventAction, MLflow, "alice replaces v5 with fraud-detector v6", func(q *Quarter) error {
		q.serves(MLflow, fraud, "6")
		q.judged("fraud v6", Population{Source: MLflow, Model: fraud, Version: "6", ChangeType: standard, Promoter: unknown,
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		q.exception(Exception{Source: MLflow, Model: fraud, Version: "5", Kind: "promotion", Verdict: missing, Reason: "no_evidence", Ended: leftProduction})
		return promote(q.W.MLflow, fraud, 6)
	}},

	// Databricks: requests approved, a direct transition, a vacancy
	// that overran its objective.
	{at(10, 7, 9, 20), eventAction, Databricks, "erin registers churn-predictor v2", func(q *Quarter) error {
		return create(q.W.Databricks, churn, 2, databricksVersion(2))
	}},
	{at(10, 7, 9, 40), eventAction, Databricks, "erin moves churn-predictor v2 to Staging", func(q *Quarter) error {
		return q.W.Databricks.TransitionStage(churn, "2", mlflowfake.StageStaging, false)
	}},
	{at(10, 7, 10, 20), eventAction, Databricks, "erin requests churn-predictor v2 to Production", func(q *Quarter) error {
		return request(q, 2)
	}},
	{at(10, 7, 13, 20), eventAction, Databricks, "frank approves: v2 serves", func(q *Quarter) error {
		q.serves(Databricks, churn, "2")
		q.judged("churn v2", Population{Source: Databricks, Model: churn, Version: "2", ChangeType: standard, Promoter: unknown,
			Approver: unknown, ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		return approve(q, 2)
	}},
	{at(10, 14, 9, 20), eventAction, Databricks, "erin registers churn-predictor v3", func(q *Quarter) error {
		return create(q.W.Databricks, churn, 3, databricksVersion(3))
	}},
	{at(10, 14, 11, 20), eventAction, Databricks, "erin moves v3 to Production herself, no request", func(q *Quarter) error {
		q.serves(Databricks, churn, "3")
		q.judged("churn v3", Population{Source: Databricks, Model: churn, Version: "3", ChangeType: standard, Promoter: unknown,
			ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: missing})
		return promote(q.W.Databricks, churn, 3)
	}},
	{at(10, 21, 10, 20), eventAction, Databricks, "erin registers churn-predictor v4", func(q *Quarter) error {
		return create(q.W.Databricks, churn, 4, databricksVersion(4))
	}},
	{at(10, 21, 11, 20), eventAction, Databricks, "erin requests churn-predictor v4 to Production", func(q *Quarter) error {
		return request(q, 4)
	}},
	{at(10, 21, 14, 20), eventAction, Databricks, "frank approves: v4 replaces v3", func(q *Quarter) error {
		q.serves(Databricks, churn, "4")
		q.judged("churn v4", Population{Source: Databricks, Model: churn, Version: "4", ChangeType: standard, Promoter: unknown,
			Approver: unknown, ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		q.exception(Exception{Source: Databricks, Model: churn, Version: "3", Kind: "promotion", Verdict: missing, Reason: "no_evidence", Ended: leftProduction})
		return approve(q, 4)
	}},
	{at(11, 4, 10, 20), eventAction, Databricks, "erin pulls churn-predictor v4: nothing serves", func(q *Quarter) error {
		q.serves(Databricks, churn)
		return q.W.Databricks.TransitionStage(churn, "4", mlflowfake.StageArchived, false)
	}},
	{at(11, 4, 13, 20), eventAction, Databricks, "erin stages churn-predictor v2 and requests it back", func(q *Quarter) error {
		return joinErrs(q.W.Databricks.TransitionStage(churn, "2", mlflowfake.StageStaging, false), request(q, 2))
	}},
	{at(11, 4, 15, 20), eventAction, Databricks, "frank approves: v2 serves again, five hours after the vacancy", func(q *Quarter) error {
		q.serves(Databricks, churn, "2")
		q.judged("churn rollback", Population{Source: Databricks, Model: churn, Version: "2", ChangeType: rollback, Promoter: unknown,
			Approver: unknown, ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved, Result: "overrun"})
		q.exception(Exception{Source: Databricks, Model: churn, Version: "4", Kind: "rollback.overdue", Ended: rollbackCompleted})
		q.exception(Exception{Source: Databricks, Model: churn, Version: "2", Kind: "rollback", Verdict: approved, Result: "overrun", Ended: rollbackCompleted})
		return approve(q, 2)
	}},
	{at(11, 23, 10, 20), eventAction, Databricks, "erin registers churn-predictor v5", func(q *Quarter) error {
		return create(q.W.Databricks, churn, 5, databricksVersion(5))
	}},
	{at(11, 23, 14, 20), eventAction, Databricks, "erin requests churn-predictor v5 to Production", func(q *Quarter) error {
		return request(q, 5)
	}},
	{at(12, 15, 9, 20), eventAction, Databricks, "erin registers churn-predictor v6", func(q *Quarter) error {
		return create(q.W.Databricks, churn, 6, databricksVersion(6))
	}},
	{at(12, 15, 11, 20), eventAction, Databricks, "erin moves v6 to Production herself, no request", func(q *Quarter) error {
		q.serves(Databricks, churn, "6")
		q.judged("churn v6", Population{Source: Databricks, Model: churn, Version: "6", ChangeType: standard, Promoter: unknown,
			ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: missing})
		q.exception(Exception{Source: Databricks, Model: churn, Version: "6", Kind: "promotion", Verdict: missing, Reason: "no_evidence", Ended: openAtEnd})
		return promote(q.W.Databricks, churn, 6)
	}},

	// SageMaker: approvals named by CloudTrail at once and late, a
	// self-approval rejected later, a package created approved.
	{at(10, 8, 9, 20), eventAction, SageMaker, "the pipeline registers credit-risk v2", func(q *Quarter) error {
		return createPackage(q, sm.PendingManualApproval, pipeline, 2)
	}},
	{at(10, 8, 11, 20), eventAction, SageMaker, "bob approves credit-risk v2", func(q *Quarter) error {
		q.serves(SageMaker, credit, "1", "2")
		q.judged("credit v2", Population{Source: SageMaker, Model: credit, Version: "2", ChangeType: standard, Promoter: "bob@example.com",
			Approver: "bob@example.com", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		return q.W.SageMaker.UpdateApproval(pkg(q, 2), sm.Approved, "backtest ok", bobAWS)
	}},
	{at(10, 15, 9, 20), eventAction, SageMaker, "the pipeline registers credit-risk v3", func(q *Quarter) error {
		return createPackage(q, sm.PendingManualApproval, pipeline, 3)
	}},
	{at(10, 15, 10, 20), eventAction, SageMaker, "bob approves credit-risk v3 (CloudTrail shows it 90 minutes later)", func(q *Quarter) error {
		q.serves(SageMaker, credit, "1", "2", "3")
		q.judged("credit v3", Population{Source: SageMaker, Model: credit, Version: "3", ChangeType: standard, Promoter: "bob@example.com",
			Approver: "bob@example.com", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		q.W.SageMaker.SetCloudTrailDelay(90 * time.Minute)
		defer q.W.SageMaker.SetCloudTrailDelay(0)
		return q.W.SageMaker.UpdateApproval(pkg(q, 3), sm.Approved, "backtest ok", bobAWS)
	}},
	{at(10, 22, 9, 20), eventAction, SageMaker, "alice registers credit-risk v4", func(q *Quarter) error {
		return createPackage(q, sm.PendingManualApproval, aliceAWS, 4)
	}},
	{at(10, 22, 10, 20), eventAction, SageMaker, "alice approves her own credit-risk v4", func(q *Quarter) error {
		q.serves(SageMaker, credit, "1", "2", "3", "4")
		q.judged("credit v4", Population{Source: SageMaker, Model: credit, Version: "4", ChangeType: standard, Promoter: "alice@example.com",
			Approver: "alice@example.com", ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: selfApproved})
		return q.W.SageMaker.UpdateApproval(pkg(q, 4), sm.Approved, "lgtm", aliceAWS)
	}},
	{at(10, 29, 10, 20), eventAction, SageMaker, "bob rejects credit-risk v4: v3 serves again", func(q *Quarter) error {
		q.serves(SageMaker, credit, "1", "2", "3")
		q.judged("credit rollback", Population{Source: SageMaker, Model: credit, Version: "3", ChangeType: rollback, Promoter: "bob@example.com",
			ApprovedBefore: unknown, ApproverIsPromoter: unknown, Verdict: na, Result: "met"})
		q.exception(Exception{Source: SageMaker, Model: credit, Version: "4", Kind: "promotion", Verdict: selfApproved, Ended: leftProduction})
		return q.W.SageMaker.UpdateApproval(pkg(q, 4), sm.Rejected, "self-approved", bobAWS)
	}},
	{at(11, 25, 10, 20), eventAction, SageMaker, "the pipeline registers credit-risk v5", func(q *Quarter) error {
		return createPackage(q, sm.PendingManualApproval, pipeline, 5)
	}},

	// Weights & Biases with action history.
	{at(10, 9, 9, 20), eventAction, WandB, "carol links recommender v1", func(q *Quarter) error { return link(q, "carol", 1) }},
	{at(10, 9, 9, 40), eventAction, WandB, "carol puts the staging alias on v1", func(q *Quarter) error {
		return alias(q, 1, "staging", "carol")
	}},
	{at(10, 9, 10, 20), eventAction, WandB, "bob moves the approved alias to v1", func(q *Quarter) error {
		return alias(q, 1, "approved", "bob")
	}},
	{at(10, 9, 13, 20), eventAction, WandB, "ci-bot moves the production alias to v1", func(q *Quarter) error {
		q.serves(WandB, recommender, "v1")
		q.judged("rec v1", Population{Source: WandB, Model: recommender, Version: "v1", ChangeType: standard, Promoter: "ci-bot",
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: no, Verdict: approved})
		return alias(q, 1, "production", "ci-bot")
	}},
	{at(10, 16, 9, 20), eventAction, WandB, "carol links recommender v2", func(q *Quarter) error { return link(q, "carol", 2) }},
	{at(10, 16, 10, 20), eventAction, WandB, "carol approves her own v2", func(q *Quarter) error {
		return alias(q, 2, "approved", "carol")
	}},
	{at(10, 16, 11, 20), eventAction, WandB, "ci-bot moves the production alias to v2", func(q *Quarter) error {
		q.serves(WandB, recommender, "v2")
		q.judged("rec v2", Population{Source: WandB, Model: recommender, Version: "v2", ChangeType: standard, Promoter: "ci-bot",
			Approver: "carol", ApprovedBefore: no, ApproverIsPromoter: no, Verdict: selfApproved})
		return alias(q, 2, "production", "ci-bot")
	}},
	{at(10, 30, 9, 20), eventAction, WandB, "carol links recommender v3", func(q *Quarter) error { return link(q, "carol", 3) }},
	{at(10, 30, 10, 20), eventAction, WandB, "bob approves v3", func(q *Quarter) error { return alias(q, 3, "approved", "bob") }},
	{at(10, 30, 11, 20), eventAction, WandB, "carol moves the production alias to v3", func(q *Quarter) error {
		q.serves(WandB, recommender, "v3")
		q.judged("rec v3", Population{Source: WandB, Model: recommender, Version: "v3", ChangeType: standard, Promoter: "carol",
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: no, Verdict: approved})
		q.exception(Exception{Source: WandB, Model: recommender, Version: "v2", Kind: "promotion", Verdict: selfApproved, Ended: leftProduction})
		return alias(q, 3, "production", "carol")
	}},
	{at(11, 18, 9, 20), eventAction, WandB, "carol links recommender v5", func(q *Quarter) error { return link(q, "carol", 5) }},
	{at(11, 20, 10, 20), eventAction, WandB, "bob approves v5 the morning after it went live", func(q *Quarter) error {
		r := q.row("rec v5")
		r.Verdict, r.Approver = late, "bob"
		q.exception(Exception{Source: WandB, Model: recommender, Version: "v5", Kind: "promotion", Verdict: missing, Reason: "no_evidence", Ended: lateApproval})
		q.exception(Exception{Source: WandB, Model: recommender, Version: "v5", Kind: "promotion", Verdict: late, Ended: lateApproval})
		return alias(q, 5, "approved", "bob")
	}},
	{at(12, 2, 9, 20), eventAction, WandB, "carol links recommender v6", func(q *Quarter) error { return link(q, "carol", 6) }},
	{at(12, 2, 14, 20), eventAction, WandB, "bob approves v6", func(q *Quarter) error { return alias(q, 6, "approved", "bob") }},
	{at(12, 3, 10, 20), eventAction, WandB, "ci-bot removes the production alias: nothing serves", func(q *Quarter) error {
		q.serves(WandB, recommender)
		coll, err := q.W.WandB.CollectionID(wandbOrgOwner, wandbRegistry, "recommender")
		if err != nil {
			return err
		}
		return q.W.WandB.RemoveAlias(coll, "production", "ci-bot")
	}},
	{at(12, 3, 11, 20), eventAction, WandB, "ci-bot puts the production alias on v6", func(q *Quarter) error {
		q.serves(WandB, recommender, "v6")
		q.judged("rec v6", Population{Source: WandB, Model: recommender, Version: "v6", ChangeType: standard, Promoter: "ci-bot",
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: no, Verdict: approved})
		return alias(q, 6, "production", "ci-bot")
	}},

	// Restarts: two short ones, one long enough for a daemon_down gap,
	// during which W&B goes live without approval.
	{at(10, 10, 12, 30), eventRestart, "registrywatch", "the daemon is restarted (ten minutes down)", func(q *Quarter) error {
		if err := q.stop(); err != nil {
			return err
		}
		if err := q.W.AdvanceTo(at(10, 10, 12, 40)); err != nil {
			return err
		}
		return q.start(q.ctx)
	}},
	{at(11, 19, 10, 10), eventDowntime, "registrywatch", "the daemon stops for a host migration", func(q *Quarter) error {
		return q.stop()
	}},
	{at(11, 19, 15, 20), eventAction, WandB, "ci-bot moves the production alias to v5, unapproved, while registrywatch is down", func(q *Quarter) error {
		q.serves(WandB, recommender, "v5")
		q.judged("rec v5", Population{Source: WandB, Model: recommender, Version: "v5", ChangeType: standard, Promoter: "ci-bot",
			ApprovedBefore: no, ApproverIsPromoter: no, Verdict: missing})
		return alias(q, 5, "production", "ci-bot")
	}},
	{at(11, 19, 12, 20), eventAction, MLflow, "the pipeline registers aml-scorer v2, approved_by=bob, while registrywatch is down", func(q *Quarter) error {
		return create(q.W.MLflow, aml, 2, mlflowVersion(aml, 2, "approved_by", "bob"))
	}},
	{at(11, 19, 13, 20), eventAction, MLflow, "alice promotes aml-scorer v2 while registrywatch is down", func(q *Quarter) error {
		q.serves(MLflow, aml, "2")
		// First seen already in Production and approved: the approval
		// tag carried by the version's creation is the evidence, of
		// unknown order against the promotion.
		q.judged("aml v2", Population{Source: MLflow, Model: aml, Version: "2", ChangeType: standard, Promoter: unknown,
			Approver: "bob", ApprovedBefore: unknown, ApproverIsPromoter: unknown, Verdict: approved})
		return promote(q.W.MLflow, aml, 2)
	}},
	{at(11, 19, 16, 20), eventAction, WandB, "carol creates the ranker collection, links v0, bob approves it and ci-bot puts it in production, while registrywatch is down", func(q *Quarter) error {
		coll, err := q.W.WandB.CreateCollection(wandbOrgOwner, wandbRegistry, "ranker", wandbfake.CollectionSpec{})
		if err != nil {
			return err
		}
		art, err := q.W.WandB.LogArtifact(wandbTeam, wandbProject, "ranker-gbdt", wandbfake.Artifact{Digest: fmt.Sprintf("%032x", 2000), CreatedBy: "carol"})
		if err != nil {
			return err
		}
		if _, err := q.W.WandB.LinkVersion(coll, art, "carol"); err != nil {
			return err
		}
		q.serves(WandB, ranker, "v0")
		// New aliases of a new version fold into its creation: the
		// evidence is that entry, of unknown order against the promotion
		// (the creation, seen over the poll interval); the action history
		// names who set each alias: bob approved, ci-bot promoted. The
		// population cannot tell approver from promoter apart by entries
		// when one entry is both evidence and trigger, so it says unknown.
		q.judged("ranker v0", Population{Source: WandB, Model: ranker, Version: "v0", ChangeType: standard, Promoter: "ci-bot",
			Approver: "bob", ApprovedBefore: unknown, ApproverIsPromoter: unknown, Verdict: approved})
		return joinErrs(q.W.WandB.SetAlias(coll, 0, "approved", "bob"), q.W.WandB.SetAlias(coll, 0, "production", "ci-bot"))
	}},
	{at(11, 19, 20, 0), eventRestart, "registrywatch", "the daemon starts again on the new host", func(q *Quarter) error {
		return q.start(q.ctx)
	}},
	{at(12, 20, 3, 10), eventRestart, "registrywatch", "the daemon is restarted (ten minutes down)", func(q *Quarter) error {
		if err := q.stop(); err != nil {
			return err
		}
		if err := q.W.AdvanceTo(at(12, 20, 3, 20)); err != nil {
			return err
		}
		return q.start(q.ctx)
	}},

	// An outage of each registry, with changes made meanwhile.
	{at(11, 12, 8, 30), eventOutage, WandB, "W&B answers 502 to every request", func(q *Quarter) error {
		q.outage(WandB)
		return nil
	}},
	{at(11, 12, 9, 20), eventAction, WandB, "carol links recommender v4 during the outage", func(q *Quarter) error {
		return link(q, "carol", 4)
	}},
	{at(11, 12, 10, 20), eventAction, WandB, "bob approves v4 during the outage", func(q *Quarter) error {
		return alias(q, 4, "approved", "bob")
	}},
	{at(11, 12, 12, 20), eventAction, WandB, "ci-bot moves the production alias to v4 during the outage", func(q *Quarter) error {
		q.serves(WandB, recommender, "v4")
		// First seen already linked, approved and in production: the
		// action history still tells who moved each alias, and when.
		q.judged("rec v4", Population{Source: WandB, Model: recommender, Version: "v4", ChangeType: standard, Promoter: "ci-bot",
			Approver: "bob", ApprovedBefore: yes, ApproverIsPromoter: no, Verdict: approved})
		return alias(q, 4, "production", "ci-bot")
	}},
	{at(11, 12, 14, 30), eventOutage, WandB, "W&B is back", func(q *Quarter) error {
		q.recover(WandB)
		return nil
	}},
	{at(11, 24, 2, 30), eventOutage, Databricks, "the Databricks workspace answers 503", func(q *Quarter) error {
		q.outage(Databricks)
		return nil
	}},
	{at(11, 24, 7, 20), eventAction, Databricks, "frank approves churn-predictor v5 during the outage", func(q *Quarter) error {
		q.serves(Databricks, churn, "5")
		q.judged("churn v5", Population{Source: Databricks, Model: churn, Version: "5", ChangeType: standard, Promoter: unknown,
			Approver: unknown, ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		return approve(q, 5)
	}},
	{at(11, 24, 9, 30), eventOutage, Databricks, "the Databricks workspace is back", func(q *Quarter) error {
		q.recover(Databricks)
		return nil
	}},
	{at(11, 26, 6, 30), eventOutage, SageMaker, "SageMaker and CloudTrail answer InternalFailure", func(q *Quarter) error {
		q.outage(SageMaker)
		return nil
	}},
	{at(11, 26, 9, 20), eventAction, SageMaker, "bob approves credit-risk v5 during the outage", func(q *Quarter) error {
		q.serves(SageMaker, credit, "1", "2", "3", "5")
		q.judged("credit v5", Population{Source: SageMaker, Model: credit, Version: "5", ChangeType: standard, Promoter: "bob@example.com",
			Approver: "bob@example.com", ApprovedBefore: yes, ApproverIsPromoter: unknown, Verdict: approved})
		return q.W.SageMaker.UpdateApproval(pkg(q, 5), sm.Approved, "backtest ok", bobAWS)
	}},
	{at(11, 26, 12, 30), eventOutage, SageMaker, "SageMaker is back", func(q *Quarter) error {
		q.recover(SageMaker)
		return nil
	}},
	{at(11, 30, 10, 20), eventAction, MLflow, "the pipeline registers fraud-detector v7", func(q *Quarter) error {
		return create(q.W.MLflow, fraud, 7, mlflowVersion(fraud, 7))
	}},
	{at(12, 1, 8, 30), eventOutage, MLflow, "the MLflow server answers 503", func(q *Quarter) error {
		q.outage(MLflow)
		return nil
	}},
	{at(12, 1, 10, 20), eventAction, MLflow, "bob approves fraud-detector v7 during the outage", func(q *Quarter) error {
		return q.W.MLflow.SetVersionTag(fraud, "7", "approved_by", "bob")
	}},
	{at(12, 1, 13, 20), eventAction, MLflow, "alice promotes fraud-detector v7 during the outage", func(q *Quarter) error {
		q.serves(MLflow, fraud, "7")
		// The tag's time is only known to lie between the last poll
		// before the outage and the first after it: the order of
		// approval and promotion is unknown.
		q.judged("fraud v7", Population{Source: MLflow, Model: fraud, Version: "7", ChangeType: standard, Promoter: unknown,
			Approver: "bob", ApprovedBefore: unknown, ApproverIsPromoter: unknown, Verdict: approved})
		return promote(q.W.MLflow, fraud, 7)
	}},
	{at(12, 1, 16, 30), eventOutage, MLflow, "the MLflow server is back", func(q *Quarter) error {
		q.recover(MLflow)
		return nil
	}},

	// Slack is down for twelve hours while three findings alert.
	{slackDown, eventSlackOutage, "slack", "Slack answers 503 for twelve hours", func(q *Quarter) error {
		q.slackEnd = slackDown.Add(12 * time.Hour)
		q.W.Slack.DownUntil(q.slackEnd)
		return nil
	}},
	{at(12, 7, 10, 20), eventAction, MLflow, "the pipeline registers aml-scorer v3", func(q *Quarter) error {
		return create(q.W.MLflow, aml, 3, mlflowVersion(aml, 3))
	}},
	{at(12, 8, 9, 20), eventAction, WandB, "carol links recommender v7", func(q *Quarter) error { return link(q, "carol", 7) }},
	{at(12, 8, 10, 20), eventAction, WandB, "carol approves her own v7", func(q *Quarter) error {
		return alias(q, 7, "approved", "carol")
	}},
	{at(12, 8, 11, 20), eventAction, WandB, "carol moves the production alias to v7", func(q *Quarter) error {
		q.serves(WandB, recommender, "v7")
		q.judged("rec v7", Population{Source: WandB, Model: recommender, Version: "v7", ChangeType: standard, Promoter: "carol",
			Approver: "carol", ApprovedBefore: no, ApproverIsPromoter: yes, Verdict: selfApproved})
		q.exception(Exception{Source: WandB, Model: recommender, Version: "v7", Kind: "promotion", Verdict: selfApproved, Ended: openAtEnd})
		return alias(q, 7, "production", "carol")
	}},
	{at(12, 8, 11, 20), eventAction, SageMaker, "the pipeline registers credit-risk v6 already Approved", func(q *Quarter) error {
		q.serves(SageMaker, credit, "1", "2", "3", "5", "6")
		q.judged("credit v6", Population{Source: SageMaker, Model: credit, Version: "6", ChangeType: standard, Promoter: pipelineARN,
			ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: missing})
		q.exception(Exception{Source: SageMaker, Model: credit, Version: "6", Kind: "promotion", Verdict: missing, Reason: "created_approved", Ended: openAtEnd})
		return createPackage(q, sm.Approved, pipeline, 6)
	}},
	{at(12, 8, 12, 20), eventAction, MLflow, "alice promotes aml-scorer v3 without approval", func(q *Quarter) error {
		q.serves(MLflow, aml, "3")
		q.judged("aml v3", Population{Source: MLflow, Model: aml, Version: "3", ChangeType: standard, Promoter: unknown,
			ApprovedBefore: no, ApproverIsPromoter: unknown, Verdict: missing})
		q.exception(Exception{Source: MLflow, Model: aml, Version: "3", Kind: "promotion", Verdict: missing, Reason: "no_evidence", Ended: openAtEnd})
		return promote(q.W.MLflow, aml, 3)
	}},
}

func init() {
	// Steps are written by registry; they play in time order (steps at
	// the same time in the order written).
	slices.SortStableFunc(quarter, func(a, b Step) int { return a.At.Compare(b.At) })
}
