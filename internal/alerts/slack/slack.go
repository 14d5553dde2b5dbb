// Package slack is the Slack alert sink: it posts findings through
// github.com/slack-go/slack, by incoming webhook or by bot token and channel
// (DESIGN.md section 6).
//
// Messages carry a top-level text (what phones show) and one attachment whose
// colour is the severity, holding Block Kit blocks: a header, fields, a
// context line naming the ledger entry and the SOC 2 control, and link
// buttons. Registry-controlled text is inert: &, < and > are escaped, fields
// are verbatim mrkdwn or plain_text, and no mention can be formed. Errors
// never contain the webhook URL or the token.
package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/registrywatch/registrywatch/internal/alerts"
	"github.com/registrywatch/registrywatch/internal/config"
)

// DefaultTimeout bounds one request when Options.HTTPClient is nil.
const DefaultTimeout = 30 * time.Second

// Options are the injectable parts of a Sink.
type Options struct {
	// HTTPClient sends the requests; default a client with DefaultTimeout.
	HTTPClient *http.Client
	// Logger receives authentication failures; default slog.Default().
	Logger *slog.Logger
	// APIURL overrides the Web API base URL (tests, the fake, proxies); it
	// wins over config.Slack.APIURL. Default https://slack.com/api/.
	APIURL string
}

// Sink posts alerts to Slack. It implements alerts.Sink.
type Sink struct {
	webhook  string // incoming webhook URL, "" in bot mode
	token    string // bot token, "" in webhook mode
	channel  string
	channels map[string]string
	runbook  string // http(s) URL or ""
	http     *http.Client
	api      *slackapi.Client
	log      *slog.Logger
	secrets  []string // strings that must never appear in an error
}

var _ alerts.Sink = (*Sink)(nil)

// New returns a Sink for cfg: an incoming webhook (webhook_url) or a bot
// token and channel (token, channel). Secrets given only as _file twins are
// read here when the loader has not already resolved them.
func New(cfg config.Slack, opts Options) (*Sink, error) {
	webhook, err := secret(cfg.WebhookURL, cfg.WebhookURLFile, "webhook_url")
	if err != nil {
		return nil, err
	}
	token, err := secret(cfg.Token, cfg.TokenFile, "token")
	if err != nil {
		return nil, err
	}
	switch {
	case webhook == "" && token == "":
		return nil, errors.New("slack: neither webhook_url nor token is set")
	case webhook != "" && token != "":
		return nil, errors.New("slack: set webhook_url or token, not both")
	case token != "" && cfg.Channel == "":
		return nil, errors.New("slack: token requires channel")
	}
	if webhook != "" && !isHTTPURL(webhook) {
		return nil, errors.New("slack: webhook_url is not an http(s) URL")
	}
	s := &Sink{
		webhook:  webhook,
		token:    token,
		channel:  cfg.Channel,
		channels: cfg.Channels,
		log:      opts.Logger,
	}
	if isHTTPURL(cfg.RunbookURL) {
		s.runbook = cfg.RunbookURL
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	base := opts.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: DefaultTimeout}
	}
	hc := *base
	hc.Transport = captureTransport{base: base.Transport}
	s.http = &hc
	for _, v := range []string{webhook, token} {
		if v == "" {
			continue
		}
		s.secrets = append(s.secrets, v)
		if u, err := url.Parse(v); err == nil && u.Host != "" && len(u.Path) > 1 {
			s.secrets = append(s.secrets, u.EscapedPath(), u.Path)
		}
	}
	if token != "" {
		apiURL := firstNonEmpty(opts.APIURL, cfg.APIURL)
		apiOpts := []slackapi.Option{slackapi.OptionHTTPClient(s.http)}
		if apiURL != "" {
			if !strings.HasSuffix(apiURL, "/") {
				apiURL += "/"
			}
			apiOpts = append(apiOpts, slackapi.OptionAPIURL(apiURL))
		}
		s.api = slackapi.New(token, apiOpts...)
	}
	return s, nil
}

