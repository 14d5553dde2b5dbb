package sagemaker

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// CloudTrail event names read for attribution, one LookupEvents query each.
const (
	EventCreateModelPackage = "CreateModelPackage"
	EventUpdateModelPackage = "UpdateModelPackage"
)

var eventNames = []string{EventCreateModelPackage, EventUpdateModelPackage}

const (
	// lookupInterval spaces LookupEvents requests: CloudTrail allows 2 per
	// second per account and region.
	lookupInterval = 500 * time.Millisecond
	// lookupPageSize is the largest LookupEvents page.
	lookupPageSize = 50
	// cloudTrailRetention is how far back LookupEvents can see.
	cloudTrailRetention = 90 * 24 * time.Hour
	// pendingTTL bounds how long a fact waits in aux state for its package
	// to appear in a listing.
	pendingTTL = 24 * time.Hour
	auxVersion = 1
)

// auxState is the source's aux bytes (JSON). Facts are keyed by CloudTrail
// event id: a fact already attached to a version (carried from the previous
// snapshot) or already pending is never added twice, which is what lets each
// poll re-read its lookback window without duplicates.
type auxState struct {
	V int `json:"v"`
	// Until holds, per event name, the end (FormatTime) of the last
	// LookupEvents window read completely. The next window starts lookback
	// before it, since CloudTrail delivers events minutes late.
	Until map[string]string `json:"until,omitempty"`
	// Pending are actor facts whose package was not in the snapshot yet.
	Pending []pendingFact `json:"pending,omitempty"`
}

type pendingFact struct {
	// ARN is the model package ARN, lower-cased.
	ARN   string        `json:"arn"`
	Actor sources.Actor `json:"actor"`
}

