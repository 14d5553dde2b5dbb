package e2e

import (
	"testing"
)

// TestCheckerCatchesEveryItem removes, and then duplicates, each expected
// item of the quarter's record one at a time: the checker MUST fail each
// time, so no row of the bundle goes unchecked and none is accepted twice.
func TestCheckerCatchesEveryItem(t *testing.T) {
	p := quarterRun(t)
	if err := Check(p.bundle, p.q.Rec); err != nil {
		t.Fatalf("the unchanged record does not match the bundle:\n%v", err)
	}
	items := p.q.Rec.Items()
	if len(items) == 0 {
		t.Fatal("the record is empty")
	}
	caught := 0
	for _, it := range items {
		for _, m := range []struct {
			how string
			rec func() *Record
		}{{"removed", it.Without}, {"duplicated", it.Twice}} {
			if err := Check(p.bundle, m.rec()); err == nil {
				t.Errorf("%s %s: the checker accepts the bundle", it.Name, m.how)
			} else {
				caught++
			}
		}
	}
	t.Logf("%d items, %d mutations of the record, %d caught", len(items), 2*len(items), caught)
}
