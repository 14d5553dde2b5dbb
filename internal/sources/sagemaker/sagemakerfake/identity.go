package sagemakerfake

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SharedSession is the role session name SageMaker Studio uses for every user
// of an execution role: calls made from Studio run as
// assumed-role/<execution role>/SageMaker.
const SharedSession = "SageMaker"

// Identity describes who makes a call: an IAM user, or a session of an
// assumed role (optionally a SageMaker Studio user profile behind it, and an
// STS source identity). The fake derives from it both the SageMaker
// UserContext (CreatedBy, LastModifiedBy) and the CloudTrail userIdentity.
type Identity struct {
	// User is the IAM user name; set only for IAM users.
	User string
	// Role and Session name the assumed role session (Role set, User empty).
	Role    string
	Session string
	// SourceIdentity is the STS source identity carried by the session, or "".
	SourceIdentity string
	// UserProfile is the SageMaker Studio user profile name behind the
	// session, and Domain its domain id ("d-…").
	UserProfile string
	Domain      string
	// PrincipalID is the unique id of the user (AIDA…) or role (AROA…);
	// derived from the name when "".
	PrincipalID string
	// AccessKeyID is the key the call is signed with; derived when "".
	AccessKeyID string
}

// IAMUser returns the identity of IAM user name.
func IAMUser(name string) Identity { return Identity{User: name} }

// AssumedRole returns the identity of a session named session of role.
func AssumedRole(role, session string) Identity { return Identity{Role: role, Session: session} }

// StudioUser returns the identity of SageMaker Studio user profile profile
// working through the shared execution role executionRole (session
// SharedSession, no source identity unless WithSourceIdentity adds one).
func StudioUser(profile, executionRole string) Identity {
	return Identity{Role: executionRole, Session: SharedSession, UserProfile: profile, Domain: "d-fakedomain001"}
}

// WithSourceIdentity returns a copy of id whose session carries source
// identity s (as a Studio domain with ExecutionRoleIdentityConfig
// USER_PROFILE_NAME, or an IdP, sets it).
func (id Identity) WithSourceIdentity(s string) Identity {
	id.SourceIdentity = s
	return id
}

func (id Identity) isUser() bool { return id.User != "" }

// arn returns the caller ARN as IAM and STS write it.
func (id Identity) arn(account string) string {
	if id.isUser() {
		return "arn:aws:iam::" + account + ":user/" + id.User
	}
	return "arn:aws:sts::" + account + ":assumed-role/" + id.Role + "/" + id.Session
}

func (id Identity) roleARN(account string) string {
	return "arn:aws:iam::" + account + ":role/" + id.Role
}

// uniqueID returns the AIDA…/AROA… id of the user or role.
func (id Identity) uniqueID() string {
	if id.PrincipalID != "" {
		return id.PrincipalID
	}
	if id.isUser() {
		return "AIDA" + hash16("user/"+id.User)
	}
	return "AROA" + hash16("role/"+id.Role)
}

// principalID is the principalId of the call: the unique id, plus
// ":<session>" for a role session.
func (id Identity) principalID() string {
	if id.isUser() {
		return id.uniqueID()
	}
	return id.uniqueID() + ":" + id.Session
}

func (id Identity) accessKeyID() string {
	if id.AccessKeyID != "" {
		return id.AccessKeyID
	}
	if id.isUser() {
		return "AKIA" + hash16("key/"+id.User)
	}
	return "ASIA" + hash16("key/"+id.Role+"/"+id.Session)
}

// username is the Username field of a LookupEvents event.
func (id Identity) username() string {
	if id.isUser() {
		return id.User
	}
	return id.Session
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// userContext is the SageMaker UserContext shape (CreatedBy, LastModifiedBy).
type userContext struct {
	UserProfileArn  string       `json:"UserProfileArn,omitempty"`
	UserProfileName string       `json:"UserProfileName,omitempty"`
	DomainID        string       `json:"DomainId,omitempty"`
	IamIdentity     *iamIdentity `json:"IamIdentity,omitempty"`
}

type iamIdentity struct {
	Arn            string `json:"Arn"`
	PrincipalID    string `json:"PrincipalId"`
	SourceIdentity string `json:"SourceIdentity,omitempty"`
}

func (id Identity) userContext(account, region string) *userContext {
	uc := &userContext{IamIdentity: &iamIdentity{
		Arn:            id.arn(account),
		PrincipalID:    id.principalID(),
		SourceIdentity: id.SourceIdentity,
	}}
	if id.UserProfile != "" {
		uc.UserProfileArn = "arn:aws:sagemaker:" + region + ":" + account + ":user-profile/" + id.Domain + "/" + id.UserProfile
		uc.UserProfileName = id.UserProfile
		uc.DomainID = id.Domain
	}
	return uc
}
