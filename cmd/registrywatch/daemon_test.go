package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// testConfig writes a key and a config file into dir and returns the
// config's path. sources is the YAML list of sources; extra is appended.
func testConfig(t *testing.T, dir, sources, extra string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "ledger.key")); err != nil {
		priv, pub, _, err := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ledger.key"), priv, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ledger.pub"), pub, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	y := fmt.Sprintf("ledger:\n  path: %s\n  signer: %s\nhttp:\n  listen: 127.0.0.1:0\n%s\nsources:\n%s",
		filepath.Join(dir, "ledger.db"), filepath.Join(dir, "ledger.key"), extra, sources)
	path := filepath.Join(dir, "registrywatch.yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mlflowSource(name, url string) string {
	return fmt.Sprintf("  - name: %s\n    type: mlflow\n    url: %s\n    schedule: \"@every 1s\"\n", name, url)
}

// TestRunLockedLedger: run on a ledger another process holds exits 2 naming
// the holder.
func TestRunLockedLedger(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, mlflowSource("m", "http://127.0.0.1:1"), "")
	s, err := ledger.LoadSigner(t.Context(), filepath.Join(dir, "ledger.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	code, _, stderr := runCmd(t, "run", "-config", cfg)
	want := fmt.Sprintf("ledger is locked by another writer: pid %d on host", os.Getpid())
	if code != exitUsage || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
}

// TestRunReadOnlyDir: run with a ledger directory it cannot write exits 2
// with a clear message (as an unprivileged user: root writes anywhere).
func TestRunReadOnlyDir(t *testing.T) {
	bin, err := exec.LookPath("registrywatch") // the test binary, set up by TestMain
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // let an unprivileged child reach the files
	}
	exe := filepath.Join(dir, "registrywatch")
	copyFile(t, bin, exe, 0o755)
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, mlflowSource("m", "http://127.0.0.1:1"), "")
	os.Chmod(filepath.Join(dir, "ledger.key"), 0o644)
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), filepath.Join(dir, "ledger.db"), filepath.Join(ro, "ledger.db"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "run", "-config", cfg)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), "ledger directory "+ro+" is not writable") {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, perm); err != nil {
		t.Fatal(err)
	}
}

// TestPollCommand: poll prints a summary per source, delivers the alerts and
// exits 1 when a source fails, which then appends nothing.
func TestPollCommand(t *testing.T) {
	reg := mlflowfake.New(mlflowfake.Options{})
	srv := reg.Start()
	defer srv.Close()
	slack := slackfake.New(slackfake.Options{})
	defer slack.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.CreateModel("fraud", mlflowfake.ModelSpec{}))
	_, err := reg.CreateVersion("fraud", mlflowfake.VersionSpec{Tags: []mlflowfake.Tag{{Key: "approved_by", Value: "carol"}}})
	must(err)
	must(reg.TransitionStage("fraud", "1", mlflowfake.StageProduction, false))
	_, err = reg.CreateVersion("fraud", mlflowfake.VersionSpec{})
	must(err)

	dir := t.TempDir()
	slackYAML := "alerts:\n  slack:\n    webhook_url: " + slack.WebhookURL() + "\n"
	cfg := testConfig(t, dir, mlflowSource("mlflow-prod", srv.URL), slackYAML)
	code, stdout, stderr := runCmd(t, "poll", "-config", cfg)
	if code != exitOK || !strings.Contains(stdout, "mlflow-prod  ok        1 models, 2 versions") ||
		!strings.Contains(stdout, "changes   baseline 3") || !strings.Contains(stdout, "findings  production.changed 1") || !strings.Contains(stdout, "alerts: 0 delivered, 0 failed, 0 pending") {
		t.Fatalf("first poll: exit %d\n%s\n%s", code, stdout, stderr)
	}

	must(reg.TransitionStage("fraud", "2", mlflowfake.StageProduction, true))
	code, stdout, stderr = runCmd(t, "poll", "-config", cfg)
	if code != exitOK || !strings.Contains(stdout, "changes   stage.changed 2") ||
		!strings.Contains(stdout, "findings  production.changed 1, promotion 1") || !strings.Contains(stdout, "alerts: 1 delivered, 0 failed, 0 pending") {
		t.Fatalf("promotion poll: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if msgs := slack.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "fraud@2") {
		t.Fatalf("Slack got %+v", msgs)
	}

	// A second source that refuses the credentials fails the command.
	broken := mlflowfake.New(mlflowfake.Options{Tokens: map[string]string{"right": "u"}})
	bsrv := broken.Start()
	defer bsrv.Close()
	cfg = testConfig(t, dir, mlflowSource("mlflow-prod", srv.URL)+mlflowSource("mlflow-dev", bsrv.URL), slackYAML)
	before := ledgerSize(t, filepath.Join(dir, "ledger.db"))
	must(reg.SetVersionTag("fraud", "2", "owner", "alice"))
	code, stdout, stderr = runCmd(t, "poll", "-config", cfg)
	if code != exitCheck || !strings.Contains(stdout, "mlflow-dev   FAILED") || !strings.Contains(stderr, "1 of 2 sources failed to poll") ||
		!strings.Contains(stdout, "changes   tag.set 1") {
		t.Fatalf("poll with a failing source: exit %d\n%s\n%s", code, stdout, stderr)
	}
	led, err := ledger.OpenReadOnly(filepath.Join(dir, "ledger.db"))
	must(err)
	defer led.Close()
	err = led.Find(t.Context(), ledger.Query{Source: "mlflow-dev", FromSeq: before}, func(r ledger.Record) error {
		return fmt.Errorf("the failed source appended %s", r.Kind)
	})
	must(err)
}

func ledgerSize(t *testing.T, path string) int64 {
	t.Helper()
	led, err := ledger.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	n, err := led.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHealthcheck: exit 0 on 200 from /healthz, 1 otherwise; the address
// comes from -url or the config's http.listen (a wildcard reached on the
// loopback).
func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if code, stdout, _ := runCmd(t, "healthcheck", "-url", srv.URL+"/healthz"); code != exitOK || !strings.HasPrefix(stdout, "healthy") {
		t.Fatalf("healthy: exit %d %s", code, stdout)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dir := t.TempDir()
	cfg := testConfig(t, dir, mlflowSource("m", "http://127.0.0.1:1"), "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "127.0.0.1:0", "0.0.0.0:"+port, 1)), 0o644)
	if code, stdout, stderr := runCmd(t, "healthcheck", "-config", cfg); code != exitOK || !strings.Contains(stdout, "http://127.0.0.1:"+port+"/healthz") {
		t.Fatalf("from the config: exit %d %s %s", code, stdout, stderr)
	}
	status = http.StatusServiceUnavailable
	if code, _, stderr := runCmd(t, "healthcheck", "-config", cfg); code != exitCheck || !strings.Contains(stderr, "503") {
		t.Fatalf("unhealthy: exit %d %s", code, stderr)
	}
}
