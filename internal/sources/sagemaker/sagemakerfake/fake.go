// Package sagemakerfake is an in-process fake of the Amazon SageMaker Model
// Registry and of AWS CloudTrail LookupEvents. It speaks awsJson1_1 (POST /,
// X-Amz-Target dispatch, epoch-second times, AWS error shapes), so the real
// aws-sdk-go-v2 clients talk to it through an httptest server with
// BaseEndpoint set to its URL.
//
// Time comes from a clock.Clock: creation and modification times, CloudTrail
// event times, the delay after which an event becomes visible to
// LookupEvents, and CloudTrail's 2 requests per second limit. Go methods drive
// it as people and pipelines would (CreateGroup, CreatePackage,
// UpdateApproval, SetLifecycle), each call recorded as a CloudTrail event
// shaped like a real record; others inject faults (Throttle, AddFault,
// DenyCloudTrail, ExpireCredentials). It is safe for concurrent use.
package sagemakerfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// Defaults of a Fake.
const (
	DefaultAccount  = "111122223333"
	DefaultRegion   = "us-east-1"
	DefaultPageSize = 100
	// lookupMaxResults is CloudTrail's largest LookupEvents page.
	lookupMaxResults = 50
)

// Approval statuses (ModelApprovalStatus).
const (
	Approved              = "Approved"
	Rejected              = "Rejected"
	PendingManualApproval = "PendingManualApproval"
)

// CloudTrail event names the fake records.
const (
	EventCreateModelPackage = "CreateModelPackage"
	EventUpdateModelPackage = "UpdateModelPackage"
)

// Options configure a Fake.
type Options struct {
	// Account and Region appear in ARNs and records (defaults DefaultAccount,
	// DefaultRegion).
	Account string
	Region  string
	// PageSize caps every list page, below the request's MaxResults
	// (default DefaultPageSize).
	PageSize int
}

// Lifecycle is a model package's ModelLifeCycle.
type Lifecycle struct {
	Stage            string
	StageStatus      string
	StageDescription string
}

// Container is the first inference container of a model package.
type Container struct {
	Image            string
	ImageDigest      string
	ModelDataURL     string
	ModelDataETag    string
	Framework        string
	FrameworkVersion string
}

// Package is one versioned model package as the fake stores it.
// CreatePackage fills it with defaults; its options may change any field
// before it is stored.
type Package struct {
	Group   string
	Version int32
	// ARN is set by the fake (the group name lower-cased, as SageMaker does).
	ARN                 string
	Description         string
	ApprovalStatus      string
	ApprovalDescription string
	// Status is the ModelPackageStatus (default "Completed").
	Status    string
	Lifecycle *Lifecycle
	// CreatedAt and ModifiedAt are the CreationTime and LastModifiedTime.
	CreatedAt  time.Time
	ModifiedAt time.Time
	CreatedBy  Identity
	ModifiedBy Identity
	Container  Container
	// ContentTypes, ResponseMIMETypes, RealtimeInstanceTypes and
	// TransformInstanceTypes are the InferenceSpecification lists.
	ContentTypes           []string
	ResponseMIMETypes      []string
	RealtimeInstanceTypes  []string
	TransformInstanceTypes []string
	CustomerMetadata       map[string]string
	// GeneratedBy is MetadataProperties.GeneratedBy ("" omits the member).
	GeneratedBy string
}

// Fault makes matching requests fail with an AWS error.
type Fault struct {
	// Op is the operation ("ListModelPackages", "LookupEvents"); "" matches
	// every operation.
	Op string
	// Skip lets this many matching requests through before failing.
	Skip int
	// Count is how many requests fail after Skip; negative fails all later ones.
	Count int
	// Status is the HTTP status (default 400).
	Status int
	// Code and Message are the error's __type and message.
	Code    string
	Message string
}

type group struct {
	name, arn, description string
	created                time.Time
	packages               []*Package
}

type event struct {
	id, name string
	at       time.Time // second precision, as CloudTrail records
	visible  time.Time
	seq      int
	caller   Identity
	record   []byte
}

// Fake is the in-process SageMaker and CloudTrail service; it is an
// http.Handler.
type Fake struct {
	clk     clock.Clock
	account string
	region  string

	mu          sync.Mutex
	pageSize    int
	delay       time.Duration
	rateLimit   int
	groups      []*group
	byName      map[string]*group
	byARN       map[string]*Package // lower-cased ARN
	events      []*event
	seq         int
	faults      []*Fault
	denyTrail   bool
	expired     bool
	requests    map[string]int
	lookupTimes []time.Time
	callers     map[string]Identity
	caller      Identity
}

