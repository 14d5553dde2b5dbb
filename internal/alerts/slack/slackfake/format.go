package slackfake

import (
	"strings"
	"unicode"
)

// Format renders a message the way a reader of the channel sees it, as a
// short block of plain text: the channel and thread, the top-level text, then
// one indented line for the fields, one for the context and one for the
// buttons. Slack's entities are decoded and control characters dropped, so
// it is safe to print on a terminal.
func Format(m Message) string {
	var b strings.Builder
	where := m.Channel
	if where == "" {
		where = "(" + m.Via + ")"
	}
	b.WriteString(where)
	if m.ThreadTS != "" {
		b.WriteString(" [thread " + m.ThreadTS)
		if m.Broadcast {
			b.WriteString(", also to channel")
		}
		b.WriteString("]")
	}
	b.WriteString(" " + plain(m.Text))
	for _, a := range m.Attachments {
		for _, blk := range a.Blocks {
			var parts []string
			switch blk.Type {
			case "section":
				if blk.Text != nil {
					parts = append(parts, plain(blk.Text.Text))
				}
				for _, f := range blk.Fields {
					label, value, ok := strings.Cut(f.Text, "\n")
					if ok {
						parts = append(parts, plain(strings.Trim(label, "*"))+": "+plain(value))
					} else {
						parts = append(parts, plain(f.Text))
					}
				}
			case "context":
				for _, e := range blk.Elements {
					parts = append(parts, plain(e.Text.Text))
				}
			case "actions":
				for _, e := range blk.Elements {
					parts = append(parts, "["+plain(e.Text.Text)+"] "+plain(e.URL))
				}
			}
			if len(parts) > 0 {
				b.WriteString("\n    " + strings.Join(parts, " | "))
			}
		}
	}
	return b.String()
}

// plain decodes Slack's three entities and replaces control characters by
// spaces.
func plain(s string) string {
	s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
