package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	c := f.NewTimer(10 * time.Second)
	f.Advance(5 * time.Second)
	if got := <-b.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("b fired at %v", got)
	}
	if got := <-a.C(); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("a fired at %v", got)
	}
	select {
	case <-c.C():
		t.Fatal("c fired early")
	default:
	}
	if !f.Now().Equal(start.Add(5 * time.Second)) {
		t.Fatalf("now = %v", f.Now())
	}
	if !c.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	f.Advance(time.Hour)
	select {
	case <-c.C():
		t.Fatal("stopped timer fired")
	default:
	}
}

func TestFakeResetAndWait(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	w := f.WaitForTimers(1)
	select {
	case <-w:
		t.Fatal("closed with no timers")
	default:
	}
	tm := f.NewTimer(time.Minute)
	<-w
	tm.Reset(time.Second)
	f.Advance(time.Second)
	if got := <-tm.C(); !got.Equal(time.Unix(1, 0).UTC()) {
		t.Fatalf("fired at %v", got)
	}
	if f.Pending() != 0 {
		t.Fatalf("pending = %d", f.Pending())
	}
}

func TestSleepCancelled(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	done := make(chan struct{})
	close(done)
	if Sleep(f, time.Hour, done) {
		t.Fatal("Sleep reported completion after cancel")
	}
	if !Sleep(Real{}, time.Millisecond, nil) {
		t.Fatal("real Sleep did not complete")
	}
}