// New returns an empty Fake on clk.
func New(clk clock.Clock, opts Options) *Fake {
	if opts.Account == "" {
		opts.Account = DefaultAccount
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	return &Fake{
		clk:       clk,
		account:   opts.Account,
		region:    opts.Region,
		pageSize:  opts.PageSize,
		rateLimit: 2,
		byName:    map[string]*group{},
		byARN:     map[string]*Package{},
		requests:  map[string]int{},
		callers:   map[string]Identity{},
		caller:    AssumedRole("registrywatch-fake-caller", "api"),
	}
}

// Account returns the fake's account id.
func (f *Fake) Account() string { return f.account }

// Region returns the fake's region.
func (f *Fake) Region() string { return f.region }

// SetPageSize sets the largest page any list returns.
func (f *Fake) SetPageSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pageSize = max(n, 1)
}

// AddCaller makes API calls signed with accessKeyID act as who (CreatedBy,
// LastModifiedBy and the CloudTrail record). Calls with other keys act as
// the default caller (SetDefaultCaller).
func (f *Fake) AddCaller(accessKeyID string, who Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callers[accessKeyID] = who
}

// SetDefaultCaller sets who API calls act as when their key is unknown.
func (f *Fake) SetDefaultCaller(who Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.caller = who
}

// AddFault installs a fault; faults are checked in the order added.
func (f *Fake) AddFault(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft.Status == 0 {
		ft.Status = http.StatusBadRequest
	}
	f.faults = append(f.faults, &ft)
}

// Throttle makes the next n requests of op ("" for any) fail with
// ThrottlingException.
func (f *Fake) Throttle(op string, n int) {
	f.AddFault(Fault{Op: op, Count: n, Code: "ThrottlingException", Message: "Rate exceeded"})
}

// ClearFaults removes every fault installed by AddFault and Throttle.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// ExpireCredentials makes every request answer ExpiredTokenException while
// on is true.
func (f *Fake) ExpireCredentials(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expired = on
}

// Requests returns the number of requests received per operation, failed
// ones included.
func (f *Fake) Requests() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.requests)
}

// ResetRequests sets every request count to zero.
func (f *Fake) ResetRequests() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.requests)
}

// GroupARN returns the ARN of model package group name.
func (f *Fake) GroupARN(name string) string {
	return "arn:aws:sagemaker:" + f.region + ":" + f.account + ":model-package-group/" + strings.ToLower(name)
}

// PackageARN returns the ARN of version v of group.
func (f *Fake) PackageARN(group string, v int32) string {
	return "arn:aws:sagemaker:" + f.region + ":" + f.account + ":model-package/" + strings.ToLower(group) + "/" + strconv.Itoa(int(v))
}

// CreateGroup creates model package group name at the clock's time and
// returns its ARN.
func (f *Fake) CreateGroup(name, description string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.createGroup(name, description)
}

func (f *Fake) createGroup(name, description string) (string, error) {
	if name == "" {
		return "", errors.New("model package group name is empty")
	}
	if _, ok := f.byName[strings.ToLower(name)]; ok {
		return "", fmt.Errorf("model package group %s already exists", name)
	}
	g := &group{name: name, arn: f.GroupARN(name), description: description, created: f.clk.Now()}
	f.groups = append(f.groups, g)
	f.byName[strings.ToLower(name)] = g
	return g.arn, nil
}

// CreatePackage registers the next version of group with approval status
// status (PendingManualApproval when ""), made by who at the clock's time, and
// records a CreateModelPackage event. opts may change the package before it
// is stored. It returns the package ARN.
func (f *Fake) CreatePackage(group, status string, who Identity, opts ...func(*Package)) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.createPackage(group, status, who, opts...)
	if err != nil {
		return "", err
	}
	return p.ARN, nil
}

