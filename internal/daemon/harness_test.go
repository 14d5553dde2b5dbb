package daemon

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// t0 is the fake time at which each harness starts: a whole minute, so
// "@every 1m" ticks fall on whole minutes.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// watchdog bounds every wait of a test on the daemon: reaching it means the
// daemon hangs, not that it is slow.
const watchdog = 30 * time.Second

// harness runs the daemon in-process on a fake clock against a fake MLflow
// registry and a fake Slack.
type harness struct {
	t      *testing.T
	clk    *clock.Fake
	reg    *mlflowfake.Server
	regSrv *httptest.Server
	slack  *slackfake.Server
	dir    string
	cfg    *config.Config
	pub    []byte // the signing key's public key (PEM)
	signer signature.Signer
	// wrap, when set, wraps each source the factory builds.
	wrap func(sources.Source) sources.Source

	d      *Daemon
	cancel context.CancelFunc
	done   chan error
}

// harnessConfig is the config of a harness; %s are replaced by the ledger
// directory, the registry URL and the Slack webhook URL.
const harnessConfig = `
ledger:
  path: {dir}/ledger.db
  signer: {dir}/ledger.key
  publish_schedule: "@daily"
  publish_path: {dir}/published
log:
  level: debug
alerts:
  coverage_gap: 15m
  poll_deadline: 30s
  slack:
    webhook_url: {slack}
sources:
  - name: mlflow-prod
    type: mlflow
    url: {registry}
    schedule: "@every 1m"
    timeout: 30s
`

func newHarness(t *testing.T, edit func(yaml string) string) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(t0), dir: t.TempDir()}
	h.reg = mlflowfake.New(mlflowfake.Options{Clock: h.clk})
	h.regSrv = h.reg.Start()
	t.Cleanup(h.regSrv.Close)
	h.slack = slackfake.New(slackfake.Options{Clock: h.clk})
	t.Cleanup(h.slack.Close)
	priv, pub, _, err := ledger.GenerateKey(ledger.KeyTypeEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.pub = pub
	if err := os.WriteFile(filepath.Join(h.dir, "ledger.key"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("{dir}", h.dir, "{registry}", h.regSrv.URL, "{slack}", h.slack.WebhookURL()).Replace(harnessConfig)
	if edit != nil {
		y = edit(y)
	}
	if h.cfg, err = config.Parse([]byte(y), filepath.Join(h.dir, "registrywatch.yaml"), func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.cancel != nil {
			h.stop()
		}
	})
	return h
}

// retryClock is the clock handed to sources in tests: the registry client's
// retry backoffs (shorter than its request timeout) take no fake time, so a
// failing poll ends without the test moving the clock; request timeouts still
// wait on the fake clock.
type retryClock struct {
	*clock.Fake
	timeout time.Duration
}

func (c retryClock) NewTimer(d time.Duration) clock.Timer {
	if d < c.timeout {
		d = 0
	}
	return c.Fake.NewTimer(d)
}

func (h *harness) options() Options {
	return Options{
		Clock:  h.clk,
		Logger: slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Signer: h.signer,
		SourceFactory: func(ctx context.Context, sc config.Source, so SourceOptions) (sources.Source, error) {
			c, err := mlflow.New(sc, mlflow.Options{Clock: retryClock{h.clk, sc.Timeout.D()}, Logger: so.Logger})
			if err != nil || h.wrap == nil {
				return c, err
			}
			return h.wrap(c), nil
		},
	}
}

// start runs the daemon and waits until it is running and idle.
func (h *harness) start() {
	h.t.Helper()
	if err := h.tryStart(); err != nil {
		h.t.Fatalf("daemon did not start: %v", err)
	}
	h.settle()
}

func (h *harness) tryStart() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Daemon, 1)
	done := make(chan error, 1)
	opts := h.options()
	opts.HTTPListener = lis
	opts.OnStart = func(d *Daemon) { started <- d }
	go func() { done <- Run(ctx, h.cfg, opts) }()
	select {
	case d := <-started:
		h.d, h.cancel, h.done = d, cancel, done
		return nil
	case err := <-done:
		cancel()
		lis.Close()
		return err
	}
}

// stop shuts the daemon down and checks it returned nil.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Fatalf("Run returned %v", err)
		}
	case <-time.After(watchdog):
		h.t.Fatal("daemon did not stop")
	}
}

// settle waits until the daemon is idle.
func (h *harness) settle() {
	h.t.Helper()
	select {
	case <-h.d.Idle():
	case <-time.After(watchdog):
		h.t.Fatal("daemon never became idle")
	}
}

// advanceTo moves the fake clock to t through every deadline on the way,
// letting the daemon finish its work at each.
func (h *harness) advanceTo(t time.Time) {
	h.t.Helper()
	for {
		h.settle()
		next, ok := h.clk.NextDeadline()
		if !ok || next.After(t) {
			h.clk.Set(t)
			h.settle()
			return
		}
		h.clk.Set(next)
	}
}

func (h *harness) advance(d time.Duration) { h.advanceTo(h.clk.Now().Add(d)) }

// get fetches a daemon endpoint.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.d.Addr().String() + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// entries returns the ledger's entries from seq from (read through a
// read-only handle, as an auditor would).
func (h *harness) entries(from int64) []ledger.Record {
	h.t.Helper()
	led, err := ledger.OpenReadOnly(h.cfg.Ledger.Path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer led.Close()
	var out []ledger.Record
	if err := led.Find(context.Background(), ledger.Query{FromSeq: from}, func(r ledger.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) size() int64 {
	h.t.Helper()
	led, err := ledger.OpenReadOnly(h.cfg.Ledger.Path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer led.Close()
	n, err := led.Size(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// ofKind filters records by kind.
func ofKind(recs []ledger.Record, kinds ...string) []ledger.Record {
	var out []ledger.Record
	for _, r := range recs {
		for _, k := range kinds {
			if r.Kind == k {
				out = append(out, r)
			}
		}
	}
	return out
}

func kindList(recs []ledger.Record) string {
	var ks []string
	for _, r := range recs {
		ks = append(ks, r.Kind)
	}
	return strings.Join(ks, ",")
}

// verify checks the whole ledger against the key and kept checkpoints.
func (h *harness) verify(checkpoints ...[]byte) *ledger.Report {
	h.t.Helper()
	pub, err := ledger.ParsePublicKeyPEM(h.pub)
	if err != nil {
		h.t.Fatal(err)
	}
	rep, err := ledger.Verify(context.Background(), h.cfg.Ledger.Path, ledger.VerifyOptions{Keys: []crypto.PublicKey{pub}, Checkpoints: checkpoints})
	if err != nil {
		h.t.Fatal(err)
	}
	if !rep.OK() {
		h.t.Fatalf("ledger does not verify: %v", rep.Problems)
	}
	return rep
}

// messages returns the Slack messages whose text contains s.
func (h *harness) messages(s string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range h.slack.Messages() {
		if strings.Contains(m.Text, s) {
			out = append(out, m)
		}
	}
	return out
}

func ts(t time.Time) string { return ledger.FormatTime(t) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func describe(recs []ledger.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "%d %s %s@%s %v\n", r.Seq, r.Kind, r.Model, r.Version, r.Payload)
	}
	return b.String()
}
