package alerts_test

import (
	"testing"

	"github.com/registrywatch/registrywatch/internal/alerts"
)

func TestSeverityFromPayload(t *testing.T) {
	for _, sev := range []string{"danger", "warning", "info", ""} {
		p := map[string]any{"severity": sev, "verdict": "missing"}
		if got := alerts.Severity(p); got != sev {
			t.Errorf("Severity = %q, want %q", got, sev)
		}
		if got := alerts.ShouldAlert(p); got != (sev != "") {
			t.Errorf("ShouldAlert(%q) = %v", sev, got)
		}
	}
}

func TestClassify(t *testing.T) {
	plain := errTest("boom")
	tests := []struct {
		err       error
		retryable bool
	}{
		{alerts.Retryable(plain, 0), true},
		{alerts.Permanent(plain), false},
		{plain, true},
	}
	for _, tt := range tests {
		if got, _ := alerts.Classify(tt.err); got != tt.retryable {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.retryable)
		}
	}
	if _, after := alerts.Classify(alerts.Retryable(plain, 7e9)); after != 7e9 {
		t.Errorf("Classify retry after = %v, want 7s", after)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
