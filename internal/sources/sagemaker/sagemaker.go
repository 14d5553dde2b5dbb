// Package sagemaker watches the Amazon SageMaker Model Registry: every
// versioned model package of the configured model package groups, with its
// approval status, ModelLifeCycle and creator, and who changed it as CloudTrail
// tells.
//
// A snapshot lists the groups (ListModelPackageGroups) and their versioned
// packages (ListModelPackages, ModelPackageType Versioned), and describes
// (DescribeModelPackage) only the packages whose list-level fields changed
// since the previous snapshot; the others copy their described fields from
// it, so a restart, whose previous snapshot comes from the ledger, describes
// nothing. CloudTrail LookupEvents (CreateModelPackage, UpdateModelPackage)
// supplies the actor facts, incrementally, with its cursor in the source's aux
// state.
//
// Mapping to sources.Snapshot (DESIGN.md section 2):
//
//   - Model: Name = group name, ID = group ARN, CreatedAt, Description,
//     URL = the group's console page, Raw = the group summary fields.
//   - Version: ID = ModelPackageVersion in decimal, Order = that number;
//     ApprovalStatus = ModelApprovalStatus; LifecycleStage =
//     ModelLifeCycle.Stage alone (the stage names production.lifecycle_stages
//     lists; its StageStatus and StageDescription are in Raw
//     "ModelLifeCycle"); Status = ModelPackageStatus; Description =
//     ModelPackageDescription; CreatedAt = CreationTime; UpdatedAt =
//     LastModifiedTime; Creator = IdentityKey of CreatedBy; Source =
//     InferenceSpecification.Containers[0].ModelDataUrl; Digest = that
//     container's ModelDataETag when given; URL = the version's console page;
//     Actors = CloudTrail actor facts (see Actor changes below).
//
// Version.Raw keys (values are JSON text: strings quoted, times as epoch
// seconds with milliseconds as the wire has them, objects with the API's
// member names):
//
//   - list-level, compared to decide whether to describe: ModelPackageArn,
//     ModelApprovalStatus, ModelPackageStatus, ModelLifeCycle,
//     ModelPackageDescription, CreationTime;
//   - described, copied while the list-level fields stay the same:
//     ApprovalDescription, CreatedBy, LastModifiedBy (UserContext objects),
//     LastModifiedTime, ModelDataUrl, ModelDataETag, Image, ImageDigest;
//   - RawCreatedApproved.
//
// Described fields are as of the last describe: a change that moves no
// list-level field (LastModifiedTime alone, metadata) is not seen until one
// does. Model package tags (ListTags) are not read.
package sagemaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// RawCreatedApproved is the Version.Raw key set to "true" when the package
// skipped the manual approval step: it was created Approved
// (CreateModelPackage with ModelApprovalStatus Approved in CloudTrail, or,
// when described, CreationTime == LastModifiedTime while Approved). The key
// is absent otherwise. Once set it stays set for as long as the version
// exists. The policy reads it as the created_approved reason.
const RawCreatedApproved = "created_approved"

// Actor changes set in Version.Actors (sources.Actor.Change), from CloudTrail:
//
//   - "version.created": CreateModelPackage; Key = the approval status given
//     at creation ("" when none was given).
//   - "approval.changed": UpdateModelPackage with a ModelApprovalStatus; Key =
//     the new status.
//   - "lifecycle.changed": UpdateModelPackage with a ModelLifeCycle; Key = the
//     new stage.
//
// Actor is the IdentityKey of the record's userIdentity, At the event time,
// Evidence the CloudTrail event id, Raw the event name.
const (
	ChangeVersionCreated   = "version.created"
	ChangeApprovalChanged  = "approval.changed"
	ChangeLifecycleChanged = "lifecycle.changed"
)

// Defaults of a Client.
const (
	DefaultConcurrency = 8
	DefaultLookback    = 30 * time.Minute
	listPageSize       = 100
)

// API is the part of the SageMaker client a Client uses.
type API interface {
	ListModelPackageGroups(ctx context.Context, in *sm.ListModelPackageGroupsInput, optFns ...func(*sm.Options)) (*sm.ListModelPackageGroupsOutput, error)
	ListModelPackages(ctx context.Context, in *sm.ListModelPackagesInput, optFns ...func(*sm.Options)) (*sm.ListModelPackagesOutput, error)
	DescribeModelPackage(ctx context.Context, in *sm.DescribeModelPackageInput, optFns ...func(*sm.Options)) (*sm.DescribeModelPackageOutput, error)
}

