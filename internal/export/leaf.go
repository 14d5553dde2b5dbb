package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// head holds the top-level fields of a leaf that the export reads for every
// entry, taken from the leaf bytes without decoding the payload. String
// fields are the raw JSON string contents (still escaped); use text to read
// them as strings.
type head struct {
	kind, model, modelID, observedAt, source []byte
	seq                                      int64
}

var errMalformedLeaf = errors.New("malformed leaf")

// parseHead reads the envelope of a leaf (DESIGN.md section 3): the keys
// actor, kind, model, model_id and observed_at lead every leaf in that
// order, and seq, source, source_type and version end it (the seq is the
// last `,"seq":`, since no raw quote can occur in what follows it).
func parseHead(leaf []byte) (head, error) {
	var h head
	i := 0
	field := func(key string) ([]byte, error) {
		if !bytes.HasPrefix(leaf[i:], []byte(key)) {
			return nil, fmt.Errorf("%w: expected %s", errMalformedLeaf, key)
		}
		start := i + len(key)
		end := stringEnd(leaf, start)
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated string", errMalformedLeaf)
		}
		i = end + 1
		return leaf[start:end], nil
	}
	var err error
	if _, err = field(`{"actor":"`); err != nil {
		return h, err
	}
	if h.kind, err = field(`,"kind":"`); err != nil {
		return h, err
	}
	if h.model, err = field(`,"model":"`); err != nil {
		return h, err
	}
	if h.modelID, err = field(`,"model_id":"`); err != nil {
		return h, err
	}
	if h.observedAt, err = field(`,"observed_at":"`); err != nil {
		return h, err
	}
	j := bytes.LastIndex(leaf, []byte(`,"seq":`))
	if j < i {
		return h, fmt.Errorf("%w: no seq", errMalformedLeaf)
	}
	i = j + len(`,"seq":`)
	start := i
	for ; i < len(leaf) && leaf[i] >= '0' && leaf[i] <= '9'; i++ {
		if i-start > 16 {
			return h, fmt.Errorf("%w: seq too long", errMalformedLeaf)
		}
		h.seq = h.seq*10 + int64(leaf[i]-'0')
	}
	if i == start {
		return h, fmt.Errorf("%w: no seq", errMalformedLeaf)
	}
	if h.source, err = field(`,"source":"`); err != nil {
		return h, err
	}
	return h, nil
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i
		default:
			i++
		}
	}
	return -1
}

// text returns the contents of a raw JSON string as a Go string.
func text(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if err := json.Unmarshal(q, &s); err != nil {
		return string(raw)
	}
	return s
}
