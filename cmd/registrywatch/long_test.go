package main

import (
	"bufio"
	"context"
	"crypto"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// TestLongDaemon runs the registrywatch binary as a child process in real
// time against fakes served by the test: a second writer, graceful and
// immediate shutdown, SIGKILL at random moments, and the memory of an idle
// daemon.
func TestLongDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in real time")
	}
	// The binary the Dockerfile ships (static, stripped): its size is part
	// of the resident memory measured below.
	bin := buildShipped(t)
	t.Run("SecondWriterAndSignals", func(t *testing.T) { testSecondWriterAndSignals(t, bin) })
	t.Run("KillLoop", func(t *testing.T) { testKillLoop(t, bin) })
	t.Run("IdleMemory", func(t *testing.T) { testIdleMemory(t, bin) })
}

// child is one run of the binary.
type child struct {
	t       *testing.T
	cmd     *exec.Cmd
	running chan struct{} // closed once it logs that it runs
	exited  chan struct{} // closed once it exited
	mu      sync.Mutex
	log     strings.Builder
}

func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{t: t, cmd: exec.Command(bin, args...), running: make(chan struct{}), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), "REGISTRYWATCH_PASSPHRASE=", "REGISTRYWATCH_CONFIG=")
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.exited)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if strings.Contains(sc.Text(), "registrywatch running") {
				once.Do(func() { close(c.running) })
			}
		}
		c.cmd.Wait()
	}()
	return c
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// wait waits for the child to exit and returns its exit code.
func (c *child) wait(within time.Duration) int {
	c.t.Helper()
	select {
	case <-c.exited:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		c.cmd.Process.Kill()
		<-c.exited
		c.t.Fatalf("the child did not exit within %s:\n%s", within, c.output())
		return -1
	}
}

func (c *child) waitRunning() {
	c.t.Helper()
	select {
	case <-c.running:
	case <-c.exited:
		c.t.Fatalf("the child exited:\n%s", c.output())
	case <-time.After(30 * time.Second):
		c.t.Fatalf("the child did not start:\n%s", c.output())
	}
}

