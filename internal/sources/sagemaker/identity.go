package sagemaker

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// Unknown is the identity key of a caller the registry cannot name. Consumers
// MUST treat it as equal to no identity, itself included.
const Unknown = "unknown"

// SharedSession is the role session name SageMaker Studio gives every user of
// an execution role (assumed-role/<role>/SageMaker): such a session names no
// person.
const SharedSession = "SageMaker"

// IdentityKey returns the identity key of a caller (DESIGN.md section 2): the
// STS source identity when set, else the SageMaker Studio user profile name,
// else the full caller ARN. It returns Unknown when none is given, and for an
// ARN whose session is only the shared Studio session
// (arn:…:sts::…:assumed-role/<role>/SageMaker), because every Studio user of
// that role looks the same there. It is used for both SageMaker UserContext
// (CreatedBy, LastModifiedBy) and CloudTrail userIdentity, so the two compare.
func IdentityKey(sourceIdentity, userProfileName, arn string) string {
	switch {
	case strings.TrimSpace(sourceIdentity) != "":
		return sourceIdentity
	case strings.TrimSpace(userProfileName) != "":
		return userProfileName
	case strings.TrimSpace(arn) == "" || sharedSession(arn):
		return Unknown
	}
	return arn
}

// sharedSession reports whether arn is an STS assumed-role ARN whose session
// name is SharedSession.
func sharedSession(arn string) bool {
	_, resource, ok := strings.Cut(arn, ":assumed-role/")
	if !ok || !strings.HasPrefix(arn, "arn:") {
		return false
	}
	_, session, ok := strings.Cut(resource, "/")
	return ok && strings.EqualFold(session, SharedSession)
}

// userContextKey returns the identity key of a SageMaker UserContext.
func userContextKey(uc *types.UserContext) string {
	if uc == nil {
		return Unknown
	}
	var source, arn string
	if uc.IamIdentity != nil {
		source, arn = deref(uc.IamIdentity.SourceIdentity), deref(uc.IamIdentity.Arn)
	}
	return IdentityKey(source, deref(uc.UserProfileName), arn)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
