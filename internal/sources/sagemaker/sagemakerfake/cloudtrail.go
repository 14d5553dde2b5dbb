package sagemakerfake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// SetCloudTrailDelay sets how long after a call its CloudTrail event becomes
// visible to LookupEvents, for the calls made from now on (default 0).
func (f *Fake) SetCloudTrailDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// SetCloudTrailRateLimit sets how many LookupEvents requests per second of
// clock time CloudTrail accepts before answering ThrottlingException
// (default 2, CloudTrail's limit; 0 disables the limit).
func (f *Fake) SetCloudTrailRateLimit(perSecond int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rateLimit = perSecond
	f.lookupTimes = nil
}

// DenyCloudTrail makes LookupEvents answer AccessDeniedException while on
// is true; SageMaker calls are unaffected.
func (f *Fake) DenyCloudTrail(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denyTrail = on
}

// record appends a CloudTrail event for a call by who at t, visible after
// the current delay.
func (f *Fake) record(name string, who Identity, t time.Time, req ctRequest, resp json.RawMessage) {
	f.seq++
	at := t.UTC().Truncate(time.Second)
	id := uuid("event", f.seq)
	agent := "aws-cli/2.18.5 md/awscrt#0.22.0 ua/2.0 os/linux#6.8 md/arch#x86_64 lang/python#3.12.6 command/sagemaker"
	ip := "203.0.113.10"
	if who.Session == SharedSession {
		agent, ip = "AWS Internal", "10.20.30.40"
	}
	rec := ctRecord{
		EventVersion:       "1.09",
		UserIdentity:       who.ctUserIdentity(f.account, at),
		EventTime:          at.Format(time.RFC3339),
		EventSource:        "sagemaker.amazonaws.com",
		EventName:          name,
		AWSRegion:          f.region,
		SourceIPAddress:    ip,
		UserAgent:          agent,
		RequestParameters:  req,
		ResponseElements:   resp,
		RequestID:          uuid("request", f.seq),
		EventID:            id,
		EventType:          "AwsApiCall",
		ManagementEvent:    true,
		RecipientAccountID: f.account,
		EventCategory:      "Management",
		TLSDetails: ctTLS{
			TLSVersion:               "TLSv1.3",
			CipherSuite:              "TLS_AES_128_GCM_SHA256",
			ClientProvidedHostHeader: "api.sagemaker." + f.region + ".amazonaws.com",
		},
	}
	b, err := marshal(rec)
	if err != nil {
		panic(err) // plain structs of strings: cannot fail
	}
	f.events = append(f.events, &event{
		id: id, name: name, at: at, visible: t.Add(f.delay), seq: f.seq, caller: who, record: b,
	})
}

// LastEventID returns the id of the CloudTrail event recorded last (visible
// or not), or "".
func (f *Fake) LastEventID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return ""
	}
	return f.events[len(f.events)-1].id
}

// uuid returns a deterministic version-4-shaped id for (kind, n).
func uuid(kind string, n int) string {
	sum := sha256.Sum256([]byte(kind + "/" + strconv.Itoa(n)))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

// throttleLookup applies CloudTrail's per-second LookupEvents limit.
func (f *Fake) throttleLookup() bool {
	if f.rateLimit <= 0 {
		return false
	}
	now := f.clk.Now()
	kept := f.lookupTimes[:0]
	for _, t := range f.lookupTimes {
		if t.After(now.Add(-time.Second)) {
			kept = append(kept, t)
		}
	}
	f.lookupTimes = kept
	if len(kept) >= f.rateLimit {
		return true
	}
	f.lookupTimes = append(f.lookupTimes, now)
	return false
}

func (f *Fake) lookupEvents(in lookupInput) (any, error) {
	if len(in.LookupAttributes) > 1 {
		return nil, &apiError{code: "InvalidLookupAttributesException", msg: "You cannot specify more than one lookup attribute."}
	}
	name := ""
	if len(in.LookupAttributes) == 1 {
		a := in.LookupAttributes[0]
		if a.AttributeKey != "EventName" {
			return nil, &apiError{code: "InvalidLookupAttributesException", msg: "the fake supports only the EventName lookup attribute"}
		}
		name = a.AttributeValue
	}
	now := f.clk.Now()
	start, hasStart := fromEpoch(in.StartTime)
	end, hasEnd := fromEpoch(in.EndTime)
	if hasStart && hasEnd && start.After(end) {
		return nil, &apiError{code: "InvalidTimeRangeException", msg: "StartTime is after EndTime"}
	}
	// Events are recorded in clock order: newest first is the reverse.
	var evs []*event
	for i := len(f.events) - 1; i >= 0; i-- {
		e := f.events[i]
		if hasStart && e.at.Before(start) {
			break
		}
		if e.visible.After(now) || name != "" && e.name != name || hasEnd && e.at.After(end) {
			continue
		}
		evs = append(evs, e)
	}
	from, to, next, err := page(len(evs), in.NextToken, in.MaxResults, lookupMaxResults, f.pageSize, "events:")
	if err != nil {
		return nil, err
	}
	out := struct {
		Events    []wireEvent `json:"Events"`
		NextToken string      `json:"NextToken,omitempty"`
	}{Events: []wireEvent{}, NextToken: next}
	for _, e := range evs[from:to] {
		out.Events = append(out.Events, wireEvent{
			EventID:         e.id,
			EventName:       e.name,
			ReadOnly:        "false",
			AccessKeyID:     e.caller.accessKeyID(),
			EventTime:       epoch(e.at),
			EventSource:     "sagemaker.amazonaws.com",
			Username:        e.caller.username(),
			Resources:       []struct{}{},
			CloudTrailEvent: string(e.record),
		})
	}
	return out, nil
}