// longSetup writes a key and a config polling the given sources every second.
func longSetup(t *testing.T, sources, extra string) (cfg string, pub crypto.PublicKey, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	cfg = testConfig(t, dir, sources, "log:\n  level: info\n"+extra)
	p, err := ledger.ReadPublicKey(filepath.Join(dir, "ledger.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, p, filepath.Join(dir, "ledger.db")
}

func verifyLedger(t *testing.T, path string, pub crypto.PublicKey) *ledger.Report {
	t.Helper()
	rep, err := ledger.Verify(context.Background(), path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledger does not verify: %v", rep.Problems)
	}
	return rep
}

func records(t *testing.T, path string, q ledger.Query) []ledger.Record {
	t.Helper()
	led, err := ledger.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	var out []ledger.Record
	if err := led.Find(context.Background(), q, func(r ledger.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// testSecondWriterAndSignals: a second run on the same ledger exits 2 naming
// the first; SIGTERM during a poll lets that poll's batch commit and exits 0;
// a second signal exits 2 at once.
func testSecondWriterAndSignals(t *testing.T, bin string) {
	reg := mlflowfake.New(mlflowfake.Options{})
	srv := reg.Start()
	defer srv.Close()
	if err := reg.CreateModel("m", mlflowfake.ModelSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateVersion("m", mlflowfake.VersionSpec{}); err != nil {
		t.Fatal(err)
	}
	cfg, pub, db := longSetup(t, mlflowSource("mlflow-prod", srv.URL), "")

	first := startChild(t, bin, "run", "-config", cfg)
	first.waitRunning()
	second := startChild(t, bin, "run", "-config", cfg)
	if code := second.wait(30 * time.Second); code != exitUsage ||
		!strings.Contains(second.output(), fmt.Sprintf("ledger is locked by another writer: pid %d on host", first.cmd.Process.Pid)) {
		t.Fatalf("second run: exit %d\n%s", code, second.output())
	}

	// Hold the next version search for a second, change the registry while
	// it is held, and send SIGTERM: the poll in flight finishes and commits.
	reg.Inject(mlflowfake.Fault{Path: "model-versions/search", Delay: time.Second, Times: 1})
	waitFor(t, func() bool { return reg.Delaying() > 0 })
	if err := reg.SetVersionTag("m", "1", "owner", "alice"); err != nil {
		t.Fatal(err)
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	if code := first.wait(20 * time.Second); code != exitOK || !strings.Contains(first.output(), "registrywatch stopped") {
		t.Fatalf("SIGTERM: exit %d\n%s", code, first.output())
	}
	if got := records(t, db, ledger.Query{Kind: "tag.set"}); len(got) != 1 {
		t.Fatalf("the batch in flight at SIGTERM was not committed (%d tag.set)\n%s", len(got), first.output())
	}
	verifyLedger(t, db, pub)

	// A second signal does not wait for the poll in flight.
	third := startChild(t, bin, "run", "-config", cfg)
	third.waitRunning()
	reg.Inject(mlflowfake.Fault{Path: "model-versions/search", Delay: time.Minute, Times: 1})
	waitFor(t, func() bool { return reg.Delaying() > 0 })
	third.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	third.cmd.Process.Signal(syscall.SIGTERM)
	if code := third.wait(5 * time.Second); code != exitUsage || !strings.Contains(third.output(), "second terminated: exiting now") {
		t.Fatalf("second signal: exit %d\n%s", code, third.output())
	}
	verifyLedger(t, db, pub)
}

// waitFor polls cond in real time (for child-process tests only).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectedChange is a change the test made to the registry.
type expectedChange struct {
	kind, version, key, value string
}

func (e expectedChange) matches(r ledger.Record) bool {
	if r.Kind != e.kind || r.Model != "m" || r.Version != e.version {
		return false
	}
	return e.key == "" || fmt.Sprint(r.Payload[e.key]) == e.value
}

var ledgerSeq = regexp.MustCompile(`Ledger seq (\d+)`)

// testKillLoop kills the daemon with SIGKILL at 50 random moments while the
// registry keeps changing (each state lasts at least two poll intervals):
// after each kill the ledger verifies; in the end every change is recorded
// exactly once and every alert delivered, twice only when a kill fell
// between its delivery and its record.
func testKillLoop(t *testing.T, bin string) {
	const kills = 50
	reg := mlflowfake.New(mlflowfake.Options{})
	srv := reg.Start()
	defer srv.Close()
	type delivery struct {
		seq int64
		at  time.Time
	}
	var mu sync.Mutex
	var deliveries []delivery
	slack := slackfake.New(slackfake.Options{OnMessage: func(m slackfake.Message) {
		if sm := ledgerSeq.FindSubmatch(m.Body); sm != nil {
			n, _ := strconv.ParseInt(string(sm[1]), 10, 64)
			mu.Lock()
			deliveries = append(deliveries, delivery{n, time.Now()})
			mu.Unlock()
		}
	}})
	defer slack.Close()
	must := func(err error) {
		if err != nil {
			t.Error(err)
		}
	}
	must(reg.CreateModel("m", mlflowfake.ModelSpec{}))
	_, err := reg.CreateVersion("m", mlflowfake.VersionSpec{Tags: []mlflowfake.Tag{{Key: "approved_by", Value: "carol"}}})
	must(err)
	must(reg.TransitionStage("m", "1", mlflowfake.StageProduction, false))
	cfg, pub, db := longSetup(t, mlflowSource("mlflow-prod", srv.URL), "alerts:\n  slack:\n    webhook_url: "+slack.WebhookURL()+"\n")

	// The registry changes every 2.2 s (each state outlives two 1 s ticks).
	var expected []expectedChange
	var promoted []string
	stop := make(chan struct{})
	generated := make(chan struct{})
	go func() {
		defer close(generated)
		latest, serving := "1", "1"
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2200 * time.Millisecond):
			}
			mu.Lock()
			switch i % 3 {
			case 0:
				v, err := reg.CreateVersion("m", mlflowfake.VersionSpec{})
				must(err)
				latest = v
				expected = append(expected, expectedChange{kind: "version.created", version: v})
			case 1:
				value := fmt.Sprintf("b%d", i)
				must(reg.SetVersionTag("m", latest, "build", value))
				expected = append(expected, expectedChange{"tag.set", latest, "value", value})
			case 2:
				must(reg.TransitionStage("m", latest, mlflowfake.StageProduction, true))
				expected = append(expected, expectedChange{"stage.changed", latest, "to", mlflowfake.StageProduction},
					expectedChange{"stage.changed", serving, "to", mlflowfake.StageArchived})
				promoted = append(promoted, latest)
				serving = latest
			}
			mu.Unlock()
		}
	}()

	type life struct{ start, killed time.Time }
	var lives []life
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for i := range kills {
		l := life{start: time.Now()}
		c := startChild(t, bin, "run", "-config", cfg)
		time.Sleep(100*time.Millisecond + time.Duration(rng.Int64N(int64(2400*time.Millisecond))))
		c.cmd.Process.Kill()
		c.wait(10 * time.Second)
		l.killed = time.Now()
		lives = append(lives, l)
		if _, err := os.Stat(db); err == nil {
			rep, err := ledger.Verify(context.Background(), db, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}})
			if err != nil || !rep.OK() {
				t.Fatalf("after kill %d the ledger does not verify: %v %v\n%s", i+1, err, rep, c.output())
			}
		}
	}
	close(stop)
	<-generated

	// A last run records what is left and delivers every alert, then stops
	// on SIGTERM.
	final := startChild(t, bin, "run", "-config", cfg)
	final.waitRunning()
	mu.Lock()
	want := append([]expectedChange(nil), expected...)
	mu.Unlock()
	waitFor(t, func() bool {
		led, err := ledger.OpenReadOnly(db)
		if err != nil {
			return false
		}
		defer led.Close()
		items, err := led.Outbox(context.Background())
		if err != nil || len(items) > 0 {
			return false
		}
		recs := records(t, db, ledger.Query{Model: "m"})
		for _, e := range want {
			found := false
			for _, r := range recs {
				found = found || e.matches(r)
			}
			if !found {
				return false
			}
		}
		return true
	})
	final.cmd.Process.Signal(syscall.SIGTERM)
	if code := final.wait(20 * time.Second); code != exitOK {
		t.Fatalf("final SIGTERM: exit %d\n%s", code, final.output())
	}
	verifyLedger(t, db, pub)

	// Every change exactly once, and nothing else.
	recs := records(t, db, ledger.Query{Model: "m", Kinds: []string{"version.created", "tag.set", "stage.changed", "version.updated", "version.deleted", "alias.set", "tag.removed"}})
	for _, e := range want {
		n := 0
		for _, r := range recs {
			if e.matches(r) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%+v recorded %d times", e, n)
		}
	}
	if len(recs) != len(want) {
		t.Errorf("%d change entries for %d changes", len(recs), len(want))
	}

	// Every promotion judged once and delivered; duplicates only across a kill.
	findings := records(t, db, ledger.Query{Kind: ledger.KindPromotion, Model: "m"})
	if len(findings) != len(promoted) {
		t.Errorf("%d promotion findings for %d promotions", len(findings), len(promoted))
	}
	delivered := map[string][]ledger.Record{}
	for _, r := range records(t, db, ledger.Query{Kind: "alert.delivered"}) {
		id, _ := r.Payload["finding_id"].(string)
		delivered[id] = append(delivered[id], r)
	}
	mu.Lock()
	bySeq := map[int64][]time.Time{}
	for _, d := range deliveries {
		bySeq[d.seq] = append(bySeq[d.seq], d.at)
	}
	mu.Unlock()
	duplicates := 0
	for _, f := range findings {
		id, _ := f.Payload["finding_id"].(string)
		if len(delivered[id]) != 1 {
			t.Errorf("finding %d: %d alert.delivered entries", f.Seq, len(delivered[id]))
			continue
		}
		times := bySeq[f.Seq]
		if len(times) == 0 {
			t.Errorf("finding %d never reached Slack", f.Seq)
			continue
		}
		recorded := delivered[id][0].ObservedAt
		for _, at := range times[:len(times)-1] {
			// An earlier delivery must have been cut off by a kill before
			// its record: the run it happened in ended before the record.
			ok := false
			for _, l := range lives {
				if !at.Before(l.start) && !at.After(l.killed) && recorded.After(l.killed) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("finding %d delivered at %s again without a kill between delivery and record (recorded %s)", f.Seq, at, recorded)
			}
			duplicates++
		}
	}
	t.Logf("%d kills, %d changes recorded once each, %d alerts delivered, %d duplicate deliveries (kill between delivery and record)",
		kills, len(want), len(findings), duplicates)
}

// testIdleMemory measures the resident memory of a running daemon with
// three sources (two MLflow registries and a Databricks workspace), once
// its polls found nothing new for a while.
func testIdleMemory(t *testing.T, bin string) {
	var srcs strings.Builder
	for i, opts := range []mlflowfake.Options{{}, {MLflow3: true}, {Databricks: true, Tokens: map[string]string{"dapi-fake": "u@example.com"}}} {
		reg := mlflowfake.New(opts)
		for m := range 20 {
			name := fmt.Sprintf("model-%02d", m)
			if err := reg.CreateModel(name, mlflowfake.ModelSpec{}); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				if _, err := reg.CreateVersion(name, mlflowfake.VersionSpec{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := reg.TransitionStage(name, "5", mlflowfake.StageProduction, false); err != nil {
				t.Fatal(err)
			}
		}
		srv := reg.Start()
		defer srv.Close()
		typ, auth := "mlflow", ""
		if opts.Databricks {
			typ, auth = "databricks", "    token: dapi-fake\n"
		}
		fmt.Fprintf(&srcs, "  - name: %s-%d\n    type: %s\n    url: %s\n%s", typ, i, typ, srv.URL, auth)
	}
	cfg, _, _ := longSetup(t, srcs.String(), "")
	evictPageCache(t, bin)
	c := startChild(t, bin, "run", "-config", cfg)
	c.waitRunning()
	time.Sleep(8 * time.Second) // several polls of each source, nothing changing
	rss, hwm := procStatus(t, c.cmd.Process.Pid, "VmRSS"), procStatus(t, c.cmd.Process.Pid, "VmHWM")
	anon, file := procStatus(t, c.cmd.Process.Pid, "RssAnon"), procStatus(t, c.cmd.Process.Pid, "RssFile")
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(20 * time.Second); code != exitOK {
		t.Fatalf("exit %d\n%s", code, c.output())
	}
	if !strings.Contains(c.output(), "source=databricks-2 models=20 versions=100") {
		t.Fatalf("the sources were not all polled:\n%s", c.output())
	}
	t.Logf("idle run with 3 sources: VmRSS %.1f MB (anonymous %.1f MB, the binary's pages %.1f MB), VmHWM %.1f MB",
		rss, anon, file, hwm)
	if rss >= rssTarget {
		t.Logf("above the %d MB target of DESIGN.md section 9", rssTarget)
	}
	if rss >= rssGuard {
		t.Errorf("resident memory %.1f MB: regression past %d MB", rss, rssGuard)
	}
}

// The resident memory target of an idle run (DESIGN.md section 9), and the
// bound past which the test fails: the binary's own pages (the AWS SDK's
// SageMaker schemas and the KMS providers) leave little room under the target.
const (
	rssTarget = 40
	rssGuard  = 48
)

// evictPageCache drops a file from the page cache, so a process mapping it
// reads it from disk as a fresh container would: a file just written sits in
// the page cache in large folios that a mapping takes whole, touched or not.
func evictPageCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// procStatus returns a kB field of /proc/PID/status in MB.
func procStatus(t *testing.T, pid int, field string) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
