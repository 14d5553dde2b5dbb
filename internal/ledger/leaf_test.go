package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/gowebpki/jcs"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

func TestEncodeLeafGolden(t *testing.T) {
	e := Entry{
		Kind: "stage.changed", Source: "mlflow-prod", SourceType: "mlflow",
		Model: "fraud", ModelID: "fraud@2025-01-01T00:00:00.000Z", Version: "3",
		Actor: "unknown", ObservedAt: t0,
		OccurredFrom: t0.Add(-time.Minute), OccurredTo: t0.Add(-time.Second),
		Payload: map[string]any{"to": "Production", "from": "Staging", "n": 7, "ok": true,
			"tags": []any{map[string]any{"value": "b", "key": "a"}}, "evidence": []map[string]any{{"seq": Seq(4), "kind": "tag.set"}}},
	}
	got, err := EncodeLeaf(&e, 12)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"actor":"unknown","kind":"stage.changed","model":"fraud","model_id":"fraud@2025-01-01T00:00:00.000Z",` +
		`"observed_at":"2025-03-14T09:26:53.589Z","occurred_from":"2025-03-14T09:25:53.589Z","occurred_to":"2025-03-14T09:26:52.590Z",` +
		`"payload":{"evidence":[{"kind":"tag.set","seq":4}],"from":"Staging","n":7,"ok":true,"tags":[{"key":"a","value":"b"}],"to":"Production"},` +
		`"seq":12,"source":"mlflow-prod","source_type":"mlflow","version":"3"}`
	if string(got) != want {
		t.Fatalf("leaf:\n got %s\nwant %s", got, want)
	}
	if tr, err := jcs.Transform(got); err != nil || !bytes.Equal(tr, got) {
		t.Fatalf("not canonical: %s (%v)", tr, err)
	}
}

func TestEncodeLeafStrings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a<b>&c", `"a<b>&c"`},
		{"line\u2028sep\u2029", "\"line\u2028sep\u2029\""},
		{"q\"b\\s/", `"q\"b\\s/"`},
		{"\x00\x01\b\t\n\v\f\r\x1f\x7f", `"\u0000\u0001\b\t\n\u000b\f\r\u001f` + "\x7f\""},
		{"bad\xffutf8\xc3", "\"bad\uFFFDutf8\uFFFD\""},
		{"é€😀", `"é€😀"`},
		{"\xed\xa0\x80", "\"\uFFFD\uFFFD\uFFFD\""}, // an encoded surrogate is invalid UTF-8
	} {
		got := string(appendString(nil, tc.in))
		if got != tc.want {
			t.Errorf("appendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestEncodeLeafTimes(t *testing.T) {
	base := Entry{Kind: "k", SourceType: "wandb", Actor: "a"}
	for _, tc := range []struct {
		name                  string
		observed, from, to    time.Time
		wantObs, wantF, wantT string
	}{
		{"defaults", t0, time.Time{}, time.Time{}, "2025-03-14T09:26:53.589Z", "2025-03-14T09:26:53.589Z", "2025-03-14T09:26:53.590Z"},
		{"exact ms", t0.Truncate(time.Millisecond), time.Time{}, time.Time{}, "2025-03-14T09:26:53.589Z", "2025-03-14T09:26:53.589Z", "2025-03-14T09:26:53.589Z"},
		{"zone converted", time.Date(2025, 1, 1, 1, 0, 0, 1, time.FixedZone("x", 3600)), time.Time{}, time.Time{}, "2025-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z", "2025-01-01T00:00:00.001Z"},
		{"to rounds over a second", t0, t0, time.Date(2025, 12, 31, 23, 59, 59, 999000001, time.UTC), "2025-03-14T09:26:53.589Z", "2025-03-14T09:26:53.589Z", "2026-01-01T00:00:00.000Z"},
		{"year zero", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, time.Time{}, "0000-01-01T00:00:00.000Z", "0000-01-01T00:00:00.000Z", "0000-01-01T00:00:00.000Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			e.ObservedAt, e.OccurredFrom, e.OccurredTo = tc.observed, tc.from, tc.to
			leaf, err := EncodeLeaf(&e, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"observed_at":"` + tc.wantObs, `"occurred_from":"` + tc.wantF, `"occurred_to":"` + tc.wantT} {
				if !strings.Contains(string(leaf), want) {
					t.Errorf("%s lacks %s", leaf, want)
				}
			}
		})
	}
}

func TestEncodeLeafErrors(t *testing.T) {
	ok := Entry{Kind: "k", SourceType: "mlflow", Actor: "a", ObservedAt: t0}
	for _, tc := range []struct {
		name string
		mod  func(*Entry)
		want string
	}{
		{"big int", func(e *Entry) { e.Payload = map[string]any{"n": int64(1 << 53)} }, "payload.n: integer 9007199254740992 beyond 2^53-1"},
		{"small int", func(e *Entry) { e.Payload = map[string]any{"a": []any{int64(-1 << 53)}} }, "payload.a[0]: integer"},
		{"nested big int", func(e *Entry) { e.Payload = map[string]any{"d": []int64{1, 1 << 60}} }, "payload.d[1]: integer"},
		{"non-ascii key", func(e *Entry) { e.Payload = map[string]any{"m": map[string]any{"é": "x"}} }, "payload.m.é: non-ASCII key"},
		{"nil", func(e *Entry) { e.Payload = map[string]any{"x": nil} }, "payload.x: null value"},
		{"float", func(e *Entry) { e.Payload = map[string]any{"f": 1.5} }, "payload.f: unsupported value type float64"},
		{"in-batch ref", func(e *Entry) { e.Payload = map[string]any{"r": InBatch(0)} }, "unresolved"},
		{"no kind", func(e *Entry) { e.Kind = "" }, "no kind"},
		{"bad source type", func(e *Entry) { e.SourceType = "git" }, "unknown source_type"},
		{"no actor", func(e *Entry) { e.Actor = "" }, "empty actor"},
		{"zero observed", func(e *Entry) { e.ObservedAt = time.Time{} }, "zero observed_at"},
		{"year 10000", func(e *Entry) { e.OccurredTo = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }, "year 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.mod(&e)
			_, err := EncodeLeaf(&e, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := EncodeLeaf(&ok, MaxSafeInt+1); err == nil {
		t.Fatal("seq beyond 2^53-1 accepted")
	}
	e := ok
	e.Payload = map[string]any{"max": int64(MaxSafeInt), "min": -MaxSafeInt}
	if _, err := EncodeLeaf(&e, 0); err != nil {
		t.Fatalf("bounds refused: %v", err)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	e := Entry{
		Kind: "promotion", Source: "s", SourceType: "databricks", Model: "m\u2028", ModelID: "id", Version: "v\"1",
		Actor: ActorRegistrywatch, ObservedAt: t0, OccurredFrom: t0.Add(-time.Hour),
		Payload: map[string]any{"a": []string{"x", "y"}, "b": map[string]any{"c": int64(-3)}, "d": []int64{1, 2}, "e": false},
	}
	leaf, err := EncodeLeaf(&e, 99)
	if err != nil {
		t.Fatal(err)
	}
	got, seq, err := Decode(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 99 {
		t.Fatalf("seq %d", seq)
	}
	want := e
	want.ObservedAt = t0.Truncate(time.Millisecond)
	want.OccurredFrom = want.ObservedAt.Add(-time.Hour)
	want.OccurredTo = t0.Truncate(time.Millisecond).Add(time.Millisecond)
	want.Payload = map[string]any{"a": []any{"x", "y"}, "b": map[string]any{"c": int64(-3)}, "d": []any{int64(1), int64(2)}, "e": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
	again, err := EncodeLeaf(&got, seq)
	if err != nil || !bytes.Equal(again, leaf) {
		t.Fatalf("re-encoded %s (%v), want %s", again, err, leaf)
	}
	if k := leafKind(leaf); string(k) != "promotion" {
		t.Fatalf("leafKind = %q", k)
	}
	if s, ok := leafSeq(leaf); !ok || s != 99 {
		t.Fatalf("leafSeq = %d %v", s, ok)
	}
	if _, _, err := Decode([]byte(`{"actor":"a","extra":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestLeafScanners(t *testing.T) {
	e := Entry{Kind: "snap\"shot", Source: `,"seq":5,`, SourceType: "mlflow", Actor: `x\",\"kind\":\"y`, Version: `","seq":7`, ObservedAt: t0,
		Payload: map[string]any{"seq": 3, "evidence": []any{map[string]any{"kind": "snapshot", "seq": 4}}}}
	leaf, err := EncodeLeaf(&e, 42)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := leafSeq(leaf); !ok || s != 42 {
		t.Fatalf("leafSeq = %d %v in %s", s, ok, leaf)
	}
	if k := string(leafKind(leaf)); k != `snap\"shot` {
		t.Fatalf("leafKind = %s in %s", k, leaf)
	}
	for _, bad := range []string{"", "{}", `{"actor":"a"`, `{"actor":"a","seq":1}`, `{"actor":"a","kind":"x","seq":,}`} {
		if _, ok := leafSeq([]byte(bad)); ok {
			t.Errorf("leafSeq(%s) ok", bad)
		}
	}
}

func TestFindingID(t *testing.T) {
	id, err := FindingID("s\"", "m@1", "promotion", "3", int64(17))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(`["s\"","m@1","promotion","3",17]`))
	if want := hex.EncodeToString(sum[:]); id != want {
		t.Fatalf("id %s, want %s", id, want)
	}
	late, _ := FindingID("s", "", "coverage.late", "", "2025-01-01T00:00:00.000Z")
	sum = sha256.Sum256([]byte(`["s","","coverage.late","","2025-01-01T00:00:00.000Z"]`))
	if want := hex.EncodeToString(sum[:]); late != want {
		t.Fatalf("id %s, want %s", late, want)
	}
	if _, err := FindingID("s", "", "coverage.late", "", 1.5); err == nil {
		t.Fatal("float key accepted")
	}
}

// FuzzLeafJCS checks that every leaf is its own RFC 8785 canonical form and
// decodes back to an entry that re-encodes to the same bytes.
func FuzzLeafJCS(f *testing.F) {
	f.Add("actor", "key", "value\u2028<&>", int64(5), "registry \"text\"\x00\xff", "model", true)
	f.Add("", "a_b", "", int64(-MaxSafeInt), "é", "", false)
	f.Add("unknown", "seq", `,"seq":1,`, int64(MaxSafeInt), "\u007f\u0080\ufffd", "v\\", true)
	f.Fuzz(func(t *testing.T, actor, key, value string, n int64, text, model string, flag bool) {
		asciiKey := strings.Map(func(r rune) rune {
			if r >= utf8.RuneSelf {
				return -1
			}
			return r
		}, key)
		e := Entry{
			Kind: "tag.set", Source: text, SourceType: "mlflow", Model: model, ModelID: text + model,
			Version: value, Actor: actor + "x", ObservedAt: t0.Add(time.Duration(n % (1 << 40))),
			Payload: map[string]any{
				asciiKey: value,
				"raw":    []map[string]any{{"key": text, "value": value}},
				"list":   []any{n % MaxSafeInt, flag, text, []string{key, value}, map[string]any{asciiKey + "z": int(n % 1000)}},
				"ref":    Seq(n & MaxSafeInt),
			},
		}
		leaf, err := EncodeLeaf(&e, n&MaxSafeInt)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		canon, err := jcs.Transform(leaf)
		if err != nil {
			t.Fatalf("jcs: %v\n%s", err, leaf)
		}
		if !bytes.Equal(canon, leaf) {
			t.Fatalf("leaf is not canonical:\n got %q\nwant %q", leaf, canon)
		}
		if !utf8.Valid(leaf) {
			t.Fatalf("invalid UTF-8 in %q", leaf)
		}
		d, seq, err := Decode(leaf)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, leaf)
		}
		again, err := EncodeLeaf(&d, seq)
		if err != nil || !bytes.Equal(again, leaf) {
			t.Fatalf("round trip:\n got %q (%v)\nwant %q", again, err, leaf)
		}
		if s, ok := leafSeq(leaf); !ok || s != seq {
			t.Fatalf("leafSeq = %d %v, want %d", s, ok, seq)
		}
		if string(leafKind(leaf)) != "tag.set" {
			t.Fatalf("leafKind = %q", leafKind(leaf))
		}
		big := e
		big.Payload = map[string]any{"n": n}
		if _, err := EncodeLeaf(&big, 0); (err != nil) != (n > MaxSafeInt || n < -MaxSafeInt) {
			t.Fatalf("bound check for %d: %v", n, err)
		}
	})
}