func (f *Fake) createPackage(groupName, status string, who Identity, opts ...func(*Package)) (*Package, error) {
	g, ok := f.byName[strings.ToLower(groupName)]
	if !ok {
		return nil, fmt.Errorf("model package group %s does not exist", groupName)
	}
	if status == "" {
		status = PendingManualApproval
	}
	if err := checkStatus(status); err != nil {
		return nil, err
	}
	now := f.clk.Now()
	v := int32(len(g.packages) + 1)
	p := &Package{
		Group:          g.name,
		Version:        v,
		ARN:            f.PackageARN(g.name, v),
		Description:    fmt.Sprintf("%s version %d", g.name, v),
		ApprovalStatus: status,
		Status:         "Completed",
		CreatedAt:      now,
		ModifiedAt:     now,
		CreatedBy:      who,
		ModifiedBy:     who,
		Container: Container{
			Image:            "683313688378.dkr.ecr." + f.region + ".amazonaws.com/sagemaker-xgboost:1.7-1",
			ImageDigest:      "sha256:3b2f6ad3e6c1c0d4b5f0f1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9",
			ModelDataURL:     fmt.Sprintf("s3://ml-artifacts-%s/%s/v%d/model.tar.gz", f.account, g.name, v),
			Framework:        "XGBOOST",
			FrameworkVersion: "1.7-1",
		},
		ContentTypes:           []string{"text/csv"},
		ResponseMIMETypes:      []string{"text/csv"},
		RealtimeInstanceTypes:  []string{"ml.m5.large"},
		TransformInstanceTypes: []string{"ml.m5.large"},
	}
	for _, o := range opts {
		o(p)
	}
	p.Group, p.Version, p.ARN = g.name, v, f.PackageARN(g.name, v)
	g.packages = append(g.packages, p)
	f.byARN[strings.ToLower(p.ARN)] = p
	req := ctRequest{
		ModelPackageGroupName:   g.name,
		ModelPackageDescription: p.Description,
		ModelApprovalStatus:     status,
		ModelLifeCycle:          ctLife(p.Lifecycle),
	}
	resp, _ := json.Marshal(map[string]string{"modelPackageArn": p.ARN})
	f.record(EventCreateModelPackage, who, p.CreatedAt, req, resp)
	return p, nil
}

// UpdateApproval sets the approval status (and description, when not "") of
// the package arn, as who at the clock's time, and records an
// UpdateModelPackage event.
func (f *Fake) UpdateApproval(arn, status, description string, who Identity) error {
	return f.update(arn, who, updateInput{ModelPackageArn: arn, ModelApprovalStatus: status, ApprovalDescription: description})
}

// SetLifecycle sets the ModelLifeCycle of the package arn, as who at the
// clock's time, and records an UpdateModelPackage event.
func (f *Fake) SetLifecycle(arn string, lc Lifecycle, who Identity) error {
	return f.update(arn, who, updateInput{ModelPackageArn: arn, ModelLifeCycle: (*wireLifecycle)(&lc)})
}

// DeletePackage removes the package arn (no event is recorded).
func (f *Fake) DeletePackage(arn string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.byARN[strings.ToLower(arn)]
	if !ok {
		return fmt.Errorf("model package %s does not exist", arn)
	}
	delete(f.byARN, strings.ToLower(arn))
	g := f.byName[strings.ToLower(p.Group)]
	for i, q := range g.packages {
		if q == p {
			g.packages = append(g.packages[:i], g.packages[i+1:]...)
			break
		}
	}
	return nil
}

// Package returns a copy of the package arn.
func (f *Fake) Package(arn string) (Package, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.byARN[strings.ToLower(arn)]
	if !ok {
		return Package{}, false
	}
	return *p, true
}

func (f *Fake) update(arn string, who Identity, in updateInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.updateLocked(who, in)
	return err
}

func (f *Fake) updateLocked(who Identity, in updateInput) (*Package, error) {
	p, ok := f.byARN[strings.ToLower(in.ModelPackageArn)]
	if !ok {
		return nil, fmt.Errorf("model package %s does not exist", in.ModelPackageArn)
	}
	if in.ModelApprovalStatus != "" {
		if err := checkStatus(in.ModelApprovalStatus); err != nil {
			return nil, err
		}
		p.ApprovalStatus = in.ModelApprovalStatus
	}
	if in.ApprovalDescription != "" {
		p.ApprovalDescription = in.ApprovalDescription
	}
	if in.ModelLifeCycle != nil {
		lc := Lifecycle(*in.ModelLifeCycle)
		p.Lifecycle = &lc
	}
	if in.CustomerMetadataProperties != nil {
		p.CustomerMetadata = maps.Clone(in.CustomerMetadataProperties)
	}
	p.ModifiedAt = f.clk.Now()
	p.ModifiedBy = who
	req := ctRequest{
		ModelPackageArn:     p.ARN,
		ModelApprovalStatus: in.ModelApprovalStatus,
		ApprovalDescription: in.ApprovalDescription,
	}
	if in.ModelLifeCycle != nil {
		req.ModelLifeCycle = ctLife(p.Lifecycle)
	}
	resp, _ := json.Marshal(map[string]string{"modelPackageArn": p.ARN})
	f.record(EventUpdateModelPackage, who, p.ModifiedAt, req, resp)
	return p, nil
}