// Trail is the part of the CloudTrail client a Client uses.
type Trail interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

// Options are the optional dependencies of a Client.
type Options struct {
	// Clock times retries, the CloudTrail rate limit and lookup windows
	// (default clock.Real).
	Clock clock.Clock
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
	// HTTPClient carries the AWS requests (default: the SDK's, with
	// cfg.Timeout as the request timeout when set).
	HTTPClient aws.HTTPClient
	// Credentials replace the SDK's default chain (environment, shared
	// profile, web identity, container and instance role) when set; the
	// role of cfg.RoleARN is assumed on top of either.
	Credentials aws.CredentialsProvider
	// API and Trail replace the SDK clients when set (tests).
	API   API
	Trail Trail
}

// Client is a SageMaker Model Registry source.
type Client struct {
	cfg         config.Source
	region      string
	concurrency int
	lookback    time.Duration
	api         API
	trail       Trail
	clk         clock.Clock
	log         *slog.Logger
	lookups     *bucket

	unavailable atomic.Int64
	mu          sync.Mutex
	warned      bool // CloudTrail unavailability was logged as a warning
}

var _ sources.Source = (*Client)(nil)

// New returns a Client for cfg. It loads the AWS configuration (region,
// credentials chain, optional role to assume) but makes no request.
func New(ctx context.Context, cfg config.Source, opts Options) (*Client, error) {
	c := &Client{
		cfg:         cfg,
		region:      cfg.Region,
		concurrency: cfg.Concurrency,
		lookback:    cfg.CloudTrail.Lookback.D(),
		api:         opts.API,
		trail:       opts.Trail,
		clk:         opts.Clock,
		log:         opts.Logger,
	}
	if c.clk == nil {
		c.clk = clock.Real{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("source", cfg.Name)
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	if c.lookback <= 0 {
		c.lookback = DefaultLookback
	}
	c.lookback = min(c.lookback, cloudTrailRetention)
	c.lookups = &bucket{clk: c.clk, interval: lookupInterval}
	if c.api == nil || c.trail == nil {
		if err := c.buildClients(ctx, opts); err != nil {
			return nil, fmt.Errorf("source %q: %w", cfg.Name, err)
		}
	}
	if c.region == "" {
		return nil, fmt.Errorf("source %q: region is not set (region in config or AWS_REGION)", cfg.Name)
	}
	if !cfg.CloudTrail.On() {
		c.log.Info("CloudTrail attribution is disabled: actors and approvers stay unknown")
	}
	return c, nil
}

func (c *Client) buildClients(ctx context.Context, opts Options) error {
	var loadOpts []func(*awsconfig.LoadOptions) error
	if c.cfg.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(c.cfg.Region))
	}
	switch {
	case opts.HTTPClient != nil:
		loadOpts = append(loadOpts, awsconfig.WithHTTPClient(opts.HTTPClient))
	case c.cfg.Timeout > 0:
		loadOpts = append(loadOpts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(c.cfg.Timeout.D())))
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(opts.Credentials))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	if c.cfg.RoleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), c.cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "registrywatch"
		})
		awsCfg.Credentials = aws.NewCredentialsCache(provider)
	}
	if c.region == "" {
		c.region = awsCfg.Region
	}
	endpoint := func(base **string) {
		if c.cfg.Endpoint != "" {
			*base = aws.String(c.cfg.Endpoint)
		}
	}
	if c.api == nil {
		c.api = sm.NewFromConfig(awsCfg, func(o *sm.Options) { endpoint(&o.BaseEndpoint) })
	}
	if c.trail == nil {
		c.trail = cloudtrail.NewFromConfig(awsCfg, func(o *cloudtrail.Options) { endpoint(&o.BaseEndpoint) })
	}
	return nil
}

// Name returns the configured source name.
func (c *Client) Name() string { return c.cfg.Name }

// Type returns sources.TypeSageMaker.
func (c *Client) Type() string { return sources.TypeSageMaker }

