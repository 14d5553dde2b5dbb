package daemon

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// pollRig is a Poller over one source on a fake clock, writing a real ledger.
type pollRig struct {
	t    *testing.T
	clk  *clock.Fake
	led  *ledger.Ledger
	path string
	p    *Poller
	// driven moves the clock while a poll waits on it (rate limits,
	// retry backoffs).
	driven bool
}

func newPollRig(t *testing.T, clk *clock.Fake, src sources.Source, cfg config.Source) *pollRig {
	led, path := openTestLedger(t, clk)
	global := config.Policy{RollbackObjective: config.Duration(30 * time.Minute)}
	return &pollRig{t: t, clk: clk, led: led, path: path,
		p: NewPoller(src, led, PollerOptions{Clock: clk, Policy: PolicyConfig(global, cfg)})}
}

// poll advances a minute, polls (moving the fake clock whenever the source
// waits on it: rate limits, retries), and returns the entries appended
// (without snapshot and coverage entries) as "kind model@version actor
// key=value..." lines.
func (r *pollRig) poll(keys ...string) []string {
	r.t.Helper()
	ctx := r.t.Context()
	r.clk.Advance(time.Minute)
	before, _ := r.led.Size(ctx)
	var err error
	if r.driven {
		drive(r.clk, func() { _, err = r.p.PollOnce(ctx) })
	} else {
		_, err = r.p.PollOnce(ctx)
	}
	if err != nil {
		r.t.Fatalf("poll: %v", err)
	}
	return r.entries(before, keys...)
}

// drive runs fn, moving clk to the next timer deadline whenever it is at
// most maxJump away: backoffs and rate limits, never a request timeout
// (tests set timeouts of an hour), so a request in flight is never timed out.
func drive(clk *clock.Fake, fn func()) {
	const maxJump = 5 * time.Minute
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	for {
		select {
		case <-done:
			return
		default:
			if d, ok := clk.NextDeadline(); ok && d.Sub(clk.Now()) <= maxJump {
				clk.Set(d)
			}
			runtime.Gosched()
		}
	}
}

func (r *pollRig) entries(from int64, keys ...string) []string {
	var out []string
	err := r.led.Find(r.t.Context(), ledger.Query{FromSeq: from}, func(rec ledger.Record) error {
		if rec.Kind == "snapshot" || rec.Kind == "coverage" {
			return nil
		}
		line := fmt.Sprintf("%s %s@%s %s", rec.Kind, rec.Model, rec.Version, rec.Actor)
		for _, k := range keys {
			if v, ok := rec.Payload[k]; ok {
				line += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *pollRig) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

// seqOf returns the seq of the latest entry of kind for model@version.
func (r *pollRig) seqOf(kind, model, version string) int64 {
	r.t.Helper()
	seq := int64(-1)
	err := r.led.Find(r.t.Context(), ledger.Query{Kind: kind}, func(rec ledger.Record) error {
		if rec.Model == model && rec.Version == version {
			seq = rec.Seq
		}
		return nil
	})
	if err != nil || seq < 0 {
		r.t.Fatalf("no %s for %s@%s (%v)", kind, model, version, err)
	}
	return seq
}

func sameLines(t *testing.T, step string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got:\n  %s\nwant:\n  %s", step, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