func checkStatus(s string) error {
	switch s {
	case Approved, Rejected, PendingManualApproval:
		return nil
	}
	return fmt.Errorf("invalid ModelApprovalStatus %q", s)
}

func ctLife(lc *Lifecycle) *ctLifecycle {
	if lc == nil {
		return nil
	}
	return (*ctLifecycle)(lc)
}

// ServeHTTP answers awsJson1_1 requests for SageMaker and CloudTrail.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "only POST / is served")
		return
	}
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "cannot read body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[op]++
	if f.expired {
		writeError(w, http.StatusBadRequest, "ExpiredTokenException", "The security token included in the request is expired")
		return
	}
	if ft := f.fault(op); ft != nil {
		writeError(w, ft.Status, ft.Code, ft.Message)
		return
	}
	who := f.caller
	if id, ok := f.callers[accessKeyID(r.Header.Get("Authorization"))]; ok {
		who = id
	}
	var out any
	switch target {
	case "SageMaker.ListModelPackageGroups":
		out, err = decodeThen(body, f.listGroups)
	case "SageMaker.ListModelPackages":
		out, err = decodeThen(body, f.listPackages)
	case "SageMaker.DescribeModelPackage":
		out, err = decodeThen(body, f.describe)
	case "SageMaker.UpdateModelPackage":
		out, err = decodeThen(body, func(in updateInput) (any, error) {
			p, err := f.updateLocked(who, in)
			if err != nil {
				return nil, validation(err)
			}
			return map[string]string{"ModelPackageArn": p.ARN}, nil
		})
	case "SageMaker.CreateModelPackage":
		out, err = decodeThen(body, func(in createPackageInput) (any, error) { return f.apiCreatePackage(in, who) })
	case "SageMaker.CreateModelPackageGroup":
		out, err = decodeThen(body, func(in createGroupInput) (any, error) {
			arn, err := f.createGroup(in.ModelPackageGroupName, in.ModelPackageGroupDescription)
			if err != nil {
				return nil, validation(err)
			}
			return map[string]string{"ModelPackageGroupArn": arn}, nil
		})
	case "CloudTrail_20131101.LookupEvents":
		if f.denyTrail {
			err = &apiError{code: "AccessDeniedException", msg: "User: " + who.arn(f.account) + " is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action"}
			break
		}
		if f.throttleLookup() {
			err = &apiError{code: "ThrottlingException", msg: "Rate exceeded"}
			break
		}
		out, err = decodeThen(body, f.lookupEvents)
	default:
		err = &apiError{code: "UnknownOperationException", msg: "unknown operation " + service + "." + op}
	}
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{code: "InternalFailure", msg: err.Error(), status: http.StatusInternalServerError}
		}
		writeError(w, ae.httpStatus(), ae.code, ae.msg)
		return
	}
	b, err := marshal(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", uuid("http", f.requests[op]))
	_, _ = w.Write(b)
}

// fault returns the fault that fails this request of op, if any.
func (f *Fake) fault(op string) *Fault {
	for _, ft := range f.faults {
		if ft.Op != "" && ft.Op != op {
			continue
		}
		if ft.Skip > 0 {
			ft.Skip--
			continue
		}
		if ft.Count == 0 {
			continue
		}
		if ft.Count > 0 {
			ft.Count--
		}
		return ft
	}
	return nil
}

// accessKeyID extracts the key id from a SigV4 Authorization header.
func accessKeyID(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, "/")
	return key
}

type apiError struct {
	code, msg string
	status    int
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func (e *apiError) httpStatus() int {
	if e.status != 0 {
		return e.status
	}
	return http.StatusBadRequest
}

func validation(err error) error { return &apiError{code: "ValidationException", msg: err.Error()} }

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, msg})
	_, _ = w.Write(b)
}

