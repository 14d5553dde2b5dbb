package slackfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/registrywatch/registrywatch/internal/alerts/slack/slackfake"
	"github.com/registrywatch/registrywatch/internal/clock"
)

var t0 = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

func post(t *testing.T, u, contentType, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestWebhook(t *testing.T) {
	clk := clock.NewFake(t0)
	var hooked []slackfake.Message
	f := slackfake.New(slackfake.Options{Clock: clk, OnMessage: func(m slackfake.Message) { hooked = append(hooked, m) }})
	defer f.Close()

	status, body, _ := post(t, f.WebhookURL(), "application/json", `{"text":"hello &lt;b&gt;","channel":"#x"}`)
	if status != 200 || body != "ok" {
		t.Fatalf("webhook answered %d %q", status, body)
	}
	status, body, _ = post(t, f.URL()+"/services/T/B/wrong", "application/json", `{"text":"x"}`)
	if status != 404 || body != "no_service" {
		t.Errorf("wrong webhook path answered %d %q, want 404 no_service", status, body)
	}
	status, body, _ = post(t, f.WebhookURL(), "application/json", `{"text":`)
	if status != 400 || body != "invalid_payload" {
		t.Errorf("bad JSON answered %d %q, want 400 invalid_payload", status, body)
	}
	status, body, _ = post(t, f.WebhookURL(), "application/json", `{}`)
	if status != 400 || body != "no_text" {
		t.Errorf("empty message answered %d %q, want 400 no_text", status, body)
	}
	msgs := f.Messages()
	if len(msgs) != 1 || len(hooked) != 1 || hooked[0].TS != msgs[0].TS {
		t.Fatalf("%d messages, %d hooked; want 1 each", len(msgs), len(hooked))
	}
	m := msgs[0]
	if m.Via != "webhook" || m.Channel != "#x" || m.Text != "hello &lt;b&gt;" || !m.ReceivedAt.Equal(t0) {
		t.Errorf("message %+v", m)
	}
	if string(m.Body) != `{"text":"hello &lt;b&gt;","channel":"#x"}` {
		t.Errorf("body %s is not the request verbatim", m.Body)
	}
	if got := slackfake.Format(m); got != "#x hello <b>" {
		t.Errorf("Format = %q", got)
	}
	if f.Requests() != 4 {
		t.Errorf("Requests = %d, want 4", f.Requests())
	}
}

func TestFaults(t *testing.T) {
	clk := clock.NewFake(t0)
	f := slackfake.New(slackfake.Options{Clock: clk})
	defer f.Close()
	tests := []struct {
		fault      slackfake.Fault
		webhook    bool
		status     int
		body       string
		retryAfter string
	}{
		{slackfake.Fault{Error: "channel_not_found"}, true, 404, "channel_not_found", ""},
		{slackfake.Fault{Error: "invalid_payload"}, true, 400, "invalid_payload", ""},
		{slackfake.Fault{Error: "channel_is_archived"}, true, 410, "channel_is_archived", ""},
		{slackfake.Fault{Error: "channel_not_found"}, false, 200, `"error":"channel_not_found"`, ""},
		{slackfake.Fault{RetryAfter: 1500 * time.Millisecond}, true, 429, "rate_limited", "2"},
		{slackfake.Fault{RetryAfter: 30 * time.Second}, false, 429, `"error":"rate_limited"`, "30"},
		{slackfake.Fault{Status: 500}, false, 500, "500 Internal Server Error", ""},
	}
	for _, tt := range tests {
		f.Inject(tt.fault)
		u := f.APIURL() + "chat.postMessage"
		if tt.webhook {
			u = f.WebhookURL()
		}
		status, body, h := post(t, u, "application/json", `{"text":"x"}`)
		if status != tt.status || !strings.Contains(body, tt.body) || h.Get("Retry-After") != tt.retryAfter {
			t.Errorf("%+v webhook=%v: %d %q Retry-After %q; want %d %q %q",
				tt.fault, tt.webhook, status, body, h.Get("Retry-After"), tt.status, tt.body, tt.retryAfter)
		}
	}
	f.DownUntil(t0.Add(time.Hour))
	if status, _, _ := post(t, f.WebhookURL(), "application/json", `{"text":"x"}`); status != 503 {
		t.Errorf("down: %d, want 503", status)
	}
	clk.Advance(time.Hour)
	if status, _, _ := post(t, f.WebhookURL(), "application/json", `{"text":"x"}`); status != 200 {
		t.Errorf("after the outage: %d, want 200", status)
	}
	if n := len(f.Messages()); n != 1 {
		t.Errorf("%d messages accepted, want 1", n)
	}
}

func TestPostMessage(t *testing.T) {
	clk := clock.NewFake(t0)
	f := slackfake.New(slackfake.Options{Clock: clk})
	defer f.Close()
	api := slackapi.New(f.Token(), slackapi.OptionAPIURL(f.APIURL()))
	att := slackapi.Attachment{Color: "#d00000", Blocks: slackapi.Blocks{BlockSet: []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject("plain_text", "DANGER · test", false, false)),
		slackapi.NewSectionBlock(nil, []*slackapi.TextBlockObject{
			slackapi.NewTextBlockObject("mrkdwn", "*Model*\nm &amp; n", false, true),
		}, nil),
		slackapi.NewContextBlock("", slackapi.NewTextBlockObject("mrkdwn", "Ledger seq 1", false, true)),
		slackapi.NewActionBlock("", slackapi.NewButtonBlockElement("r", "", slackapi.NewTextBlockObject("plain_text", "Runbook", false, false)).WithURL("https://r.example")),
	}}}
	ch, ts, err := api.PostMessage("#ml-audit", slackapi.MsgOptionText("DANGER test", false), slackapi.MsgOptionAttachments(att))
	if err != nil {
		t.Fatal(err)
	}
	_, ts2, err := api.PostMessage(ch, slackapi.MsgOptionText("reply", false), slackapi.MsgOptionTS(ts), slackapi.MsgOptionBroadcast())
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	if len(msgs) != 2 || ch != "#ml-audit" || ts != msgs[0].TS || ts2 != msgs[1].TS || ts == ts2 {
		t.Fatalf("channel %q ts %q %q, messages %+v", ch, ts, ts2, msgs)
	}
	if msgs[1].ThreadTS != ts || !msgs[1].Broadcast {
		t.Errorf("reply thread %q broadcast %v", msgs[1].ThreadTS, msgs[1].Broadcast)
	}
	var body map[string]any
	if err := json.Unmarshal(msgs[0].Body, &body); err != nil {
		t.Fatalf("body %s: %v", msgs[0].Body, err)
	}
	if _, ok := body["token"]; ok {
		t.Error("the recorded body keeps the token")
	}
	if _, ok := body["attachments"].([]any); !ok {
		t.Errorf("attachments recorded as %T, want the JSON array", body["attachments"])
	}
	want := "#ml-audit DANGER test\n" +
		"    Model: m & n\n" +
		"    Ledger seq 1\n" +
		"    [Runbook] https://r.example"
	if got := slackfake.Format(msgs[0]); got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
	if got := slackfake.Format(msgs[1]); got != "#ml-audit [thread "+ts+", also to channel] reply" {
		t.Errorf("Format reply = %q", got)
	}

	if _, _, err := slackapi.New("xoxb-wrong", slackapi.OptionAPIURL(f.APIURL())).PostMessage("#a", slackapi.MsgOptionText("x", false)); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token: %v, want invalid_auth", err)
	}
	long := slackapi.Attachment{Blocks: slackapi.Blocks{BlockSet: []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject("plain_text", strings.Repeat("x", 151), false, false)),
	}}}
	if _, _, err := api.PostMessage("#a", slackapi.MsgOptionText("x", false), slackapi.MsgOptionAttachments(long)); err == nil || err.Error() != "invalid_attachments" {
		t.Errorf("header over 150 characters: %v, want invalid_attachments", err)
	}
	form := url.Values{"token": {f.Token()}, "text": {"x"}}
	if status, body, _ := post(t, f.APIURL()+"chat.postMessage", "application/x-www-form-urlencoded", form.Encode()); status != 200 || !strings.Contains(body, "channel_not_found") {
		t.Errorf("no channel: %d %s", status, body)
	}
}
