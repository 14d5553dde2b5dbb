package sagemakerfake

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// epoch is a time written the way awsJson1_1 writes timestamps: epoch
// seconds as a JSON number, with millisecond decimals when there are any.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	sec, frac := ms/1000, ms%1000
	if frac < 0 {
		sec, frac = sec-1, frac+1000
	}
	if frac == 0 {
		return fmt.Appendf(nil, "%d.0", sec), nil
	}
	return []byte(strings.TrimRight(fmt.Sprintf("%d.%03d", sec, frac), "0")), nil
}

// fromEpoch converts a request's epoch seconds to a time, to the millisecond.
func fromEpoch(f *float64) (time.Time, bool) {
	if f == nil {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(math.Round(*f * 1000))).UTC(), true
}

// Response shapes, with members in the order the recorded responses have.

type wireGroupSummary struct {
	ModelPackageGroupName        string `json:"ModelPackageGroupName"`
	ModelPackageGroupArn         string `json:"ModelPackageGroupArn"`
	ModelPackageGroupDescription string `json:"ModelPackageGroupDescription,omitempty"`
	CreationTime                 epoch  `json:"CreationTime"`
	ModelPackageGroupStatus      string `json:"ModelPackageGroupStatus"`
}

type wireLifecycle struct {
	Stage            string `json:"Stage"`
	StageStatus      string `json:"StageStatus"`
	StageDescription string `json:"StageDescription,omitempty"`
}

type wirePackageSummary struct {
	ModelPackageGroupName        string         `json:"ModelPackageGroupName"`
	ModelPackageVersion          int32          `json:"ModelPackageVersion"`
	ModelPackageArn              string         `json:"ModelPackageArn"`
	ModelPackageDescription      string         `json:"ModelPackageDescription,omitempty"`
	CreationTime                 epoch          `json:"CreationTime"`
	ModelPackageStatus           string         `json:"ModelPackageStatus"`
	ModelApprovalStatus          string         `json:"ModelApprovalStatus"`
	ModelLifeCycle               *wireLifecycle `json:"ModelLifeCycle,omitempty"`
	ModelPackageRegistrationType string         `json:"ModelPackageRegistrationType"`
}

type wireContainer struct {
	Image            string `json:"Image,omitempty"`
	ImageDigest      string `json:"ImageDigest,omitempty"`
	ModelDataURL     string `json:"ModelDataUrl,omitempty"`
	ModelDataETag    string `json:"ModelDataETag,omitempty"`
	Framework        string `json:"Framework,omitempty"`
	FrameworkVersion string `json:"FrameworkVersion,omitempty"`
}

type wireInference struct {
	Containers                              []wireContainer `json:"Containers"`
	SupportedContentTypes                   []string        `json:"SupportedContentTypes,omitempty"`
	SupportedResponseMIMETypes              []string        `json:"SupportedResponseMIMETypes,omitempty"`
	SupportedRealtimeInferenceInstanceTypes []string        `json:"SupportedRealtimeInferenceInstanceTypes,omitempty"`
	SupportedTransformInstanceTypes         []string        `json:"SupportedTransformInstanceTypes,omitempty"`
}

type wireStatusDetails struct {
	ValidationStatuses []struct{} `json:"ValidationStatuses"`
	ImageScanStatuses  []struct{} `json:"ImageScanStatuses"`
}

type wireMetadataProperties struct {
	GeneratedBy string `json:"GeneratedBy,omitempty"`
}

type wirePackage struct {
	ModelPackageName             string                  `json:"ModelPackageName"`
	ModelPackageGroupName        string                  `json:"ModelPackageGroupName"`
	ModelPackageVersion          int32                   `json:"ModelPackageVersion"`
	ModelPackageArn              string                  `json:"ModelPackageArn"`
	ModelPackageDescription      string                  `json:"ModelPackageDescription,omitempty"`
	CreationTime                 epoch                   `json:"CreationTime"`
	InferenceSpecification       *wireInference          `json:"InferenceSpecification,omitempty"`
	ModelPackageStatus           string                  `json:"ModelPackageStatus"`
	ModelPackageStatusDetails    wireStatusDetails       `json:"ModelPackageStatusDetails"`
	CertifyForMarketplace        bool                    `json:"CertifyForMarketplace"`
	ModelApprovalStatus          string                  `json:"ModelApprovalStatus"`
	CreatedBy                    *userContext            `json:"CreatedBy,omitempty"`
	MetadataProperties           *wireMetadataProperties `json:"MetadataProperties,omitempty"`
	LastModifiedTime             epoch                   `json:"LastModifiedTime"`
	LastModifiedBy               *userContext            `json:"LastModifiedBy,omitempty"`
	ApprovalDescription          string                  `json:"ApprovalDescription,omitempty"`
	CustomerMetadataProperties   map[string]string       `json:"CustomerMetadataProperties,omitempty"`
	ModelLifeCycle               *wireLifecycle          `json:"ModelLifeCycle,omitempty"`
	ModelPackageRegistrationType string                  `json:"ModelPackageRegistrationType"`
}

// Request shapes (only the members the fake reads).

