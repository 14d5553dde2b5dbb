// Package slackfake is an in-process fake of Slack for tests and the demo: an
// incoming webhook and the Web API's chat.postMessage on an httptest server.
// It records every message it accepts, checks the Block Kit limits Slack
// enforces, and injects faults: HTTP statuses, 429 with Retry-After, Slack
// error codes (channel_not_found, invalid_payload, invalid_auth) and outages.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// Defaults of Options.
const (
	// DefaultToken is the bot token chat.postMessage accepts.
	DefaultToken = "xoxb-0000000000-fake-slack-token"
	// DefaultWebhookPath is the path of the incoming webhook.
	DefaultWebhookPath = "/services/T0FAKE0000/B0FAKE0000/fakeWebhookSecret0000000"
)

// Options configures a Server.
type Options struct {
	// Clock times ts values, outages and ReceivedAt; default clock.Real.
	Clock clock.Clock
	// Token is the bot token chat.postMessage requires (default DefaultToken).
	Token string
	// WebhookPath is the incoming webhook's path (default DefaultWebhookPath).
	WebhookPath string
	// OnMessage, when set, is called with each accepted message, in order,
	// before the response is written.
	OnMessage func(Message)
}

// Fault is an injected failure, answered to one request.
type Fault struct {
	// Status is the HTTP status. 0 means 429 when RetryAfter is set; else,
	// with Error set, the status Slack uses for that error (200 with ok=false
	// on the Web API, 400/403/404/410 on a webhook).
	Status int
	// RetryAfter is sent as the Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
	// Error is the Slack error code ("channel_not_found", "invalid_payload").
	Error string
}

// Message is one message the fake accepted.
type Message struct {
	// Via is "webhook" or "api".
	Via string `json:"via"`
	// Channel is the channel asked for ("" on a webhook without one).
	Channel string `json:"channel,omitempty"`
	// TS is the message's timestamp id, returned by chat.postMessage.
	TS string `json:"ts"`
	// ThreadTS is the thread the message replies to.
	ThreadTS string `json:"thread_ts,omitempty"`
	// Broadcast is set on a thread reply also sent to the channel.
	Broadcast bool `json:"reply_broadcast,omitempty"`
	// Text is the top-level text.
	Text string `json:"text"`
	// Attachments are the decoded attachments.
	Attachments []Attachment `json:"-"`
	// Body is the message as received: a webhook's JSON body verbatim, or
	// chat.postMessage's form fields as a JSON object (attachments and
	// blocks as the JSON Slack received).
	Body json.RawMessage `json:"body"`
	// ReceivedAt is when the fake accepted the message, on its Clock.
	ReceivedAt time.Time `json:"received_at"`
}

// Attachment is a legacy attachment carrying blocks.
type Attachment struct {
	Color    string  `json:"color"`
	Fallback string  `json:"fallback"`
	Blocks   []Block `json:"blocks"`
}

// Block is one Block Kit block, with the parts the sink uses.
type Block struct {
	Type     string    `json:"type"`
	Text     *Text     `json:"text"`
	Fields   []Text    `json:"fields"`
	Elements []Element `json:"elements"`
}

// Text is a Block Kit text object.
type Text struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Verbatim bool   `json:"verbatim"`
	Emoji    *bool  `json:"emoji"`
}

// Element is a context element (a text object) or an action element (a
// button, whose label is in Text.Text).
type Element struct {
	Type string
	Text Text
	URL  string
}