// CloudTrailUnavailable returns how many snapshots were taken without
// CloudTrail attribution because CloudTrail denied access.
func (c *Client) CloudTrailUnavailable() int64 { return c.unavailable.Load() }

// poll is the state of one Snapshot call.
type poll struct {
	c        *Client
	ctx      context.Context
	smOpts   []func(*sm.Options)
	ctOpts   []func(*cloudtrail.Options)
	requests atomic.Int64
}

// listing is one group and its packages as listed.
type listing struct {
	group    types.ModelPackageGroupSummary
	packages []types.ModelPackageSummary
}

// Snapshot lists every matching group and versioned package, describes the
// changed ones, adds CloudTrail actor facts and returns the complete
// snapshot, or an error naming the source and the operation that failed.
func (c *Client) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	retryer := func() aws.Retryer { return newRetryer(ctx, c.clk) }
	p := &poll{
		c:      c,
		ctx:    ctx,
		smOpts: []func(*sm.Options){func(o *sm.Options) { o.Retryer = retryer() }},
		ctOpts: []func(*cloudtrail.Options){func(o *cloudtrail.Options) { o.Retryer = retryer() }},
	}
	groups, err := p.listGroups()
	if err != nil {
		return sources.Result{}, err
	}
	listings, err := p.listPackages(groups)
	if err != nil {
		return sources.Result{}, err
	}
	snap, err := p.build(listings, indexVersions(prev.Snapshot))
	if err != nil {
		return sources.Result{}, err
	}
	aux, err := p.attribute(snap, prev.Aux)
	if err != nil {
		return sources.Result{}, err
	}
	snap.Sort()
	return sources.Result{Snapshot: snap, Aux: aux, Requests: int(p.requests.Load())}, nil
}

// fail wraps err with the source name and the operation.
func (p *poll) fail(op string, err error) error {
	if ctxErr := p.ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "UnrecognizedClientException":
			return fmt.Errorf("source %q: %s: AWS credentials are expired or invalid: %w", p.c.cfg.Name, op, err)
		}
	}
	return fmt.Errorf("source %q: %s: %w", p.c.cfg.Name, op, err)
}

func (p *poll) listGroups() ([]types.ModelPackageGroupSummary, error) {
	var out []types.ModelPackageGroupSummary
	in := &sm.ListModelPackageGroupsInput{
		MaxResults: aws.Int32(listPageSize),
		SortBy:     types.ModelPackageGroupSortByCreationTime,
		SortOrder:  types.SortOrderAscending,
	}
	for {
		p.requests.Add(1)
		resp, err := p.c.api.ListModelPackageGroups(p.ctx, in, p.smOpts...)
		if err != nil {
			return nil, p.fail("SageMaker ListModelPackageGroups", err)
		}
		for _, g := range resp.ModelPackageGroupSummaryList {
			if p.c.cfg.Matches(deref(g.ModelPackageGroupName)) {
				out = append(out, g)
			}
		}
		if deref(resp.NextToken) == "" {
			return out, nil
		}
		if deref(resp.NextToken) == deref(in.NextToken) {
			return nil, p.fail("SageMaker ListModelPackageGroups", errors.New("the registry returned the same page token twice"))
		}
		in.NextToken = resp.NextToken
	}
}