type listGroupsInput struct {
	MaxResults *int32  `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
	SortBy     string  `json:"SortBy"`
	SortOrder  string  `json:"SortOrder"`
}

type listPackagesInput struct {
	CreationTimeAfter     *float64 `json:"CreationTimeAfter"`
	CreationTimeBefore    *float64 `json:"CreationTimeBefore"`
	MaxResults            *int32   `json:"MaxResults"`
	ModelApprovalStatus   string   `json:"ModelApprovalStatus"`
	ModelPackageGroupName string   `json:"ModelPackageGroupName"`
	ModelPackageType      string   `json:"ModelPackageType"`
	NextToken             *string  `json:"NextToken"`
	SortBy                string   `json:"SortBy"`
	SortOrder             string   `json:"SortOrder"`
}

type describeInput struct {
	ModelPackageName string `json:"ModelPackageName"`
}

type updateInput struct {
	ModelPackageArn            string            `json:"ModelPackageArn"`
	ModelApprovalStatus        string            `json:"ModelApprovalStatus"`
	ApprovalDescription        string            `json:"ApprovalDescription"`
	ModelLifeCycle             *wireLifecycle    `json:"ModelLifeCycle"`
	CustomerMetadataProperties map[string]string `json:"CustomerMetadataProperties"`
}

type createPackageInput struct {
	ModelPackageGroupName      string                  `json:"ModelPackageGroupName"`
	ModelPackageName           string                  `json:"ModelPackageName"`
	ModelPackageDescription    string                  `json:"ModelPackageDescription"`
	ModelApprovalStatus        string                  `json:"ModelApprovalStatus"`
	ModelLifeCycle             *wireLifecycle          `json:"ModelLifeCycle"`
	InferenceSpecification     *wireInference          `json:"InferenceSpecification"`
	CustomerMetadataProperties map[string]string       `json:"CustomerMetadataProperties"`
	MetadataProperties         *wireMetadataProperties `json:"MetadataProperties"`
}

type createGroupInput struct {
	ModelPackageGroupName        string `json:"ModelPackageGroupName"`
	ModelPackageGroupDescription string `json:"ModelPackageGroupDescription"`
}

type lookupInput struct {
	StartTime        *float64 `json:"StartTime"`
	EndTime          *float64 `json:"EndTime"`
	LookupAttributes []struct {
		AttributeKey   string `json:"AttributeKey"`
		AttributeValue string `json:"AttributeValue"`
	} `json:"LookupAttributes"`
	MaxResults *int32  `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

type wireEvent struct {
	EventID         string     `json:"EventId"`
	EventName       string     `json:"EventName"`
	ReadOnly        string     `json:"ReadOnly"`
	AccessKeyID     string     `json:"AccessKeyId"`
	EventTime       epoch      `json:"EventTime"`
	EventSource     string     `json:"EventSource"`
	Username        string     `json:"Username"`
	Resources       []struct{} `json:"Resources"`
	CloudTrailEvent string     `json:"CloudTrailEvent"`
}

// CloudTrail record shapes, with keys in the order CloudTrail writes them.

type ctRecord struct {
	EventVersion       string          `json:"eventVersion"`
	UserIdentity       ctUserIdentity  `json:"userIdentity"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	ErrorCode          string          `json:"errorCode,omitempty"`
	ErrorMessage       string          `json:"errorMessage,omitempty"`
	RequestParameters  ctRequest       `json:"requestParameters"`
	ResponseElements   json.RawMessage `json:"responseElements"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	EventType          string          `json:"eventType"`
	ManagementEvent    bool            `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	EventCategory      string          `json:"eventCategory"`
	TLSDetails         ctTLS           `json:"tlsDetails"`
}

type ctUserIdentity struct {
	Type           string            `json:"type"`
	PrincipalID    string            `json:"principalId"`
	ARN            string            `json:"arn"`
	AccountID      string            `json:"accountId"`
	AccessKeyID    string            `json:"accessKeyId"`
	UserName       string            `json:"userName,omitempty"`
	SessionContext *ctSessionContext `json:"sessionContext,omitempty"`
}

type ctSessionContext struct {
	SessionIssuer  ctSessionIssuer `json:"sessionIssuer"`
	Attributes     ctAttributes    `json:"attributes"`
	SourceIdentity string          `json:"sourceIdentity,omitempty"`
}

type ctSessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
}

type ctAttributes struct {
	CreationDate     string `json:"creationDate"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

// ctRequest holds the requestParameters of the SageMaker calls the fake
// records (camelCase member names, as SageMaker records write them).
type ctRequest struct {
	ModelPackageGroupName   string       `json:"modelPackageGroupName,omitempty"`
	ModelPackageArn         string       `json:"modelPackageArn,omitempty"`
	ModelPackageDescription string       `json:"modelPackageDescription,omitempty"`
	ModelApprovalStatus     string       `json:"modelApprovalStatus,omitempty"`
	ApprovalDescription     string       `json:"approvalDescription,omitempty"`
	ModelLifeCycle          *ctLifecycle `json:"modelLifeCycle,omitempty"`
}

type ctLifecycle struct {
	Stage            string `json:"stage"`
	StageStatus      string `json:"stageStatus"`
	StageDescription string `json:"stageDescription,omitempty"`
}

type ctTLS struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

func (id Identity) ctUserIdentity(account string, at time.Time) ctUserIdentity {
	u := ctUserIdentity{
		PrincipalID: id.principalID(),
		ARN:         id.arn(account),
		AccountID:   account,
		AccessKeyID: id.accessKeyID(),
	}
	if id.isUser() {
		u.Type = "IAMUser"
		u.UserName = id.User
		return u
	}
	u.Type = "AssumedRole"
	u.SessionContext = &ctSessionContext{
		SessionIssuer: ctSessionIssuer{
			Type:        "Role",
			PrincipalID: id.uniqueID(),
			ARN:         id.roleARN(account),
			AccountID:   account,
			UserName:    id.Role,
		},
		Attributes: ctAttributes{
			CreationDate:     at.Add(-20 * time.Minute).Format(time.RFC3339),
			MFAAuthenticated: "false",
		},
		SourceIdentity: id.SourceIdentity,
	}
	return u
}
