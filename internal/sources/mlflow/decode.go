package mlflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// The decoders below turn registry answers into validated values. Unknown
// fields are ignored and optional fields may be missing (null counts as
// missing); a field of the wrong type, a missing name, or a version that is
// not a decimal integer is an error. The read* functions parse (with scanner)
// into the wire structs, whose json tags name the registry's fields; the
// decode* functions validate and convert.

// maxOrder is the largest version number a ledger payload can carry (2^53-1).
const maxOrder = 1<<53 - 1

// wireTag is a registry tag, {"key", "value"}: a KV as it comes.
type wireTag = sources.KV

type wireAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type wireVersion struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Created     *int64    `json:"creation_timestamp"`
	Updated     *int64    `json:"last_updated_timestamp"`
	UserID      *string   `json:"user_id"`
	Stage       *string   `json:"current_stage"`
	Description *string   `json:"description"`
	Source      string    `json:"source"`
	RunID       *string   `json:"run_id"`
	Status      string    `json:"status"`
	Tags        []wireTag `json:"tags"`
}

type wireModel struct {
	Name        string      `json:"name"`
	Created     *int64      `json:"creation_timestamp"`
	Updated     *int64      `json:"last_updated_timestamp"`
	UserID      *string     `json:"user_id"`
	Description *string     `json:"description"`
	Tags        []wireTag   `json:"tags"`
	Aliases     []wireAlias `json:"aliases"`
}

type wireActivity struct {
	ID      string `json:"id"`
	UserID  string `json:"user_id"`
	ToStage string `json:"to_stage"`
	Created *int64 `json:"creation_timestamp"`
}

// version is one decoded model version of a model.
type version struct {
	model   string
	updated int64 // last_updated_timestamp in ms (0 when absent)
	v       sources.Version
}

// model is one decoded registered model, its versions not included.
type model struct {
	m sources.Model
	// aliases maps a version id to the alias names pointing at it.
	aliases map[string][]string
}

