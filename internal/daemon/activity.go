package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// activity knows whether the daemon has anything to do before the clock
// moves: every loop of the daemon registers here and parks on a clock timer
// through sleepUntil, and alert delivery is owed from the commit that queued
// an alert until the dispatcher finds the outbox empty or backs off. The
// daemon is idle when every loop is parked on a deadline still in the future
// and no delivery is owed; tests and the demo wait for that before moving a
// fake clock (Daemon.Idle).
type activity struct {
	clk clock.Clock

	mu    sync.Mutex
	loops map[string]*loopState
	owed  bool   // an alert delivery is owed
	gen   uint64 // bumped by each commit that queued alerts
	// backoff is set while the dispatcher waits on a retry backoff: Kick
	// does not cut it short, so a commit queuing alerts meanwhile owes no
	// delivery before the backoff's timer fires and the dispatcher reads
	// the outbox again.
	backoff bool
	waiters []chan struct{}
}

type loopState struct {
	parked bool
	until  time.Time
}

func newActivity(clk clock.Clock) *activity {
	return &activity{clk: clk, loops: map[string]*loopState{}}
}

// add registers a loop, busy until it first parks.
func (a *activity) add(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.loops[name] = &loopState{}
}

// done unregisters a loop that ended.
func (a *activity) done(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.loops, name)
	a.notifyLocked()
}

// sleepUntil parks loop name until the clock reaches until, or ctx is done;
// it reports whether the deadline was reached. The timer exists before the
// loop counts as parked, so a caller that saw the daemon idle also sees the
// deadline in the clock.
func (a *activity) sleepUntil(ctx context.Context, name string, until time.Time) bool {
	d := until.Sub(a.clk.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := a.clk.NewTimer(d)
	defer t.Stop()
	a.set(name, true, until)
	defer a.set(name, false, time.Time{})
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *activity) set(name string, parked bool, until time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st := a.loops[name]; st != nil {
		st.parked, st.until = parked, until
	}
	a.notifyLocked()
}

// queued records a commit that put alerts in the outbox.
func (a *activity) queued() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.backoff {
		a.owed = true
	}
	a.gen++
}

// generation returns the current commit generation, read before the
// dispatcher reads the outbox (which ends any backoff).
func (a *activity) generation() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.backoff = false
	return a.gen
}

// drained records that the dispatcher found the outbox empty in a read that
// started at generation gen (a commit after that read still owes delivery).
func (a *activity) drained(gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen == gen {
		a.owed = false
		a.notifyLocked()
	}
}

// backingOff records that the dispatcher parked on a retry backoff: it owes
// nothing until its timer fires, even when commits queue alerts meanwhile.
func (a *activity) backingOff() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.owed, a.backoff = false, true
	a.notifyLocked()
}

// idle returns a channel closed once the daemon is idle.
func (a *activity) idle() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{})
	if a.idleLocked() {
		close(ch)
		return ch
	}
	a.waiters = append(a.waiters, ch)
	return ch
}

func (a *activity) idleLocked() bool {
	if a.owed {
		return false
	}
	now := a.clk.Now()
	for _, st := range a.loops {
		if !st.parked || !st.until.After(now) {
			return false
		}
	}
	return true
}

func (a *activity) notifyLocked() {
	if len(a.waiters) == 0 || !a.idleLocked() {
		return
	}
	for _, ch := range a.waiters {
		close(ch)
	}
	a.waiters = nil
}