// record is the part of a CloudTrail record (the CloudTrailEvent string)
// attribution reads.
type record struct {
	EventID      string `json:"eventID"`
	EventName    string `json:"eventName"`
	EventTime    string `json:"eventTime"`
	ErrorCode    string `json:"errorCode"`
	UserIdentity struct {
		ARN            string `json:"arn"`
		SessionContext struct {
			SourceIdentity string `json:"sourceIdentity"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	RequestParameters struct {
		ModelPackageArn     string `json:"modelPackageArn"`
		ModelApprovalStatus string `json:"modelApprovalStatus"`
		ModelLifeCycle      *struct {
			Stage string `json:"stage"`
		} `json:"modelLifeCycle"`
	} `json:"requestParameters"`
	ResponseElements struct {
		ModelPackageArn string `json:"modelPackageArn"`
	} `json:"responseElements"`
}

// attribute reads CloudTrail since the cursor in prevAux, attaches the actor
// facts of the packages in snap, keeps the others pending, marks packages
// created Approved, and returns the new aux bytes. An AccessDenied answer
// leaves the snapshot without new facts (and the cursor where it was); any
// other failure is an error.
func (p *poll) attribute(snap *sources.Snapshot, prevAux []byte) ([]byte, error) {
	aux := p.c.readAux(prevAux)
	now := p.c.clk.Now()
	facts := aux.Pending
	if p.c.cfg.CloudTrail.On() {
		got, until, err := p.lookupAll(aux, now)
		switch {
		case err == nil:
			facts = append(facts, got...)
			aux.Until = until
			p.c.cloudTrailAvailable()
		case accessDenied(err):
			p.c.cloudTrailDenied(err)
		default:
			return nil, err
		}
	}

	visible := map[string]*sources.Version{}
	groups := map[string]bool{}
	for i := range snap.Models {
		m := &snap.Models[i]
		groups[strings.ToLower(m.Name)] = true
		for j := range m.Versions {
			v := &m.Versions[j]
			visible[strings.ToLower(unquote(rawValue(v.Raw, "ModelPackageArn")))] = v
		}
	}
	var pending []pendingFact
	for _, f := range facts {
		if v := visible[f.ARN]; v != nil {
			addActor(v, f.Actor)
			continue
		}
		at, _ := sources.ParseTime(f.Actor.At)
		group, ok := packageGroup(f.ARN)
		if !ok || now.Sub(at) > pendingTTL || !groups[group] && !p.c.cfg.Matches(group) {
			continue
		}
		if !slices.ContainsFunc(pending, func(q pendingFact) bool { return sameFact(q.Actor, f.Actor) }) {
			pending = append(pending, f)
		}
	}
	for _, v := range visible {
		sortActors(v.Actors)
		if slices.ContainsFunc(v.Actors, func(a sources.Actor) bool {
			return a.Change == ChangeVersionCreated && a.Key == string(types.ModelApprovalStatusApproved)
		}) {
			raw := rawKVs(v.Raw)
			raw.set(RawCreatedApproved, "true")
			v.Raw = raw
		}
	}
	slices.SortFunc(pending, func(a, b pendingFact) int {
		return cmp.Or(compareActors(a.Actor, b.Actor), strings.Compare(a.ARN, b.ARN))
	})
	aux.Pending = pending
	b, err := json.Marshal(aux)
	if err != nil {
		return nil, p.fail("encode aux state", err)
	}
	return b, nil
}

// lookupAll reads every event name's window and returns the facts found and
// the new cursor.
func (p *poll) lookupAll(aux auxState, now time.Time) ([]pendingFact, map[string]string, error) {
	var facts []pendingFact
	until := map[string]string{}
	for _, name := range eventNames {
		start := now.Add(-p.c.lookback)
		if t, ok := sources.ParseTime(aux.Until[name]); ok && t.Add(-p.c.lookback).Before(start) {
			start = t.Add(-p.c.lookback)
		}
		if oldest := now.Add(-cloudTrailRetention); start.Before(oldest) {
			start = oldest
		}
		in := &cloudtrail.LookupEventsInput{
			StartTime:        aws.Time(start),
			EndTime:          aws.Time(now),
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}},
			MaxResults:       aws.Int32(lookupPageSize),
		}
		op := "CloudTrail LookupEvents " + name
		for {
			if err := p.c.lookups.wait(p.ctx); err != nil {
				return nil, nil, p.fail(op, err)
			}
			p.requests.Add(1)
			resp, err := p.c.trail.LookupEvents(p.ctx, in, p.ctOpts...)
			if err != nil {
				return nil, nil, p.fail(op, err)
			}
			for _, ev := range resp.Events {
				facts = append(facts, p.c.eventFacts(ev)...)
			}
			if deref(resp.NextToken) == "" {
				break
			}
			if deref(resp.NextToken) == deref(in.NextToken) {
				return nil, nil, p.fail(op, errors.New("CloudTrail returned the same page token twice"))
			}
			in.NextToken = resp.NextToken
		}
		until[name] = sources.FormatTime(now)
	}
	return facts, until, nil
}

// eventFacts turns one CloudTrail event into actor facts: none for a failed
// call, an unversioned package or an update that changed neither approval
// nor lifecycle.
func (c *Client) eventFacts(ev cttypes.Event) []pendingFact {
	var rec record
	if err := json.Unmarshal([]byte(deref(ev.CloudTrailEvent)), &rec); err != nil {
		c.log.Warn("skipping unreadable CloudTrail record", "event_id", deref(ev.EventId), "error", err)
		return nil
	}
	if rec.ErrorCode != "" {
		return nil // the call failed: it changed nothing
	}
	id := cmp.Or(deref(ev.EventId), rec.EventID)
	name := cmp.Or(deref(ev.EventName), rec.EventName)
	var at time.Time
	if ev.EventTime != nil {
		at = *ev.EventTime
	} else if t, err := time.Parse(time.RFC3339, rec.EventTime); err == nil {
		at = t
	}
	if id == "" || at.IsZero() {
		return nil
	}
	base := sources.Actor{
		Actor:    IdentityKey(rec.UserIdentity.SessionContext.SourceIdentity, "", rec.UserIdentity.ARN),
		At:       sources.FormatTime(at),
		Evidence: id,
		Raw:      name,
	}
	fact := func(arn, change, key string) pendingFact {
		a := base
		a.Change, a.Key = change, key
		return pendingFact{ARN: strings.ToLower(arn), Actor: a}
	}
	var out []pendingFact
	switch name {
	case EventCreateModelPackage:
		if arn := rec.ResponseElements.ModelPackageArn; isVersioned(arn) {
			out = append(out, fact(arn, ChangeVersionCreated, rec.RequestParameters.ModelApprovalStatus))
		}
	case EventUpdateModelPackage:
		arn := rec.RequestParameters.ModelPackageArn
		if !isVersioned(arn) {
			break
		}
		if s := rec.RequestParameters.ModelApprovalStatus; s != "" {
			out = append(out, fact(arn, ChangeApprovalChanged, s))
		}
		if lc := rec.RequestParameters.ModelLifeCycle; lc != nil && lc.Stage != "" {
			out = append(out, fact(arn, ChangeLifecycleChanged, lc.Stage))
		}
	}
	return out
}

// packageGroup returns the (lower-cased) group of a versioned model package
// ARN (arn:…:model-package/<group>/<version>).
func packageGroup(arn string) (string, bool) {
	_, res, ok := strings.Cut(strings.ToLower(arn), ":model-package/")
	if !ok {
		return "", false
	}
	group, version, ok := strings.Cut(res, "/")
	if !ok || group == "" || version == "" || strings.Trim(version, "0123456789") != "" {
		return "", false
	}
	return group, true
}

func isVersioned(arn string) bool {
	_, ok := packageGroup(arn)
	return ok
}

// addActor adds a to v unless the same fact (event id and change) is there.
func addActor(v *sources.Version, a sources.Actor) {
	if !slices.ContainsFunc(v.Actors, func(b sources.Actor) bool { return sameFact(a, b) }) {
		v.Actors = append(v.Actors, a)
	}
}

func sameFact(a, b sources.Actor) bool { return a.Evidence == b.Evidence && a.Change == b.Change }

func compareActors(a, b sources.Actor) int {
	return cmp.Or(strings.Compare(a.At, b.At), strings.Compare(a.Evidence, b.Evidence), strings.Compare(a.Change, b.Change))
}

// sortActors orders facts by time, event id and change, so snapshots are
// byte-identical whatever order the facts were learned in.
func sortActors(as []sources.Actor) { slices.SortFunc(as, compareActors) }

// accessDenied reports whether err is CloudTrail refusing the caller.
func accessDenied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDeniedException", "AccessDenied":
		return true
	}
	return false
}

// readAux decodes the previous aux bytes; unreadable or older state starts
// afresh (attribution then looks back one lookback window).
func (c *Client) readAux(b []byte) auxState {
	var aux auxState
	if len(b) == 0 {
		return auxState{V: auxVersion}
	}
	if err := json.Unmarshal(b, &aux); err != nil || aux.V != auxVersion {
		c.log.Warn("ignoring unreadable CloudTrail cursor; attribution restarts one lookback window back", "error", err)
		return auxState{V: auxVersion}
	}
	return aux
}

func (c *Client) cloudTrailDenied(err error) {
	c.unavailable.Add(1)
	c.mu.Lock()
	first := !c.warned
	c.warned = true
	c.mu.Unlock()
	if first {
		c.log.Warn("CloudTrail denied LookupEvents: snapshots get no new actor facts and approvers stay unknown until cloudtrail:LookupEvents is allowed", "error", err)
		return
	}
	c.log.Debug("CloudTrail still denies LookupEvents", "error", err)
}

func (c *Client) cloudTrailAvailable() {
	c.mu.Lock()
	was := c.warned
	c.warned = false
	c.mu.Unlock()
	if was {
		c.log.Info("CloudTrail LookupEvents allowed again; attribution resumes")
	}
}