// errMalformed marks answers that decode but break the registry's contract.
var errMalformed = errors.New("malformed response")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// parseOrder parses a version number strictly: decimal digits, no sign, no
// leading zero, at most 2^53-1.
func parseOrder(s string) (int64, error) {
	if s == "" || len(s) > 16 || (len(s) > 1 && s[0] == '0') {
		return 0, malformed("version %q is not a version number", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed("version %q is not a version number", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxOrder {
		return 0, malformed("version %q is not a version number", s)
	}
	return n, nil
}

// jsonString is the JSON text of s, without HTML escaping.
func jsonString(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\'
	}
	if plain {
		return `"` + s + `"`
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func millis(p *int64) string {
	if p == nil {
		return ""
	}
	return formatMillis(*p)
}

// formatMillis is sources.FormatMillis, computed without the time package
// for the years 1970-9999 (a page holds two times per version).
func formatMillis(ms int64) string {
	if ms < 0 || ms > 253402300799999 {
		return sources.FormatMillis(ms)
	}
	days, rem := ms/86400000, ms%86400000
	// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	var b [24]byte
	put := func(at int, v int64, width int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	b[4] = '-'
	put(5, m, 2)
	b[7] = '-'
	put(8, d, 2)
	b[10] = 'T'
	put(11, rem/3600000, 2)
	b[13] = ':'
	put(14, rem/60000%60, 2)
	b[16] = ':'
	put(17, rem/1000%60, 2)
	b[19] = '.'
	put(20, rem%1000, 3)
	b[23] = 'Z'
	return string(b[:])
}

// tagsKV sorts the decoded tags in place (nil when there are none).
func tagsKV(tags []wireTag) []sources.KV {
	if len(tags) == 0 {
		return nil
	}
	sources.SortKV(tags)
	return tags
}

func rawInt(raw []sources.KV, key string, p *int64) []sources.KV {
	if p == nil {
		return raw
	}
	return append(raw, sources.KV{Key: key, Value: strconv.FormatInt(*p, 10)})
}

func rawString(raw []sources.KV, key string, p *string) []sources.KV {
	if p == nil {
		return raw
	}
	return append(raw, sources.KV{Key: key, Value: jsonString(*p)})
}

func convertVersion(w *wireVersion) (version, error) {
	return convertVersionCached(w, nil)
}

// rawCache shares the Raw texts that repeat across the versions of a page
// (stages, version numbers).
type rawCache map[string]string

func (c rawCache) text(s string) string {
	if c == nil {
		return jsonString(s)
	}
	if v, ok := c[s]; ok {
		return v
	}
	v := jsonString(s)
	if len(c) < maxInterned {
		c[s] = v
	}
	return v
}

func convertVersionCached(w *wireVersion, cache rawCache) (version, error) {
	if w.Name == "" {
		return version{}, malformed("model version without a name")
	}
	order, err := parseOrder(w.Version)
	if err != nil {
		return version{}, fmt.Errorf("model %q: %w", w.Name, err)
	}
	v := sources.Version{
		ID:          w.Version,
		Order:       order,
		Aliases:     []string{},
		CreatedAt:   millis(w.Created),
		Description: w.Description,
		Source:      w.Source,
		RunID:       w.RunID,
		Status:      w.Status,
		Tags:        tagsKV(w.Tags),
	}
	raw := make([]sources.KV, 0, 5)
	if w.Created != nil {
		raw = append(raw, sources.KV{Key: "creation_timestamp", Value: strconv.FormatInt(*w.Created, 10)})
	}
	if w.Stage != nil {
		v.Stage = *w.Stage
		raw = append(raw, sources.KV{Key: "current_stage", Value: cache.text(*w.Stage)})
	}
	if w.Updated != nil {
		// A version never updated since its creation repeats the same instant.
		if w.Created != nil && *w.Created == *w.Updated {
			v.UpdatedAt = v.CreatedAt
			raw = append(raw, sources.KV{Key: "last_updated_timestamp", Value: raw[0].Value})
		} else {
			v.UpdatedAt = millis(w.Updated)
			raw = append(raw, sources.KV{Key: "last_updated_timestamp", Value: strconv.FormatInt(*w.Updated, 10)})
		}
	}
	if w.UserID != nil {
		v.Creator = *w.UserID
		raw = append(raw, sources.KV{Key: "user_id", Value: cache.text(*w.UserID)})
	}
	raw = append(raw, sources.KV{Key: "version", Value: cache.text(w.Version)})
	v.Raw = raw
	out := version{model: w.Name, v: v}
	if w.Updated != nil {
		out.updated = *w.Updated
	}
	return out, nil
}

func convertModel(w *wireModel) (model, error) {
	if w.Name == "" {
		return model{}, malformed("registered model without a name")
	}
	if w.Created == nil {
		return model{}, malformed("registered model %q without creation_timestamp", w.Name)
	}
	m := model{m: sources.Model{
		Name:        w.Name,
		ID:          w.Name + "@" + sources.FormatMillis(*w.Created),
		CreatedAt:   millis(w.Created),
		UpdatedAt:   millis(w.Updated),
		Description: w.Description,
		Tags:        tagsKV(w.Tags),
		Versions:    []sources.Version{},
	}}
	raw := make([]sources.KV, 0, 3)
	raw = rawInt(raw, "creation_timestamp", w.Created)
	raw = rawInt(raw, "last_updated_timestamp", w.Updated)
	raw = rawString(raw, "user_id", w.UserID)
	m.m.Raw = raw
	for _, a := range w.Aliases {
		if a.Alias == "" {
			return model{}, malformed("registered model %q has an alias without a name", w.Name)
		}
		if _, err := parseOrder(a.Version); err != nil {
			return model{}, fmt.Errorf("registered model %q alias %q: %w", w.Name, a.Alias, err)
		}
		if m.aliases == nil {
			m.aliases = map[string][]string{}
		}
		m.aliases[a.Version] = append(m.aliases[a.Version], a.Alias)
	}
	return m, nil
}

// Field readers of the scanner for the registry's types.

func (s *scanner) tags() []wireTag {
	if s.null() {
		return nil
	}
	out := []wireTag{}
	s.array(func() {
		var t wireTag
		if !s.null() {
			s.object(func(k []byte) {
				switch string(k) {
				case "key":
					s.setShort(&t.Key)
				case "value":
					s.setShort(&t.Value)
				}
			})
		}
		out = append(out, t)
	})
	return out
}

func (s *scanner) aliases() []wireAlias {
	if s.null() {
		return nil
	}
	out := []wireAlias{}
	s.array(func() {
		var a wireAlias
		if !s.null() {
			s.object(func(k []byte) {
				switch string(k) {
				case "alias":
					s.setString(&a.Alias)
				case "version":
					s.setString(&a.Version)
				}
			})
		}
		out = append(out, a)
	})
	return out
}

func (s *scanner) version(w *wireVersion) {
	s.object(func(k []byte) {
		switch string(k) {
		case "name":
			s.setShort(&w.Name)
		case "version":
			s.setShort(&w.Version)
		case "creation_timestamp":
			w.Created = s.int64()
		case "last_updated_timestamp":
			w.Updated = s.int64()
		case "user_id":
			w.UserID = s.optShort()
		case "current_stage":
			w.Stage = s.optShort()
		case "description":
			w.Description = s.optString()
		case "source":
			s.setString(&w.Source)
		case "run_id":
			w.RunID = s.optString()
		case "status":
			s.setShort(&w.Status)
		case "tags":
			w.Tags = s.tags()
		}
	})
}

func (s *scanner) model(w *wireModel) {
	s.object(func(k []byte) {
		switch string(k) {
		case "name":
			s.setString(&w.Name)
		case "creation_timestamp":
			w.Created = s.int64()
		case "last_updated_timestamp":
			w.Updated = s.int64()
		case "user_id":
			w.UserID = s.optShort()
		case "description":
			w.Description = s.optString()
		case "tags":
			w.Tags = s.tags()
		case "aliases":
			w.Aliases = s.aliases()
		}
	})
}

// readModelsPage reads a registered-models/search answer: the models and the
// next page token.
func readModelsPage(b []byte) (models []wireModel, next string, err error) {
	s := &scanner{b: b}
	err = s.document(func(k []byte) {
		switch string(k) {
		case "registered_models":
			models = nil
			if s.null() {
				return
			}
			s.array(func() {
				var w wireModel
				if !s.null() {
					s.model(&w)
				}
				models = append(models, w)
			})
		case "next_page_token":
			s.setString(&next)
		}
	})
	return models, next, err
}

// scanVersionsPage reads a model-versions/search answer, handing each
// version to each (which must not keep the pointer).
func scanVersionsPage(b []byte, each func(*wireVersion) error) (next string, err error) {
	s := &scanner{b: b}
	var w wireVersion
	err = s.document(func(k []byte) {
		switch string(k) {
		case "model_versions":
			if s.null() {
				return
			}
			s.array(func() {
				w = wireVersion{}
				if !s.null() {
					s.version(&w)
				}
				if s.err == nil {
					if err := each(&w); err != nil {
						s.err = err
					}
				}
			})
		case "next_page_token":
			s.setString(&next)
		}
	})
	return next, err
}

// readVersion reads a model-versions/get answer (nil without model_version).
func readVersion(b []byte) (*wireVersion, error) {
	var w *wireVersion
	s := &scanner{b: b}
	err := s.document(func(k []byte) {
		if string(k) != "model_version" {
			return
		}
		if s.null() {
			w = nil
			return
		}
		if w == nil {
			w = &wireVersion{}
		}
		s.version(w)
	})
	return w, err
}

// readModel reads a registered-models/get answer (nil without registered_model).
func readModel(b []byte) (*wireModel, error) {
	var w *wireModel
	s := &scanner{b: b}
	err := s.document(func(k []byte) {
		if string(k) != "registered_model" {
			return
		}
		if s.null() {
			w = nil
			return
		}
		if w == nil {
			w = &wireModel{}
		}
		s.model(w)
	})
	return w, err
}

// readRequests reads a transition-requests/list answer.
func readRequests(b []byte) ([]wireActivity, error) {
	var out []wireActivity
	s := &scanner{b: b}
	err := s.document(func(k []byte) {
		if string(k) != "requests" {
			return
		}
		out = nil
		if s.null() {
			return
		}
		out = []wireActivity{}
		s.array(func() {
			var a wireActivity
			if !s.null() {
				s.object(func(k []byte) {
					switch string(k) {
					case "id":
						s.setString(&a.ID)
					case "user_id":
						s.setString(&a.UserID)
					case "to_stage":
						s.setString(&a.ToStage)
					case "creation_timestamp":
						a.Created = s.int64()
					}
				})
			}
			out = append(out, a)
		})
	})
	return out, err
}

// modelsPage is one decoded registered-models/search page.
type modelsPage struct {
	// models are the models listed, each with a name; they are converted
	// (and validated further) only when used.
	models []wireModel
	next   string
	// aliases reports whether some model of the page carries an aliases
	// key: the registry includes aliases in its search answers (it omits
	// the key when a model has none).
	aliases bool
}

// decodeModelsPage decodes a registered-models/search page.
func decodeModelsPage(b []byte) (modelsPage, error) {
	models, next, err := readModelsPage(b)
	if err != nil {
		return modelsPage{}, err
	}
	p := modelsPage{models: models, next: next}
	for i := range models {
		if models[i].Name == "" {
			return modelsPage{}, malformed("registered model without a name")
		}
		p.aliases = p.aliases || models[i].Aliases != nil
	}
	return p, nil
}

// decodeModel decodes a registered-models/get answer.
func decodeModel(b []byte) (model, error) {
	w, err := readModel(b)
	if err != nil {
		return model{}, err
	}
	if w == nil {
		return model{}, malformed("no registered_model in the answer")
	}
	return convertModel(w)
}

// decodeVersionsPage decodes a model-versions/search page.
func decodeVersionsPage(b []byte) ([]version, string, error) {
	// One version row holds current_stage once: size the page up front.
	vs := make([]version, 0, bytes.Count(b, []byte(`"current_stage"`)))
	cache := rawCache{}
	next, err := scanVersionsPage(b, func(w *wireVersion) error {
		v, err := convertVersionCached(w, cache)
		vs = append(vs, v)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return vs, next, nil
}

// decodeVersion decodes a model-versions/get answer.
func decodeVersion(b []byte) (version, error) {
	w, err := readVersion(b)
	if err != nil {
		return version{}, err
	}
	if w == nil {
		return version{}, malformed("no model_version in the answer")
	}
	return convertVersion(w)
}

// decodeRequests decodes a Databricks transition-requests/list answer.
func decodeRequests(b []byte) ([]sources.Request, error) {
	ws, err := readRequests(b)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	out := make([]sources.Request, 0, len(ws))
	for _, a := range ws {
		if a.ID == "" {
			return nil, malformed("transition request without an id")
		}
		out = append(out, sources.Request{ID: a.ID, Requester: a.UserID, ToStage: a.ToStage, CreatedAt: millis(a.Created)})
	}
	return out, nil
}
