package sagemaker

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// rawKVs collects Raw fields; each value is JSON text.
type rawKVs []sources.KV

// set adds key or replaces its value.
func (r *rawKVs) set(key, value string) {
	for i := range *r {
		if (*r)[i].Key == key {
			(*r)[i].Value = value
			return
		}
	}
	*r = append(*r, sources.KV{Key: key, Value: value})
}

// str adds a string field; nil and "" add nothing.
func (r *rawKVs) str(key string, s *string) {
	if s != nil && *s != "" {
		r.set(key, jsonText(*s))
	}
}

// time adds a timestamp as epoch seconds with milliseconds, as on the wire.
func (r *rawKVs) time(key string, t time.Time) {
	ms := t.UnixMilli()
	r.set(key, strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
}

// object adds v as a JSON object; nil adds nothing.
func (r *rawKVs) object(key string, v any) {
	if v != nil {
		r.set(key, jsonText(v))
	}
}

// rawValue returns the value of key in kvs, or "".
func rawValue(kvs []sources.KV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// jsonText encodes v as compact JSON without HTML escaping.
func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// unquote decodes a JSON string value written by jsonText.
func unquote(s string) string {
	var out string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return ""
	}
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lifecycle is ModelLifeCycle as stored in Raw (members in key order).
type lifecycle struct {
	Stage            string `json:"Stage"`
	StageDescription string `json:"StageDescription,omitempty"`
	StageStatus      string `json:"StageStatus,omitempty"`
}

type rawIamIdentity struct {
	Arn            string `json:"Arn,omitempty"`
	PrincipalID    string `json:"PrincipalId,omitempty"`
	SourceIdentity string `json:"SourceIdentity,omitempty"`
}

type rawUserContext struct {
	DomainID        string          `json:"DomainId,omitempty"`
	IamIdentity     *rawIamIdentity `json:"IamIdentity,omitempty"`
	UserProfileArn  string          `json:"UserProfileArn,omitempty"`
	UserProfileName string          `json:"UserProfileName,omitempty"`
}

// userContextJSON returns uc in its Raw form, or nil.
func userContextJSON(uc *types.UserContext) any {
	if uc == nil {
		return nil
	}
	out := rawUserContext{
		DomainID:        deref(uc.DomainId),
		UserProfileArn:  deref(uc.UserProfileArn),
		UserProfileName: deref(uc.UserProfileName),
	}
	if id := uc.IamIdentity; id != nil {
		out.IamIdentity = &rawIamIdentity{Arn: deref(id.Arn), PrincipalID: deref(id.PrincipalId), SourceIdentity: deref(id.SourceIdentity)}
	}
	return out
}