// listPackages lists the versioned packages of every group, cfg.Concurrency
// groups at a time.
func (p *poll) listPackages(groups []types.ModelPackageGroupSummary) ([]listing, error) {
	out := make([]listing, len(groups))
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(p.c.concurrency)
	for i, grp := range groups {
		out[i].group = grp
		g.Go(func() error {
			name := deref(grp.ModelPackageGroupName)
			in := &sm.ListModelPackagesInput{
				ModelPackageGroupName: aws.String(name),
				ModelPackageType:      types.ModelPackageTypeVersioned,
				MaxResults:            aws.Int32(listPageSize),
				SortBy:                types.ModelPackageSortByCreationTime,
				SortOrder:             types.SortOrderAscending,
			}
			op := "SageMaker ListModelPackages group " + strconv.Quote(name)
			for {
				p.requests.Add(1)
				resp, err := p.c.api.ListModelPackages(ctx, in, p.smOpts...)
				if err != nil {
					return p.fail(op, err)
				}
				out[i].packages = append(out[i].packages, resp.ModelPackageSummaryList...)
				if deref(resp.NextToken) == "" {
					return nil
				}
				if deref(resp.NextToken) == deref(in.NextToken) {
					return p.fail(op, errors.New("the registry returned the same page token twice"))
				}
				in.NextToken = resp.NextToken
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// versionKey identifies a version across snapshots: group ARN and version id.
type versionKey struct{ model, version string }

func indexVersions(s *sources.Snapshot) map[versionKey]*sources.Version {
	idx := map[versionKey]*sources.Version{}
	if s == nil {
		return idx
	}
	for i := range s.Models {
		m := &s.Models[i]
		for j := range m.Versions {
			idx[versionKey{m.ID, m.Versions[j].ID}] = &m.Versions[j]
		}
	}
	return idx
}

// build turns the listings into a snapshot, describing the packages whose
// list-level fields differ from prev.
func (p *poll) build(listings []listing, prev map[versionKey]*sources.Version) (*sources.Snapshot, error) {
	snap := &sources.Snapshot{Models: make([]sources.Model, 0, len(listings))}
	type task struct {
		v   *sources.Version
		arn string
	}
	var describe []task
	for _, l := range listings {
		m := p.c.model(l.group)
		m.Versions = make([]sources.Version, 0, len(l.packages))
		for _, s := range l.packages {
			if s.ModelPackageVersion == nil {
				continue // not a versioned package
			}
			m.Versions = append(m.Versions, p.c.version(m.Name, s))
		}
		snap.Models = append(snap.Models, m)
	}
	for i := range snap.Models {
		m := &snap.Models[i]
		for j := range m.Versions {
			v := &m.Versions[j]
			old := prev[versionKey{m.ID, v.ID}]
			if old != nil {
				v.Actors = slices.Clone(old.Actors)
			}
			if old != nil && !listChanged(v.Raw, old.Raw) {
				copyDescribed(v, old)
				continue
			}
			if old != nil && rawValue(old.Raw, RawCreatedApproved) == "true" {
				v.Raw = append(v.Raw, sources.KV{Key: RawCreatedApproved, Value: "true"})
			}
			describe = append(describe, task{v: v, arn: unquote(rawValue(v.Raw, "ModelPackageArn"))})
		}
	}
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(p.c.concurrency)
	for _, t := range describe {
		g.Go(func() error {
			p.requests.Add(1)
			out, err := p.c.api.DescribeModelPackage(ctx, &sm.DescribeModelPackageInput{ModelPackageName: aws.String(t.arn)}, p.smOpts...)
			if err != nil {
				return p.fail("SageMaker DescribeModelPackage "+t.arn, err)
			}
			applyDescribed(t.v, out)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return snap, nil
}

// model maps a group summary.
func (c *Client) model(g types.ModelPackageGroupSummary) sources.Model {
	name := deref(g.ModelPackageGroupName)
	m := sources.Model{
		ID:          deref(g.ModelPackageGroupArn),
		Name:        name,
		Description: g.ModelPackageGroupDescription,
		URL:         c.consoleURL("model-package-groups/" + url.PathEscape(name)),
	}
	raw := rawKVs{}
	raw.str("ModelPackageGroupArn", g.ModelPackageGroupArn)
	raw.str("ModelPackageGroupName", g.ModelPackageGroupName)
	raw.str("ModelPackageGroupDescription", g.ModelPackageGroupDescription)
	raw.str("ModelPackageGroupStatus", nonEmpty(string(g.ModelPackageGroupStatus)))
	if g.CreationTime != nil {
		m.CreatedAt = sources.FormatTime(*g.CreationTime)
		raw.time("CreationTime", *g.CreationTime)
	}
	m.Raw = raw
	return m
}

// listKeys are the Version.Raw keys taken from ListModelPackages; a package
// is described again when one of them changes.
var listKeys = []string{"CreationTime", "ModelApprovalStatus", "ModelLifeCycle", "ModelPackageArn", "ModelPackageDescription", "ModelPackageStatus"}

// describedKeys are the Version.Raw keys taken from DescribeModelPackage.
var describedKeys = []string{"ApprovalDescription", "CreatedBy", "Image", "ImageDigest", "LastModifiedBy", "LastModifiedTime", "ModelDataETag", "ModelDataUrl"}

// version maps a package summary (list-level fields only).
func (c *Client) version(group string, s types.ModelPackageSummary) sources.Version {
	n := int64(*s.ModelPackageVersion)
	v := sources.Version{
		ID:             sources.Itoa(n),
		Order:          n,
		ApprovalStatus: string(s.ModelApprovalStatus),
		Status:         string(s.ModelPackageStatus),
		Description:    s.ModelPackageDescription,
		URL:            c.consoleURL("model-package-groups/" + url.PathEscape(group) + "/versions/" + sources.Itoa(n)),
	}
	raw := rawKVs{}
	raw.str("ModelPackageArn", s.ModelPackageArn)
	raw.str("ModelApprovalStatus", nonEmpty(string(s.ModelApprovalStatus)))
	raw.str("ModelPackageStatus", nonEmpty(string(s.ModelPackageStatus)))
	raw.str("ModelPackageDescription", s.ModelPackageDescription)
	if s.CreationTime != nil {
		v.CreatedAt = sources.FormatTime(*s.CreationTime)
		raw.time("CreationTime", *s.CreationTime)
	}
	if lc := s.ModelLifeCycle; lc != nil {
		v.LifecycleStage = deref(lc.Stage)
		raw.object("ModelLifeCycle", lifecycle{Stage: deref(lc.Stage), StageDescription: deref(lc.StageDescription), StageStatus: deref(lc.StageStatus)})
	}
	v.Raw = raw
	return v
}

// consoleURL returns a SageMaker console link: https://<region>.console.aws.amazon.com/sagemaker/home?region=<region>#/model-registry/<fragment>
// (console.amazonaws.cn in China, console.amazonaws-us-gov.com in GovCloud).
func (c *Client) consoleURL(fragment string) string {
	host := c.region + ".console.aws.amazon.com"
	switch {
	case strings.HasPrefix(c.region, "cn-"):
		host = c.region + ".console.amazonaws.cn"
	case strings.HasPrefix(c.region, "us-gov-"):
		host = "console.amazonaws-us-gov.com"
	}
	return "https://" + host + "/sagemaker/home?region=" + url.QueryEscape(c.region) + "#/model-registry/" + fragment
}

func listChanged(now, old []sources.KV) bool {
	for _, k := range listKeys {
		if rawValue(now, k) != rawValue(old, k) {
			return true
		}
	}
	return false
}

// copyDescribed copies the described fields of an unchanged package.
func copyDescribed(v, old *sources.Version) {
	v.Creator, v.UpdatedAt, v.Source, v.Digest = old.Creator, old.UpdatedAt, old.Source, old.Digest
	for _, kv := range old.Raw {
		if kv.Key == RawCreatedApproved || slices.Contains(describedKeys, kv.Key) {
			v.Raw = append(v.Raw, kv)
		}
	}
}

// applyDescribed sets the described fields of v.
func applyDescribed(v *sources.Version, d *sm.DescribeModelPackageOutput) {
	raw := rawKVs(v.Raw)
	v.Creator = userContextKey(d.CreatedBy)
	raw.object("CreatedBy", userContextJSON(d.CreatedBy))
	raw.object("LastModifiedBy", userContextJSON(d.LastModifiedBy))
	raw.str("ApprovalDescription", d.ApprovalDescription)
	if d.LastModifiedTime != nil {
		v.UpdatedAt = sources.FormatTime(*d.LastModifiedTime)
		raw.time("LastModifiedTime", *d.LastModifiedTime)
	}
	if spec := d.InferenceSpecification; spec != nil && len(spec.Containers) > 0 {
		ct := spec.Containers[0]
		v.Source = deref(ct.ModelDataUrl)
		v.Digest = deref(ct.ModelDataETag)
		raw.str("ModelDataUrl", ct.ModelDataUrl)
		raw.str("ModelDataETag", ct.ModelDataETag)
		raw.str("Image", ct.Image)
		raw.str("ImageDigest", ct.ImageDigest)
	}
	if d.ModelApprovalStatus == types.ModelApprovalStatusApproved && d.CreationTime != nil && d.LastModifiedTime != nil &&
		d.CreationTime.Truncate(time.Millisecond).Equal(d.LastModifiedTime.Truncate(time.Millisecond)) {
		raw.set(RawCreatedApproved, "true")
	}
	v.Raw = raw
}
