package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/policy"
)

// KindCheckpointPublished records a checkpoint publication (DESIGN.md
// section 5): {size, where}, where lists "slack" and the file written.
const KindCheckpointPublished = "checkpoint.published"

// WhereSlack is the where of a checkpoint posted to the alert sink.
const WhereSlack = "slack"

const publishLoop = "publish"

// initPublisher reads the last publication from the ledger.
func (d *Daemon) initPublisher(ctx context.Context) error {
	if d.cfg.Ledger.Publish.Schedule == nil && d.cfg.Ledger.PublishSchedule != "" {
		s, err := config.ParseSchedule(d.cfg.Ledger.PublishSchedule)
		if err != nil {
			return fmt.Errorf("ledger.publish_schedule: %w", err)
		}
		d.cfg.Ledger.Publish = s
	}
	err := d.led.Find(ctx, ledger.Query{Kind: KindCheckpointPublished, Desc: true, Limit: 1}, func(r ledger.Record) error {
		if n, ok := alerts.PayloadInt(r.Payload, "size"); ok {
			d.lastPublished, d.publishedAt = n, r.ObservedAt
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read checkpoint.published: %w", err)
	}
	if d.cfg.Ledger.Publish.Schedule != nil && d.sink == nil && d.cfg.Ledger.PublishPath == "" {
		d.log.Warn("checkpoints are not published: configure alerts.slack or ledger.publish_path")
	}
	return nil
}

// publishes reports whether the daemon publishes checkpoints.
func (d *Daemon) publishes() bool {
	return d.cfg.Ledger.Publish.Schedule != nil && (d.sink != nil || d.cfg.Ledger.PublishPath != "")
}

// publishLoop publishes the latest checkpoint on ledger.publish_schedule.
func (d *Daemon) publishLoop(ctx context.Context) {
	defer d.act.done(publishLoop)
	for {
		next := d.cfg.Ledger.Publish.Next(d.clk.Now())
		if !d.act.sleepUntil(ctx, publishLoop, next) {
			return
		}
		if err := d.publish(d.work); err != nil {
			d.log.Error("publish checkpoint", "error", err)
		}
	}
}

// publish posts the latest signed checkpoint to the sink, writes it to
// ledger.publish_path as <size>.checkpoint (created exclusively, never
// overwritten) and records checkpoint.published with where it went. A
// checkpoint already published is not published again.
func (d *Daemon) publish(ctx context.Context) error {
	note, err := d.led.LatestCheckpoint(ctx)
	if err != nil || note == nil {
		return err
	}
	cp, err := ledger.ParseCheckpoint(note)
	if err != nil {
		return err
	}
	d.mu.Lock()
	last := d.lastPublished
	d.mu.Unlock()
	if cp.Size == last {
		d.log.Debug("checkpoint unchanged since its publication", "size", cp.Size)
		return nil
	}
	var where []string
	var errs []error
	if d.sink != nil {
		text := fmt.Sprintf("registrywatch checkpoint of %s at tree size %d: keep it to prove later, with `registrywatch verify -checkpoint FILE`, that the ledger only grew\n%s",
			cp.Origin, cp.Size, note)
		if err := d.sink.Notify(ctx, text); err != nil {
			errs = append(errs, fmt.Errorf("post checkpoint: %w", err))
		} else {
			where = append(where, WhereSlack)
		}
	}
	if dir := d.cfg.Ledger.PublishPath; dir != "" {
		if path, err := writeCheckpoint(dir, cp.Size, note); err != nil {
			errs = append(errs, err)
		} else {
			where = append(where, path)
		}
	}
	if len(where) == 0 {
		return errors.Join(errs...)
	}
	now := d.clk.Now()
	_, err = d.append(ctx, ledger.Batch{Entries: []ledger.Entry{{
		Kind: KindCheckpointPublished, SourceType: "registrywatch", Actor: policy.Actor,
		ObservedAt: now, OccurredFrom: now, OccurredTo: now,
		Payload: map[string]any{"size": cp.Size, "where": where},
	}}})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("append checkpoint.published: %w", err))...)
	}
	d.mu.Lock()
	d.lastPublished, d.publishedAt = cp.Size, now
	d.mu.Unlock()
	d.m.published.Inc()
	d.log.Info("checkpoint published", "size", cp.Size, "where", where)
	return errors.Join(errs...)
}

// writeCheckpoint writes note to dir/<size>.checkpoint, creating the file
// exclusively. A file already holding the same note counts as written; one
// holding anything else is never overwritten.
func writeCheckpoint(dir string, size int64, note []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("ledger.publish_path: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%d.checkpoint", size))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, fs.ErrExist) {
		old, rerr := os.ReadFile(path)
		if rerr == nil && bytes.Equal(old, note) {
			return path, nil
		}
		return "", fmt.Errorf("%s already exists with other content: checkpoints are never overwritten", path)
	}
	if err != nil {
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = f.Write(note)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // a partial file this call created
		return "", fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return path, nil
}