// secret returns the value of a secret, read from its _file twin when only
// that is set.
func secret(v config.Secret, file, key string) (string, error) {
	if v != "" || file == "" {
		return strings.TrimSpace(v.Reveal()), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("slack: read %s_file: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Send posts one alert. A follow-up whose original alert has a ts goes to
// that thread (broadcast to the channel too when it is danger); otherwise
// the message goes to the kind's channel, else the default channel.
func (s *Sink) Send(ctx context.Context, a alerts.Alert) (alerts.Delivery, error) {
	m := buildMessage(a, s.runbook)
	channel := firstNonEmpty(s.channels[a.Record.Kind], s.channel)
	if s.api == nil {
		err := s.postWebhook(ctx, &slackapi.WebhookMessage{
			Channel:     channel,
			Text:        m.text,
			Attachments: []slackapi.Attachment{m.attachment},
			UnfurlLinks: new(false),
			UnfurlMedia: new(false),
		})
		if err != nil {
			return alerts.Delivery{}, err
		}
		return alerts.Delivery{Channel: channel}, nil
	}
	msgOpts := []slackapi.MsgOption{
		slackapi.MsgOptionText(m.text, false),
		slackapi.MsgOptionAttachments(m.attachment),
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionDisableMediaUnfurl(),
	}
	if fu := a.FollowUp; fu != nil && fu.ThreadTS != "" && fu.ThreadChannel != "" {
		channel = fu.ThreadChannel
		msgOpts = append(msgOpts, slackapi.MsgOptionTS(fu.ThreadTS))
		if a.Severity == alerts.SeverityDanger {
			msgOpts = append(msgOpts, slackapi.MsgOptionBroadcast())
		}
	}
	ch, ts, err := s.postMessage(ctx, channel, msgOpts...)
	if err != nil {
		return alerts.Delivery{}, err
	}
	return alerts.Delivery{Channel: firstNonEmpty(ch, channel), TS: ts}, nil
}

// Notify posts an operational notice to the default channel: the first line
// of text as the message, any further lines in a code block.
func (s *Sink) Notify(ctx context.Context, text string) error {
	summary, detail, _ := strings.Cut(strings.TrimRight(text, "\n"), "\n")
	body := escape(summary)
	if detail != "" {
		body += "\n```\n" + escape(detail) + "\n```"
	}
	if s.api == nil {
		return s.postWebhook(ctx, &slackapi.WebhookMessage{
			Channel:     s.channel,
			Text:        body,
			UnfurlLinks: new(false),
			UnfurlMedia: new(false),
		})
	}
	_, _, err := s.postMessage(ctx, s.channel, slackapi.MsgOptionText(body, false),
		slackapi.MsgOptionDisableLinkUnfurl(), slackapi.MsgOptionDisableMediaUnfurl())
	return err
}

func (s *Sink) postWebhook(ctx context.Context, msg *slackapi.WebhookMessage) error {
	c := &capture{}
	err := slackapi.PostWebhookCustomHTTPContext(context.WithValue(ctx, captureKey{}, c), s.webhook, s.http, msg)
	if err != nil {
		return s.classify("webhook", err, c)
	}
	return nil
}

func (s *Sink) postMessage(ctx context.Context, channel string, opts ...slackapi.MsgOption) (string, string, error) {
	c := &capture{}
	ch, ts, err := s.api.PostMessageContext(context.WithValue(ctx, captureKey{}, c), channel, opts...)
	if err != nil {
		return "", "", s.classify("chat.postMessage", err, c)
	}
	return ch, ts, nil
}

// Slack error codes that are transient.
var retryableCodes = map[string]bool{
	"ratelimited": true, "rate_limited": true, "internal_error": true, "fatal_error": true,
	"service_unavailable": true, "request_timeout": true, "team_added_to_org": true,
}

// Slack error codes that mean the credentials are wrong: the operator must act.
var authCodes = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "invalid_token": true, "no_permission": true, "missing_scope": true,
	"no_service": true, "no_team": true, "team_disabled": true,
}

// classify turns a slack-go error into an *alerts.Error whose text names the
// operation and Slack's reason, and contains no secret.
func (s *Sink) classify(op string, err error, c *capture) error {
	var (
		retryable  bool
		retryAfter time.Duration
		reason     string
		code       string
	)
	var rl *slackapi.RateLimitedError
	var se slackapi.SlackErrorResponse
	var sc slackapi.StatusCodeError
	var ue *url.Error
	switch {
	case errors.As(err, &rl):
		retryable, retryAfter = true, rl.RetryAfter
		reason = "HTTP 429 rate limited, retry after " + rl.RetryAfter.String()
	case errors.As(err, &se):
		code = se.Err
		retryable = retryableCodes[code]
		reason = code
	case errors.As(err, &sc) || c.status != 0 && c.status != http.StatusOK:
		status := c.status
		if status == 0 {
			status = sc.Code
		}
		code = c.code
		retryable = status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
		if status == http.StatusTooManyRequests {
			retryAfter = parseRetryAfter(c.retryAfter)
		}
		reason = "HTTP " + strconv.Itoa(status)
		if code != "" {
			reason += " " + code
		}
	case errors.As(err, &ue):
		retryable = true
		reason = ue.Op + " " + redactURL(ue.URL) + ": " + ue.Err.Error()
		if ue.Timeout() {
			reason = ue.Op + " " + redactURL(ue.URL) + ": timeout"
		}
	default:
		// A response slack-go could not read, or a failure before the
		// request left: nothing says it will fail again.
		retryable = true
		reason = err.Error()
	}
	e := errors.New("slack " + op + ": " + s.redact(reason))
	if authCodes[code] {
		s.log.Error("slack: credentials rejected; check the token or webhook URL", "op", op, "error", e)
	}
	if retryable {
		return alerts.Retryable(e, retryAfter)
	}
	return alerts.Permanent(e)
}

// redact removes every secret from s.
func (s *Sink) redact(text string) string {
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, "<redacted>")
	}
	return text
}

// redactURL keeps only the scheme and host of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<redacted-url>"
	}
	return u.Scheme + "://" + u.Host + "/<redacted>"
}

func parseRetryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// captureKey carries a *capture in a request's context.
type captureKey struct{}

// capture records what slack-go drops from a failed response: the status,
// Retry-After and the error code an incoming webhook puts in its body.
type capture struct {
	status     int
	retryAfter string
	code       string
}

// slackCode matches the bare error codes Slack answers with
// ("channel_not_found", "invalid_payload").
var slackCode = regexp.MustCompile(`^[a-z][a-z0-9_]{1,63}$`)

// captureTransport fills the request's capture from non-200 responses.
type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	c, _ := req.Context().Value(captureKey{}).(*capture)
	if err != nil || c == nil {
		return resp, err
	}
	c.status = resp.StatusCode
	c.retryAfter = resp.Header.Get("Retry-After")
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		_ = resp.Body.Close()
		if code := strings.TrimSpace(string(body)); slackCode.MatchString(code) {
			c.code = code
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}
