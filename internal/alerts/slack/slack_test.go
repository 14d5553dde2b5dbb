package slack_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/alerts/slack"
	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

var t0 = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

const runbook = "https://wiki.example.com/model-rollback"

// env is a Sink in bot or webhook mode against a fake Slack.
type env struct {
	fake *slackfake.Server
	sink *slack.Sink
	logs *syncBuffer
}

func newEnv(t *testing.T, webhook bool, edit func(*config.Slack)) *env {
	t.Helper()
	e := &env{fake: slackfake.New(slackfake.Options{Clock: clock.NewFake(t0)}), logs: &syncBuffer{}}
	t.Cleanup(e.fake.Close)
	cfg := config.Slack{
		Channel:    "#ml-audit",
		Channels:   map[string]string{ledger.KindRollbackOverdue: "#oncall"},
		RunbookURL: runbook,
	}
	if webhook {
		cfg.WebhookURL = config.Secret(e.fake.WebhookURL())
	} else {
		cfg.Token = config.Secret(e.fake.Token())
	}
	if edit != nil {
		edit(&cfg)
	}
	var err error
	e.sink, err = slack.New(cfg, slack.Options{
		APIURL: e.fake.APIURL(),
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) only(t *testing.T) slackfake.Message {
	t.Helper()
	msgs := e.fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received, want 1", len(msgs))
	}
	return msgs[0]
}

// alert returns a promotion without approval of fraud-detector@3 at seq 42.
func alert(edit func(r *ledger.Record)) alerts.Alert {
	rec := ledger.Record{Seq: 42, Entry: ledger.Entry{
		Kind: ledger.KindPromotion, Source: "mlflow-prod", SourceType: "mlflow",
		Model: "fraud-detector", ModelID: "fraud-detector@2025-01-01T00:00:00.000Z", Version: "3",
		Actor: "registrywatch", ObservedAt: t0, OccurredFrom: t0.Add(-5 * time.Minute), OccurredTo: t0,
		Payload: map[string]any{
			"finding_id": "9f2c4e0b7a1d3c5e", "triggering_seq": int64(40), "severity": "danger",
			"verdict": "missing", "reason": "no_evidence", "order": "", "supersedes": "",
			"promoter": "alice", "approver": "", "approved_at": map[string]any{"from": "", "to": ""},
			"evidence": []any{}, "change_type": "standard", "serving_before": "2", "serving_after": "3",
			"registry_url": "http://mlflow:5000/#/models/fraud-detector/versions/3",
		},
	}}
	if edit != nil {
		edit(&rec)
	}
	var leaf [32]byte
	for i := range leaf {
		leaf[i] = byte(i)
	}
	return alerts.Alert{
		FindingID: alerts.PayloadString(rec.Payload, "finding_id"), Seq: rec.Seq, LeafHash: leaf,
		Record: rec, Severity: alerts.PayloadString(rec.Payload, "severity"),
	}
}

func TestMessageContent(t *testing.T) {
	e := newEnv(t, false, nil)
	d, err := e.sink.Send(t.Context(), alert(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := e.only(t)
	if d.Channel != "#ml-audit" || d.TS != m.TS || d.TS == "" {
		t.Errorf("delivery %+v, want channel #ml-audit ts %s", d, m.TS)
	}
	if want := "DANGER promotion without approval: fraud-detector@3 (mlflow-prod)"; m.Text != want {
		t.Errorf("text %q, want %q", m.Text, want)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("%d attachments, want 1", len(m.Attachments))
	}
	a := m.Attachments[0]
	if a.Color != slack.ColorDanger || a.Fallback != m.Text {
		t.Errorf("attachment colour %q fallback %q", a.Color, a.Fallback)
	}
	var types []string
	for _, b := range a.Blocks {
		types = append(types, b.Type)
	}
	if diff := cmp.Diff([]string{"header", "section", "context", "actions"}, types); diff != "" {
		t.Fatalf("blocks (-want +got):\n%s", diff)
	}
	if h := a.Blocks[0].Text; h.Type != "plain_text" || h.Text != "DANGER · promotion without approval" {
		t.Errorf("header %+v", h)
	}
	var fields []string
	for _, f := range a.Blocks[1].Fields {
		if f.Type != "mrkdwn" || !f.Verbatim {
			t.Errorf("field %q is %s verbatim=%v, want verbatim mrkdwn", f.Text, f.Type, f.Verbatim)
		}
		fields = append(fields, f.Text)
	}
	wantFields := []string{
		"*Source*\nmlflow-prod",
		"*Model*\nfraud-detector@3",
		"*Serving*\n2 → 3",
		"*Promoter*\nalice",
		"*Verdict*\nmissing (no_evidence)",
		"*When (UTC)*\n2025-03-14 09:25:00 – 09:30:00",
	}
	if diff := cmp.Diff(wantFields, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	var context []string
	for _, el := range a.Blocks[2].Elements {
		context = append(context, el.Text.Text)
	}
	wantContext := []string{
		"Ledger seq 42 · leaf hash `000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f`",
		"Control CC8.1",
	}
	if diff := cmp.Diff(wantContext, context); diff != "" {
		t.Errorf("context (-want +got):\n%s", diff)
	}
	var buttons []string
	for _, el := range a.Blocks[3].Elements {
		buttons = append(buttons, el.Type+" "+el.Text.Text+" "+el.URL)
	}
	wantButtons := []string{
		"button Open in registry http://mlflow:5000/#/models/fraud-detector/versions/3",
		"button Runbook " + runbook,
	}
	if diff := cmp.Diff(wantButtons, buttons); diff != "" {
		t.Errorf("buttons (-want +got):\n%s", diff)
	}
	var body map[string]any
	if err := json.Unmarshal(m.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["unfurl_links"] != "false" || body["unfurl_media"] != "false" {
		t.Errorf("unfurling not disabled: %v %v", body["unfurl_links"], body["unfurl_media"])
	}
}

func TestMessageKinds(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(r *ledger.Record)
		severity  string
		channel   string
		text      string
		color     string
		fields    []string // must be among the fields
		control   string
		noButtons bool
	}{
		{
			name: "rollback overrun",
			edit: func(r *ledger.Record) {
				r.Kind = ledger.KindRollback
				r.Payload["verdict"], r.Payload["reason"], r.Payload["result"] = "approved", "", "overrun"
				r.Payload["duration_ms"] = []any{int64(2_400_000), int64(2_460_000)}
				r.Payload["objective_ms"] = int64(1_800_000)
				r.Payload["start"] = map[string]any{"from": "2025-03-14T08:50:00.000Z", "to": "2025-03-14T08:51:00.000Z"}
				r.Payload["serving_before"], r.Payload["serving_after"] = "4", "3"
			},
			severity: "danger", channel: "#ml-audit", color: slack.ColorDanger,
			text:    "DANGER rollback over its time objective: fraud-detector@3 (mlflow-prod)",
			fields:  []string{"*Serving*\n4 → 3", "*Duration*\n40m0s – 41m0s", "*Objective*\n30m0s", "*Result*\noverrun", "*Started*\n2025-03-14T08:50:00.000Z – 2025-03-14T08:51:00.000Z"},
			control: "Control CC8.1, CC7.3",
		},
		{
			name: "rollback overdue goes to its channel",
			edit: func(r *ledger.Record) {
				r.Kind, r.Version = ledger.KindRollbackOverdue, ""
				r.Payload = map[string]any{"finding_id": "ab", "objective_ms": int64(1_800_000)}
			},
			severity: "danger", channel: "#oncall", color: slack.ColorDanger,
			text:    "DANGER rollback overdue: fraud-detector (mlflow-prod)",
			fields:  []string{"*Model*\nfraud-detector", "*Objective*\n30m0s"},
			control: "Control CC7.3", noButtons: false,
		},
		{
			name: "coverage late",
			edit: func(r *ledger.Record) {
				r.Kind, r.Model, r.ModelID, r.Version = ledger.KindCoverageLate, "", "", ""
				r.Payload = map[string]any{"finding_id": "cd", "from": "2025-03-14T09:00:00.000Z", "missed_ticks": int64(12), "cause": "source_error"}
			},
			severity: "danger", channel: "#ml-audit", color: slack.ColorDanger,
			text:    "DANGER registry not watched (coverage gap): mlflow-prod",
			fields:  []string{"*Gap since*\n2025-03-14T09:00:00.000Z", "*Missed ticks*\n12", "*Cause*\nsource_error"},
			control: "Control CC7.2",
		},
		{
			name: "approved in the same poll",
			edit: func(r *ledger.Record) {
				r.Payload["verdict"], r.Payload["reason"], r.Payload["order"], r.Payload["approver"] = "approved", "", "same_poll", "bob"
			},
			severity: "info", channel: "#ml-audit", color: slack.ColorInfo,
			text:    "INFO promotion approved in the same poll: fraud-detector@3 (mlflow-prod)",
			fields:  []string{"*Approver*\nbob", "*Verdict*\napproved (same_poll)"},
			control: "Control CC8.1",
		},
		{
			name: "self-approval names CC6.1",
			edit: func(r *ledger.Record) {
				r.Payload["verdict"], r.Payload["reason"], r.Payload["approver"] = "self_approved", "", "alice"
				r.Payload["change_type"] = "emergency"
				r.Payload["registry_url"] = ""
			},
			severity: "danger", channel: "#ml-audit", color: slack.ColorDanger,
			text:    "DANGER self-approved promotion: fraud-detector@3 (mlflow-prod)",
			fields:  []string{"*Approver*\nalice", "*Change type*\nemergency"},
			control: "Control CC8.1, CC6.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, false, nil)
			a := alert(tt.edit)
			a.Severity = tt.severity
			if _, err := e.sink.Send(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			m := e.only(t)
			if m.Text != tt.text || m.Channel != tt.channel || m.Attachments[0].Color != tt.color {
				t.Errorf("text %q channel %q colour %q; want %q %q %q", m.Text, m.Channel, m.Attachments[0].Color, tt.text, tt.channel, tt.color)
			}
			out := slackfake.Format(m)
			for _, f := range tt.fields {
				label, value, _ := strings.Cut(f, "\n")
				if want := strings.Trim(label, "*") + ": " + value; !strings.Contains(out, want) {
					t.Errorf("missing field %q in\n%s", want, out)
				}
			}
			if !strings.Contains(out, tt.control) {
				t.Errorf("missing %q in\n%s", tt.control, out)
			}
		})
	}
}

// hostile is registry-controlled text trying to ping everyone and plant links.
const hostile = "<!channel> <https://evil.example|click> evil.com <@U123> @here & <#C42>"

func TestRegistryTextIsInert(t *testing.T) {
	for _, webhook := range []bool{false, true} {
		t.Run(mode(webhook), func(t *testing.T) {
			e := newEnv(t, webhook, nil)
			a := alert(func(r *ledger.Record) {
				r.Model = hostile
				r.Source = "src <!here>"
				r.Payload["promoter"] = "<@U999>"
				r.Payload["registry_url"] = "javascript:alert(1)"
			})
			if _, err := e.sink.Send(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			m := e.only(t)
			// The JSON as received, decoded: every string Slack would render.
			var body any
			if err := json.Unmarshal(m.Body, &body); err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(allStrings(body), "\n") + string(m.Body)
			for _, bad := range []string{"<!channel>", "<!here>", "<https://", "<@U123>", "<@U999>", "<#C42>", "javascript:"} {
				if strings.Contains(joined, bad) {
					t.Errorf("received message contains %q", bad)
				}
			}
			wantModel := "*Model*\n&lt;!channel&gt; &lt;https://evil.example|click&gt; evil.com &lt;@U123&gt; @here &amp; &lt;#C42&gt;@3"
			found := false
			for _, f := range m.Attachments[0].Blocks[1].Fields {
				if strings.HasPrefix(f.Text, "*Model*") {
					found = true
					if f.Text != wantModel {
						t.Errorf("model field %q, want %q", f.Text, wantModel)
					}
					if !(f.Type == "plain_text" || f.Type == "mrkdwn" && f.Verbatim) {
						t.Errorf("model field is %s verbatim=%v", f.Type, f.Verbatim)
					}
				}
			}
			if !found {
				t.Error("no Model field")
			}
			if !strings.Contains(m.Text, "&lt;!channel&gt;") {
				t.Errorf("top-level text %q not escaped", m.Text)
			}
			for _, b := range m.Attachments[0].Blocks {
				for _, el := range b.Elements {
					if el.Type == "button" && el.URL != runbook {
						t.Errorf("button to %q: only http(s) registry URLs may become buttons", el.URL)
					}
				}
			}
		})
	}
}

func TestFollowUpInThread(t *testing.T) {
	e := newEnv(t, false, nil)
	a := alert(func(r *ledger.Record) {
		r.Payload["verdict"], r.Payload["reason"], r.Payload["supersedes"] = "late", "", int64(40)
	})
	a.Severity = alerts.SeverityWarning
	a.FollowUp = &alerts.FollowUp{Reason: alerts.FollowUpSupersedes, Seq: 40, FindingID: "1234567890abcdef",
		Kind: ledger.KindPromotion, ThreadChannel: "C0ORIGINAL", ThreadTS: "1741944600.000001"}
	d, err := e.sink.Send(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	m := e.only(t)
	if m.Channel != "C0ORIGINAL" || m.ThreadTS != "1741944600.000001" || m.Broadcast {
		t.Errorf("posted to %q thread %q broadcast %v; want the original thread, not broadcast", m.Channel, m.ThreadTS, m.Broadcast)
	}
	if d.Channel != "C0ORIGINAL" {
		t.Errorf("delivery channel %q", d.Channel)
	}
	if want := "WARNING late approval: fraud-detector@3 (mlflow-prod) (follow-up to promotion, ledger seq 40)"; m.Text != want {
		t.Errorf("text %q, want %q", m.Text, want)
	}
	if m.Attachments[0].Color != slack.ColorWarning {
		t.Errorf("colour %q, want %q", m.Attachments[0].Color, slack.ColorWarning)
	}
	if out := slackfake.Format(m); !strings.Contains(out, "Follows up promotion · ledger seq 40 · finding 1234567890ab…") {
		t.Errorf("follow-up context missing:\n%s", out)
	}
}

func TestNotify(t *testing.T) {
	for _, webhook := range []bool{false, true} {
		t.Run(mode(webhook), func(t *testing.T) {
			e := newEnv(t, webhook, nil)
			note := "Checkpoint published (size 12)\nregistrywatch.local/ab\n12\nq2u3Jx4=\n\n— registrywatch.local/ab Az3k<x>\n"
			if err := e.sink.Notify(t.Context(), note); err != nil {
				t.Fatal(err)
			}
			m := e.only(t)
			want := "Checkpoint published (size 12)\n```\nregistrywatch.local/ab\n12\nq2u3Jx4=\n\n— registrywatch.local/ab Az3k&lt;x&gt;\n```"
			if m.Text != want {
				t.Errorf("text %q, want %q", m.Text, want)
			}
			if !webhook && m.Channel != "#ml-audit" {
				t.Errorf("channel %q", m.Channel)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		fault      slackfake.Fault
		retryable  bool
		retryAfter time.Duration
		contains   string
	}{
		{slackfake.Fault{Status: 500}, true, 0, "500"},
		{slackfake.Fault{Status: 503}, true, 0, "503"},
		{slackfake.Fault{RetryAfter: 7 * time.Second}, true, 7 * time.Second, "429"},
		{slackfake.Fault{Status: 408}, true, 0, "408"},
		{slackfake.Fault{Error: "channel_not_found"}, false, 0, "channel_not_found"},
		{slackfake.Fault{Error: "invalid_payload"}, false, 0, "invalid_payload"},
		{slackfake.Fault{Error: "invalid_auth"}, false, 0, "invalid_auth"},
		{slackfake.Fault{Error: "not_in_channel"}, false, 0, "not_in_channel"},
		{slackfake.Fault{Status: 400}, false, 0, "400"},
	}
	for _, webhook := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d/%s", mode(webhook), tt.fault.Status, tt.fault.Error), func(t *testing.T) {
				e := newEnv(t, webhook, nil)
				e.fake.Inject(tt.fault)
				_, err := e.sink.Send(t.Context(), alert(nil))
				if err == nil {
					t.Fatal("Send succeeded against a fault")
				}
				retryable, after := alerts.Classify(err)
				if retryable != tt.retryable || after != tt.retryAfter {
					t.Errorf("Classify(%v) = %v, %v; want %v, %v", err, retryable, after, tt.retryable, tt.retryAfter)
				}
				if !strings.Contains(err.Error(), tt.contains) {
					t.Errorf("error %q does not name %q", err, tt.contains)
				}
				if tt.fault.Error == "invalid_auth" && !webhook && !strings.Contains(e.logs.String(), "level=ERROR") {
					t.Error("invalid_auth was not logged as an error")
				}
			})
		}
	}
	t.Run("bot/ratelimited error code", func(t *testing.T) {
		e := newEnv(t, false, nil)
		e.fake.Inject(slackfake.Fault{Status: 200, Error: "ratelimited"})
		_, err := e.sink.Send(t.Context(), alert(nil))
		if retryable, _ := alerts.Classify(err); err == nil || !retryable {
			t.Errorf("ratelimited: err %v retryable %v, want a retryable error", err, retryable)
		}
	})
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	const token = "xoxb-1234567890-SECRETTOKENVALUE"
	type outcome struct {
		err     error
		logs    string
		secrets []string
	}
	type attempt struct {
		name string
		run  func(t *testing.T) outcome
	}
	send := func(t *testing.T, webhook bool, setup func(*env)) outcome {
		e := newEnv(t, webhook, func(c *config.Slack) {
			if !webhook {
				c.Token = token
			}
		})
		if setup != nil {
			setup(e)
		}
		_, err := e.sink.Send(t.Context(), alert(nil))
		nerr := e.sink.Notify(t.Context(), "notice")
		u, _ := url.Parse(e.fake.WebhookURL())
		secrets := []string{token, e.fake.WebhookURL(), u.Path, "fakeWebhookSecret"}
		return outcome{errors.Join(err, nerr), e.logs.String(), secrets}
	}
	attempts := []attempt{
		{"webhook 404", func(t *testing.T) outcome {
			return send(t, true, func(e *env) {
				e.fake.Inject(slackfake.Fault{Error: "channel_not_found"}, slackfake.Fault{Error: "invalid_token"})
			})
		}},
		{"webhook 500", func(t *testing.T) outcome {
			return send(t, true, func(e *env) { e.fake.Inject(slackfake.Fault{Status: 500}, slackfake.Fault{Status: 502}) })
		}},
		{"webhook connection refused", func(t *testing.T) outcome {
			return send(t, true, func(e *env) { e.fake.Close() })
		}},
		{"bot invalid_auth", func(t *testing.T) outcome {
			return send(t, false, nil) // the fake expects another token
		}},
		{"bot connection refused", func(t *testing.T) outcome {
			return send(t, false, func(e *env) { e.fake.Close() })
		}},
		{"webhook timeout", func(t *testing.T) outcome {
			e := newEnv(t, true, nil)
			slow := &http.Client{Timeout: time.Millisecond, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				<-r.Context().Done()
				return nil, r.Context().Err()
			})}
			s, err := slack.New(config.Slack{WebhookURL: config.Secret(e.fake.WebhookURL())},
				slack.Options{HTTPClient: slow, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Send(t.Context(), alert(nil))
			u, _ := url.Parse(e.fake.WebhookURL())
			return outcome{err, e.logs.String(), []string{e.fake.WebhookURL(), u.Path}}
		}},
	}
	for _, at := range attempts {
		t.Run(at.name, func(t *testing.T) {
			o := at.run(t)
			err, logs, secrets := o.err, o.logs, o.secrets
			if err == nil {
				t.Fatal("no error")
			}
			var se *alerts.Error
			if !errors.As(err, &se) {
				t.Errorf("error %v is not an *alerts.Error", err)
			}
			texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), logs}
			for u := errors.Unwrap(se); u != nil; u = errors.Unwrap(u) {
				texts = append(texts, u.Error())
			}
			for _, text := range texts {
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("secret %q appears in %q", s, text)
					}
				}
			}
		})
	}
	t.Run("config errors", func(t *testing.T) {
		secret := "ftp://hooks.example/services/T1/B2/verysecretpath"
		_, err := slack.New(config.Slack{WebhookURL: config.Secret(secret)}, slack.Options{})
		if err == nil || strings.Contains(err.Error(), "verysecretpath") {
			t.Errorf("New with a non-http webhook: %v", err)
		}
		_, err = slack.New(config.Slack{WebhookURL: config.Secret("https://h/x"), Token: token}, slack.Options{})
		if err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("New with both: %v", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Slack
		want string
	}{
		{"nothing", config.Slack{}, "neither webhook_url nor token"},
		{"both", config.Slack{WebhookURL: "https://hooks.slack.com/services/x", Token: "xoxb-1", Channel: "#a"}, "not both"},
		{"token without channel", config.Slack{Token: "xoxb-1"}, "requires channel"},
		{"bad webhook", config.Slack{WebhookURL: "hooks.slack.com/services/x"}, "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := slack.New(tt.cfg, slack.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("webhook_url_file", func(t *testing.T) {
		e := newEnv(t, true, nil)
		f := t.TempDir() + "/webhook"
		if err := os.WriteFile(f, []byte(e.fake.WebhookURL()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := slack.New(config.Slack{WebhookURLFile: f}, slack.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send(t.Context(), alert(nil)); err != nil {
			t.Fatal(err)
		}
		if e.only(t).Via != "webhook" {
			t.Error("not sent through the webhook")
		}
	})
}

// allStrings returns every string in a decoded JSON value; strings that are
// themselves JSON documents are decoded too.
func allStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
		var inner any
		if json.Unmarshal([]byte(x), &inner) == nil {
			if _, ok := inner.(string); !ok {
				out = append(out, allStrings(inner)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, allStrings(e)...)
		}
	case map[string]any:
		for _, e := range x {
			out = append(out, allStrings(e)...)
		}
	}
	return out
}

func mode(webhook bool) string {
	if webhook {
		return "webhook"
	}
	return "bot"
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