// marshal encodes v as AWS services do: compact, without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodeThen[T any](body []byte, fn func(T) (any, error)) (any, error) {
	var in T
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, &apiError{code: "SerializationException", msg: "malformed request body: " + err.Error()}
		}
	}
	return fn(in)
}

// page cuts items into one page: offset from the token, size from MaxResults
// and the page size; it returns the next token or "".
func page(n int, token *string, maxResults *int32, limit, pageSize int, prefix string) (from, to int, next string, err error) {
	if token != nil && *token != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(*token)
		off, cerr := strconv.Atoi(strings.TrimPrefix(string(raw), prefix))
		if derr != nil || cerr != nil || !strings.HasPrefix(string(raw), prefix) || off < 0 || off > n {
			return 0, 0, "", &apiError{code: "ValidationException", msg: "Invalid pagination token"}
		}
		from = off
	}
	size := limit
	if maxResults != nil {
		if *maxResults < 1 || int(*maxResults) > limit {
			return 0, 0, "", &apiError{code: "ValidationException", msg: fmt.Sprintf("MaxResults must be between 1 and %d", limit)}
		}
		size = int(*maxResults)
	}
	size = min(size, pageSize)
	to = min(from+size, n)
	if to < n {
		next = base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.Itoa(to)))
	}
	return from, to, next, nil
}

func (f *Fake) listGroups(in listGroupsInput) (any, error) {
	gs := append([]*group(nil), f.groups...)
	less := func(a, b *group) bool {
		return a.created.Before(b.created) || a.created.Equal(b.created) && a.name < b.name
	}
	if in.SortBy == "Name" {
		less = func(a, b *group) bool { return a.name < b.name }
	}
	sort.SliceStable(gs, func(i, j int) bool {
		if in.SortOrder == "Descending" {
			return less(gs[j], gs[i])
		}
		return less(gs[i], gs[j])
	})
	from, to, next, err := page(len(gs), in.NextToken, in.MaxResults, 100, f.pageSize, "groups:")
	if err != nil {
		return nil, err
	}
	out := struct {
		List      []wireGroupSummary `json:"ModelPackageGroupSummaryList"`
		NextToken string             `json:"NextToken,omitempty"`
	}{List: []wireGroupSummary{}, NextToken: next}
	for _, g := range gs[from:to] {
		out.List = append(out.List, wireGroupSummary{
			ModelPackageGroupName:        g.name,
			ModelPackageGroupArn:         g.arn,
			ModelPackageGroupDescription: g.description,
			CreationTime:                 epoch(g.created),
			ModelPackageGroupStatus:      "Completed",
		})
	}
	return out, nil
}

func (f *Fake) listPackages(in listPackagesInput) (any, error) {
	var ps []*Package
	if g, ok := f.byName[strings.ToLower(in.ModelPackageGroupName)]; ok && in.ModelPackageType != "Unversioned" {
		after, hasAfter := fromEpoch(in.CreationTimeAfter)
		before, hasBefore := fromEpoch(in.CreationTimeBefore)
		for _, p := range g.packages {
			if hasAfter && !p.CreatedAt.After(after) || hasBefore && !p.CreatedAt.Before(before) {
				continue
			}
			if in.ModelApprovalStatus != "" && p.ApprovalStatus != in.ModelApprovalStatus {
				continue
			}
			ps = append(ps, p)
		}
	}
	less := func(a, b *Package) bool {
		return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.Version < b.Version
	}
	if in.SortBy == "Name" {
		less = func(a, b *Package) bool { return a.Version < b.Version }
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if in.SortOrder == "Descending" {
			return less(ps[j], ps[i])
		}
		return less(ps[i], ps[j])
	})
	from, to, next, err := page(len(ps), in.NextToken, in.MaxResults, 100, f.pageSize, "packages:"+strings.ToLower(in.ModelPackageGroupName)+":")
	if err != nil {
		return nil, err
	}
	out := struct {
		List      []wirePackageSummary `json:"ModelPackageSummaryList"`
		NextToken string               `json:"NextToken,omitempty"`
	}{List: []wirePackageSummary{}, NextToken: next}
	for _, p := range ps[from:to] {
		out.List = append(out.List, wirePackageSummary{
			ModelPackageGroupName:        p.Group,
			ModelPackageVersion:          p.Version,
			ModelPackageArn:              p.ARN,
			ModelPackageDescription:      p.Description,
			CreationTime:                 epoch(p.CreatedAt),
			ModelPackageStatus:           p.Status,
			ModelApprovalStatus:          p.ApprovalStatus,
			ModelLifeCycle:               wireLife(p.Lifecycle),
			ModelPackageRegistrationType: "Registered",
		})
	}
	return out, nil
}

