package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// KindConfigApplied is the entry recording the redacted config in force.
const KindConfigApplied = "config.applied"

// PolicyConfig builds the policy of one source from the config file: the
// global policy section and the source's production and approval mapping.
func PolicyConfig(global config.Policy, src config.Source) *policy.Config {
	pc := &policy.Config{
		Source:             src.Name,
		SourceType:         src.Type,
		Stages:             src.Production.Stages,
		Aliases:            src.Production.Aliases,
		ApprovalStatus:     src.Production.ApprovalStatus,
		LifecycleStages:    src.Production.LifecycleStages,
		ApprovalTag:        src.Approval.Tag,
		ApprovalTimeTag:    src.Approval.TimeTag,
		ApprovalAlias:      src.Approval.Alias,
		TransitionRequests: src.Approval.TransitionRequests,
		StatusApproval:     src.Type == sources.TypeSageMaker,
		Approvers:          global.Approval.Approvers,
		MaxAge:             global.Approval.MaxAge.D(),
		EmergencyTag:       global.EmergencyTag,
		RetireTag:          global.RetireTag,
		RollbackRequestTag: src.RollbackRequestTag,
		Objective: func(model string) time.Duration {
			return src.RollbackObjectiveFor(model, global.RollbackObjective).D()
		},
	}
	return pc
}

// RecordConfig appends config.applied {config, digest} when the redacted
// config's digest differs from the last one recorded. It reports whether it
// appended.
func RecordConfig(ctx context.Context, led *ledger.Ledger, cfg *config.Config, now time.Time) (bool, error) {
	digest := cfg.Digest()
	var last string
	err := led.Find(ctx, ledger.Query{Kind: KindConfigApplied, Desc: true, Limit: 1}, func(r ledger.Record) error {
		last, _ = r.Payload["digest"].(string)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read config.applied: %w", err)
	}
	if last == digest {
		return false, nil
	}
	_, err = led.Append(ctx, ledger.Batch{Entries: []ledger.Entry{{
		Kind: KindConfigApplied, SourceType: "registrywatch", Actor: policy.Actor,
		ObservedAt: now, OccurredFrom: now, OccurredTo: now,
		Payload: map[string]any{"config": cfg.Redacted(), "digest": digest},
	}}})
	if err != nil {
		return false, fmt.Errorf("append config.applied: %w", err)
	}
	return true, nil
}
