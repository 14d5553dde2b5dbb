package ledger_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/ledger/ledgertest"
)

// crashChildEnv, when set to a directory, turns the test binary into the
// appending child of TestLongCrashAppend.
const crashChildEnv = "REGISTRYWATCH_LEDGER_CRASH_CHILD"

// crashBatch is batch number id of the crash test: 1 + id%23 changes, a
// finding that alerts (the previous batch's alert is marked delivered), a
// snapshot entry, the matching state row and an aux row holding id.
func crashBatch(id int64) ledger.Batch {
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Second)
	var b ledger.Batch
	n := 1 + int(id%23)
	for i := 0; i < n; i++ {
		b.Entries = append(b.Entries, ledger.Entry{Kind: "tag.set", Source: "crash", SourceType: "mlflow", Model: "m", ModelID: "m@1",
			Version: strconv.Itoa(i), Actor: "unknown", ObservedAt: at, Payload: map[string]any{"batch": id, "i": i, "key": "k", "value": strings.Repeat("v", i*7)}})
	}
	b.Entries = append(b.Entries, ledger.Entry{Kind: ledger.KindPromotion, Source: "crash", SourceType: "mlflow", Model: "m", ModelID: "m@1",
		Version: strconv.FormatInt(id, 10), Actor: ledger.ActorRegistrywatch, ObservedAt: at, Alert: true,
		Payload: map[string]any{"batch": id, "triggering_seq": ledger.InBatch(0), "verdict": "missing"}})
	state := []byte("state of batch " + strconv.FormatInt(id, 10))
	sum := sha256.Sum256(state)
	b.Entries = append(b.Entries, ledger.Entry{Kind: ledger.KindSnapshot, Source: "crash", SourceType: "mlflow", Actor: ledger.ActorRegistrywatch,
		ObservedAt: at, Payload: map[string]any{"batch": id, "digest": hex.EncodeToString(sum[:]), "models": 1, "versions": n}})
	b.States = []ledger.State{{Source: "crash", Bytes: state}}
	b.Aux = []ledger.Aux{{Source: "crash", Key: "last", Value: []byte(strconv.FormatInt(id, 10))}}
	return b
}

// crashChild appends batches forever, printing "committed <id>" after each
// commit, continuing from what the ledger holds.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	s, err := ledger.LoadSigner(ctx, filepath.Join(dir, "ledger.key"), nil)
	if err != nil {
		fail(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{Signer: s, Origin: testOrigin})
	if err != nil {
		fail(err)
	}
	next := int64(0)
	if v, ok, err := l.Aux(ctx, "crash", "last"); err != nil {
		fail(err)
	} else if ok {
		last, _ := strconv.ParseInt(string(v), 10, 64)
		next = last + 1
	}
	for id := next; ; id++ {
		b := crashBatch(id)
		if box, err := l.Outbox(ctx); err != nil {
			fail(err)
		} else {
			for _, it := range box {
				b.OutboxDone = append(b.OutboxDone, it.FindingID)
			}
		}
		if _, err := l.Append(ctx, b); err != nil {
			fail(err)
		}
		os.Stdout.Write([]byte("committed " + strconv.FormatInt(id, 10) + "\n"))
	}
}

// TestLongCrashAppend kills an appending child process with SIGKILL at
// random moments, 100 times. After each kill the ledger must verify and hold
// every acknowledged batch, at most one more complete batch, and nothing
// partial.
func TestLongCrashAppend(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("kills a child process 100 times")
	}
	ctx := t.Context()
	dir := t.TempDir()
	s, priv, err := ledgertest.NewSigner(ledger.KeyTypeEd25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ledger.key"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ledger.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := int64(-1) // highest batch id acknowledged by any child
	var checked int64  // entries already checked for completeness
	last := int64(-1)  // the last batch in the ledger
	for round := 0; round < 100; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLongCrashAppend$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		first := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			seen := false
			for sc.Scan() {
				id, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "committed "), 10, 64)
				if err != nil {
					continue
				}
				mu.Lock()
				acked = max(acked, id)
				mu.Unlock()
				if !seen {
					seen = true
					close(first)
				}
			}
		}()
		// A quarter of the kills land anywhere from the start (open, key
		// check, tree restore), the rest while batches are being committed.
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		} else {
			select {
			case <-first:
			case <-done:
			case <-time.After(10 * time.Second):
			}
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: the child exited by itself (%v): %s", round, err, stderr.String())
		}
		mu.Lock()
		a := acked
		mu.Unlock()
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if a >= 0 {
				t.Fatalf("round %d: batch %d acknowledged but no ledger", round, a)
			}
			continue
		}
		checked, last = checkCrashLedger(ctx, t, path, s, a, checked, last, round)
	}
	t.Logf("100 kills: %d batches committed, %d acknowledged, %d entries", last+1, acked+1, checked)
}

// checkCrashLedger verifies the ledger after a kill and checks the entries
// after seq from, which hold batches prevLast+1 onwards: each complete and in
// order, the last one being acked or acked+1. It returns the ledger size and
// the last batch.
func checkCrashLedger(ctx context.Context, t *testing.T, path string, s signature.Signer, acked, from, prevLast int64, round int) (int64, int64) {
	t.Helper()
	r, err := ledger.Verify(ctx, path, ledger.VerifyOptions{Keys: pubKeys(s)})
	if err != nil {
		t.Fatalf("round %d: verify after SIGKILL: %v", round, err)
	}
	l, err := ledger.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	last := int64(-1)
	if v, ok, err := l.Aux(ctx, "crash", "last"); err != nil {
		t.Fatal(err)
	} else if ok {
		last, _ = strconv.ParseInt(string(v), 10, 64)
	}
	if last != acked && last != acked+1 {
		t.Fatalf("round %d: the ledger ends with batch %d, %d was acknowledged", round, last, acked)
	}
	var recs []ledger.Record
	if err := l.Find(ctx, ledger.Query{FromSeq: from}, func(rec ledger.Record) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	i := 0
	for id := prevLast + 1; id <= last; id++ {
		want := crashBatch(id)
		for j, e := range want.Entries {
			if i >= len(recs) {
				t.Fatalf("round %d: batch %d ends after %d of its %d entries", round, id, j, len(want.Entries))
			}
			got := recs[i]
			if got.Kind != e.Kind || got.Payload["batch"] != id || (e.Kind == "tag.set" && got.Payload["i"] != int64(j)) {
				t.Fatalf("round %d: seq %d is %s %v, want entry %d of batch %d (%s)", round, got.Seq, got.Kind, got.Payload, j, id, e.Kind)
			}
			i++
		}
	}
	if i != len(recs) || from+int64(i) != r.Entries {
		t.Fatalf("round %d: %d entries after batch %d", round, len(recs)-i, last)
	}
	if last >= 0 {
		box, err := l.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(box) != 1 || box[0].Record.Payload["batch"] != last {
			t.Fatalf("round %d: outbox %+v, want the alert of batch %d", round, box, last)
		}
		st, _, err := l.State(ctx, "crash")
		if err != nil || string(st) != "state of batch "+strconv.FormatInt(last, 10) {
			t.Fatalf("round %d: state %q, %v", round, st, err)
		}
	}
	return r.Entries, last
}
