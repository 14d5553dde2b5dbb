package sagemakerfake

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Recorded serves the recorded SageMaker and CloudTrail answers of a fixture
// directory (the shared fixtures' sagemaker folder) verbatim, picking the
// file by X-Amz-Target and request, and keeps every request body it receives.
// Tests use it to check that the SDK decodes the same values from the Fake
// as from the recordings, and that requests have the recorded shape.
type Recorded struct {
	dir string

	mu   sync.Mutex
	sent map[string][][]byte
}

// NewRecorded returns a server of the recordings in dir.
func NewRecorded(dir string) *Recorded {
	return &Recorded{dir: dir, sent: map[string][][]byte{}}
}

// Sent returns the bodies received for target ("SageMaker.ListModelPackages").
func (r *Recorded) Sent(target string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.sent[target]...)
}

// ServeHTTP answers with the recording of the request's operation:
// ListModelPackages page 2 when a NextToken is sent, DescribeModelPackage
// by the version at the end of the ARN (1 rejected, 2 approved, 3 pending,
// others the recorded ValidationException), LookupEvents the recorded
// UpdateModelPackage events whatever the lookup attribute.
func (r *Recorded) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	target := req.Header.Get("X-Amz-Target")
	r.mu.Lock()
	r.sent[target] = append(r.sent[target], body)
	r.mu.Unlock()
	var in struct {
		NextToken        string
		ModelPackageName string
	}
	_ = json.Unmarshal(body, &in)
	file, status := "", http.StatusOK
	switch target {
	case "SageMaker.ListModelPackageGroups":
		file = "list-model-package-groups.response.json"
	case "SageMaker.ListModelPackages":
		file = "list-model-packages.page1.response.json"
		if in.NextToken != "" {
			file = "list-model-packages.page2.response.json"
		}
	case "SageMaker.DescribeModelPackage":
		switch {
		case strings.HasSuffix(in.ModelPackageName, "/1"):
			file = "describe-model-package.rejected.response.json"
		case strings.HasSuffix(in.ModelPackageName, "/2"):
			file = "describe-model-package.approved.response.json"
		case strings.HasSuffix(in.ModelPackageName, "/3"):
			file = "describe-model-package.pending.response.json"
		default:
			file, status = "error.validation-exception.response.json", http.StatusBadRequest
		}
	case "SageMaker.UpdateModelPackage":
		file = "update-model-package.response.json"
	case "CloudTrail_20131101.LookupEvents":
		file = "cloudtrail-lookup-events.response.json"
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "no recording for "+target)
		return
	}
	b, err := os.ReadFile(filepath.Join(r.dir, file))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