// UnmarshalJSON reads a text object or a button.
func (e *Element) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type     string          `json:"type"`
		Text     json.RawMessage `json:"text"`
		Verbatim bool            `json:"verbatim"`
		URL      string          `json:"url"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	e.Type, e.URL = raw.Type, raw.URL
	if len(raw.Text) == 0 {
		return nil
	}
	if raw.Text[0] == '"' {
		e.Text = Text{Type: raw.Type, Verbatim: raw.Verbatim}
		return json.Unmarshal(raw.Text, &e.Text.Text)
	}
	return json.Unmarshal(raw.Text, &e.Text)
}

// Server is the fake Slack.
type Server struct {
	srv         *httptest.Server
	clock       clock.Clock
	token       string
	webhookPath string
	onMessage   func(Message)

	mu        sync.Mutex
	msgs      []Message
	faults    []Fault
	downUntil time.Time
	requests  int
	lastTS    time.Time
}

// New starts a fake Slack; Close stops it.
func New(opts Options) *Server {
	s := &Server{
		clock:       opts.Clock,
		token:       opts.Token,
		webhookPath: opts.WebhookPath,
		onMessage:   opts.OnMessage,
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.token == "" {
		s.token = DefaultToken
	}
	if s.webhookPath == "" {
		s.webhookPath = DefaultWebhookPath
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// WebhookURL is the incoming webhook's URL.
func (s *Server) WebhookURL() string { return s.srv.URL + s.webhookPath }

// APIURL is the Web API base URL, ending in "/".
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Token is the bot token chat.postMessage accepts.
func (s *Server) Token() string { return s.token }

// Messages returns the accepted messages, in the order received.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Requests returns how many requests reached the fake, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Inject queues faults: each is answered to one request, in order, before
// any message is accepted again.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// DownUntil makes the fake answer 503 to every request until t on its Clock.
func (s *Server) DownUntil(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downUntil = t
}

// webhookStatus is the status an incoming webhook answers with per error.
var webhookStatus = map[string]int{
	"invalid_payload":     http.StatusBadRequest,
	"no_text":             http.StatusBadRequest,
	"invalid_blocks":      http.StatusBadRequest,
	"invalid_token":       http.StatusForbidden,
	"action_prohibited":   http.StatusForbidden,
	"channel_not_found":   http.StatusNotFound,
	"no_service":          http.StatusNotFound,
	"channel_is_archived": http.StatusGone,
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	webhook := r.URL.Path == s.webhookPath
	s.mu.Lock()
	s.requests++
	var fault *Fault
	switch {
	case s.clock.Now().Before(s.downUntil):
		fault = &Fault{Status: http.StatusServiceUnavailable}
	case len(s.faults) > 0:
		fault = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()

	switch {
	case r.Method != http.MethodPost:
		s.fail(w, webhook, Fault{Status: http.StatusMethodNotAllowed})
	case fault != nil:
		s.fail(w, webhook, *fault)
	case webhook:
		s.serveWebhook(w, r)
	case r.URL.Path == "/api/chat.postMessage":
		s.servePostMessage(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.fail(w, false, Fault{Error: "unknown_method"})
	default:
		s.fail(w, true, Fault{Error: "no_service"})
	}
}

// fail answers a fault the way Slack does on a webhook or the Web API.
func (s *Server) fail(w http.ResponseWriter, webhook bool, f Fault) {
	status := f.Status
	code := f.Error
	if status == 0 && f.RetryAfter > 0 {
		status = http.StatusTooManyRequests
	}
	if status == 0 {
		status = http.StatusOK
		if webhook {
			status = webhookStatus[code]
			if status == 0 {
				status = http.StatusBadRequest
			}
		}
	}
	if status == http.StatusTooManyRequests {
		secs := max(1, int(math.Ceil(f.RetryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if code == "" {
			code = "rate_limited"
		}
	}
	if status >= 500 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body>%d %s</body></html>", status, http.StatusText(status))
		return
	}
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	if webhook {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		io.WriteString(w, code)
		return
	}
	writeJSON(w, status, map[string]any{"ok": false, "error": code})
}

func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, true, Fault{Error: "invalid_payload"})
		return
	}
	var in struct {
		Channel     string          `json:"channel"`
		ThreadTS    string          `json:"thread_ts"`
		Text        string          `json:"text"`
		Attachments json.RawMessage `json:"attachments"`
		Blocks      json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, true, Fault{Error: "invalid_payload"})
		return
	}
	m := Message{Via: "webhook", Channel: in.Channel, ThreadTS: in.ThreadTS, Text: in.Text, Body: body}
	if code := decode(&m, in.Attachments, in.Blocks); code != "" {
		s.fail(w, true, Fault{Error: code})
		return
	}
	s.accept(&m)
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
}

func (s *Server) servePostMessage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.fail(w, false, Fault{Error: "invalid_form_data"})
		return
	}
	token := r.PostForm.Get("token")
	if h := r.Header.Get("Authorization"); token == "" && strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	switch {
	case token == "":
		s.fail(w, false, Fault{Error: "not_authed"})
		return
	case token != s.token:
		s.fail(w, false, Fault{Error: "invalid_auth"})
		return
	case r.PostForm.Get("channel") == "":
		s.fail(w, false, Fault{Error: "channel_not_found"})
		return
	}
	f := r.PostForm
	m := Message{
		Via:       "api",
		Channel:   f.Get("channel"),
		ThreadTS:  f.Get("thread_ts"),
		Broadcast: f.Get("reply_broadcast") == "true",
		Text:      f.Get("text"),
	}
	attachments, blocks := json.RawMessage(f.Get("attachments")), json.RawMessage(f.Get("blocks"))
	if code := decode(&m, attachments, blocks); code != "" {
		s.fail(w, false, Fault{Error: code})
		return
	}
	m.Body = formBody(f)
	s.accept(&m)
	writeJSON(w, http.StatusOK, map[string]any{
		"ok": true, "channel": m.Channel, "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "thread_ts": m.ThreadTS},
	})
}

// decode fills m.Attachments and checks the message as Slack would; it
// returns Slack's error code, or "".
func decode(m *Message, attachments, blocks json.RawMessage) string {
	if len(attachments) > 0 && string(attachments) != "null" {
		if err := json.Unmarshal(attachments, &m.Attachments); err != nil {
			return "invalid_attachments"
		}
	}
	var top []Block
	if len(blocks) > 0 && string(blocks) != "null" {
		if err := json.Unmarshal(blocks, &top); err != nil {
			return "invalid_blocks"
		}
	}
	if m.Text == "" && len(m.Attachments) == 0 && len(top) == 0 {
		return "no_text"
	}
	for _, a := range m.Attachments {
		if !validBlocks(a.Blocks) {
			return "invalid_attachments"
		}
	}
	if !validBlocks(top) {
		return "invalid_blocks"
	}
	return ""
}

// validBlocks checks the Block Kit limits the sink must respect.
func validBlocks(blocks []Block) bool {
	if len(blocks) > 50 {
		return false
	}
	for _, b := range blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" || !validText(*b.Text, 150) {
				return false
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 || len(b.Fields) > 10 {
				return false
			}
			if b.Text != nil && !validText(*b.Text, 3000) {
				return false
			}
			for _, f := range b.Fields {
				if !validText(f, 2000) {
					return false
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return false
			}
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > 25 {
				return false
			}
			for _, e := range b.Elements {
				if e.Type == "button" && (e.Text.Type != "plain_text" || !validText(e.Text, 75) || len(e.URL) > 3000) {
					return false
				}
			}
		case "divider":
		default:
			return false
		}
	}
	return true
}

func validText(t Text, maxLen int) bool {
	if t.Type != "plain_text" && t.Type != "mrkdwn" {
		return false
	}
	if t.Type == "mrkdwn" && t.Emoji != nil {
		return false
	}
	n := utf8.RuneCountInString(t.Text)
	return n > 0 && n <= maxLen
}

// accept assigns the message's ts and records it.
func (s *Server) accept(m *Message) {
	s.mu.Lock()
	now := s.clock.Now()
	if !now.After(s.lastTS) {
		now = s.lastTS.Add(time.Microsecond)
	}
	s.lastTS = now
	m.TS = fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
	m.ReceivedAt = s.clock.Now()
	s.msgs = append(s.msgs, *m)
	s.mu.Unlock()
	if s.onMessage != nil {
		s.onMessage(*m)
	}
}

// formBody renders chat.postMessage's form fields (the token left out) as a
// JSON object, attachments and blocks as the JSON received.
func formBody(f url.Values) json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, k := range []string{"channel", "thread_ts", "reply_broadcast", "text", "mrkdwn",
		"unfurl_links", "unfurl_media", "attachments", "blocks"} {
		v, ok := f[k]
		if !ok || len(v) == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		if (k == "attachments" || k == "blocks") && json.Valid([]byte(v[0])) {
			b.WriteString(v[0])
		} else {
			vb, _ := json.Marshal(v[0])
			b.Write(vb)
		}
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