func wireLife(lc *Lifecycle) *wireLifecycle {
	if lc == nil {
		return nil
	}
	return (*wireLifecycle)(lc)
}

func (f *Fake) describe(in describeInput) (any, error) {
	key := strings.ToLower(in.ModelPackageName)
	if !strings.HasPrefix(key, "arn:") {
		key = strings.ToLower("arn:aws:sagemaker:" + f.region + ":" + f.account + ":model-package/" + in.ModelPackageName)
	}
	p, ok := f.byARN[key]
	if !ok {
		return nil, &apiError{code: "ValidationException", msg: "ModelPackage " + in.ModelPackageName + " does not exist."}
	}
	out := wirePackage{
		ModelPackageName:        p.Group,
		ModelPackageGroupName:   p.Group,
		ModelPackageVersion:     p.Version,
		ModelPackageArn:         p.ARN,
		ModelPackageDescription: p.Description,
		CreationTime:            epoch(p.CreatedAt),
		InferenceSpecification: &wireInference{
			Containers:                              []wireContainer{wireContainer(p.Container)},
			SupportedContentTypes:                   p.ContentTypes,
			SupportedResponseMIMETypes:              p.ResponseMIMETypes,
			SupportedRealtimeInferenceInstanceTypes: p.RealtimeInstanceTypes,
			SupportedTransformInstanceTypes:         p.TransformInstanceTypes,
		},
		ModelPackageStatus:           p.Status,
		ModelPackageStatusDetails:    wireStatusDetails{ValidationStatuses: []struct{}{}, ImageScanStatuses: []struct{}{}},
		ModelApprovalStatus:          p.ApprovalStatus,
		CreatedBy:                    p.CreatedBy.userContext(f.account, f.region),
		LastModifiedTime:             epoch(p.ModifiedAt),
		LastModifiedBy:               p.ModifiedBy.userContext(f.account, f.region),
		ApprovalDescription:          p.ApprovalDescription,
		CustomerMetadataProperties:   p.CustomerMetadata,
		ModelLifeCycle:               wireLife(p.Lifecycle),
		ModelPackageRegistrationType: "Registered",
	}
	if p.GeneratedBy != "" {
		out.MetadataProperties = &wireMetadataProperties{GeneratedBy: p.GeneratedBy}
	}
	return out, nil
}

func (f *Fake) apiCreatePackage(in createPackageInput, who Identity) (any, error) {
	if in.ModelPackageGroupName == "" {
		return nil, &apiError{code: "ValidationException", msg: "only versioned model packages (ModelPackageGroupName) are supported"}
	}
	p, err := f.createPackage(in.ModelPackageGroupName, in.ModelApprovalStatus, who, func(p *Package) {
		if in.ModelPackageDescription != "" {
			p.Description = in.ModelPackageDescription
		}
		if in.ModelLifeCycle != nil {
			lc := Lifecycle(*in.ModelLifeCycle)
			p.Lifecycle = &lc
		}
		if in.InferenceSpecification != nil && len(in.InferenceSpecification.Containers) > 0 {
			c := in.InferenceSpecification.Containers[0]
			p.Container = Container(c)
			p.ContentTypes = in.InferenceSpecification.SupportedContentTypes
			p.ResponseMIMETypes = in.InferenceSpecification.SupportedResponseMIMETypes
			p.RealtimeInstanceTypes = in.InferenceSpecification.SupportedRealtimeInferenceInstanceTypes
			p.TransformInstanceTypes = in.InferenceSpecification.SupportedTransformInstanceTypes
		}
		if in.CustomerMetadataProperties != nil {
			p.CustomerMetadata = maps.Clone(in.CustomerMetadataProperties)
		}
		if in.MetadataProperties != nil {
			p.GeneratedBy = in.MetadataProperties.GeneratedBy
		}
	})
	if err != nil {
		return nil, validation(err)
	}
	return map[string]string{"ModelPackageArn": p.ARN}, nil
}
