package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// coverageState is a source's coverage counters (aux "coverage"), updated by
// every poll, successful or not.
type coverageState struct {
	// Hour is the start of the hourly window being counted.
	Hour          time.Time `json:"hour"`
	Polls         int64     `json:"polls"`
	Failures      int64     `json:"failures"`
	LastSuccessAt time.Time `json:"last_success_at"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
}

// readCoverage returns the coverage counters of a source (zero when none).
func readCoverage(ctx context.Context, led *ledger.Ledger, source string) (coverageState, error) {
	var c coverageState
	b, ok, err := led.Aux(ctx, source, auxCoverage)
	if err != nil {
		return c, fmt.Errorf("source %s: read coverage: %w", source, err)
	}
	if ok {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("source %s: coverage state: %w", source, err)
		}
	}
	return c, nil
}

// coverage counts one poll ending at end. When the poll is the first after
// an hour closed, it also returns that hour's coverage entry.
func (p *Poller) coverage(ctx context.Context, start, end time.Time, ok bool) (ledger.Aux, []ledger.Entry, error) {
	name := p.src.Name()
	c, err := readCoverage(ctx, p.led, name)
	if err != nil {
		return ledger.Aux{}, nil, err
	}
	var entries []ledger.Entry
	hour := end.Truncate(time.Hour)
	if !c.Hour.IsZero() && hour.After(c.Hour) {
		digest := ""
		if b, has, err := p.led.State(ctx, name); err != nil {
			return ledger.Aux{}, nil, fmt.Errorf("source %s: read state: %w", name, err)
		} else if has {
			digest = sources.DigestBytes(b)
		}
		entries = append(entries, ledger.Entry{
			Kind: "coverage", Source: name, SourceType: p.src.Type(), Actor: policy.Actor,
			ObservedAt: end, OccurredFrom: c.Hour, OccurredTo: c.Hour.Add(time.Hour),
			Payload: map[string]any{
				"window":               map[string]any{"from": ledger.FormatTime(c.Hour), "to": ledger.FormatTime(c.Hour.Add(time.Hour))},
				"polls":                c.Polls,
				"failures":             c.Failures,
				"last_snapshot_digest": digest,
			},
		})
		c.Polls, c.Failures = 0, 0
	}
	if c.Hour.IsZero() || hour.After(c.Hour) {
		c.Hour = hour
	}
	c.Polls++
	c.LastAttemptAt = end
	if ok {
		c.LastSuccessAt = end
	} else {
		c.Failures++
	}
	b, _ := json.Marshal(c)
	return ledger.Aux{Source: name, Key: auxCoverage, Value: b}, entries, nil
}
