package mlflow

import (
	"bytes"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// Between two polls a registry mostly does not change. The client keeps the
// search answers of the last successful poll with their decoded values, and
// the versions it built of each model: an answer byte-identical to the last
// one decodes to the same value, so it is not decoded again, and a model
// whose versions are the same decoded values as last time keeps its built
// Versions. A poll that fails leaves the cache as it was.

// cache is what the last successful poll left.
type cache struct {
	mu    sync.Mutex
	state cacheState
}

// cacheState is one poll's answers and built models. Nothing it holds is
// modified once stored.
type cacheState struct {
	// pages are the search answers by request path and query.
	pages map[string]cachedPage
	// models are the versions built per model name.
	models map[string]builtModel
}

// cachedPage is one answer and its decoded value.
type cachedPage struct {
	body  []byte
	value any
}

// builtModel is the Versions of a snapshot model and what it was built from.
type builtModel struct {
	from     []*version
	aliases  map[string][]string
	requests bool // some version has open requests
	versions []sources.Version
}

func (c *cache) get() cacheState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *cache) set(s cacheState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = s
}

// decodePage decodes an answer of a search call with decode, or returns the
// value decoded from the same bytes by the last poll.
func decodePage[T any](p *poll, call sources.Call, body []byte, decode func([]byte) (T, error)) (T, error) {
	key := call.Path + "?" + call.Query.Encode()
	if c, ok := p.last.pages[key]; ok && bytes.Equal(c.body, body) {
		p.remember(key, c)
		return c.value.(T), nil
	}
	v, err := decode(body)
	if err == nil {
		p.remember(key, cachedPage{body: body, value: v})
	}
	return v, err
}

func (p *poll) remember(key string, c cachedPage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next.pages[key] = c
}

// listedPage is one decoded registered-models/search page.
type listedPage struct {
	models []listedModel
	next   string
	// aliases reports whether some model of the page carries an aliases key.
	aliases bool
}

// listedModel is one model of a search page, converted as a
// registered-models/get answer would be (used only when the search carries
// aliases, so a conversion error is kept until then).
type listedModel struct {
	name string
	m    model
	err  error
}

// decodeModelsPage decodes a registered-models/search page.
func (c *Client) decodeModelsPage(b []byte) (listedPage, error) {
	page, err := decodeModelsPage(b)
	if err != nil {
		return listedPage{}, err
	}
	out := listedPage{models: make([]listedModel, len(page.models)), next: page.next, aliases: page.aliases}
	for i := range page.models {
		lm := &out.models[i]
		lm.name = page.models[i].Name
		lm.m, lm.err = convertModel(&page.models[i])
	}
	return out, nil
}

// versionsPage is one decoded model-versions/search page.
type versionsPage struct {
	// byModel holds the versions of each model, sorted by number, one per
	// number.
	byModel map[string][]*version
	next    string
}

// decodeVersionsPage decodes a model-versions/search page, sets the registry
// URL of each version and groups the versions by model.
func (c *Client) decodeVersionsPage(b []byte) (versionsPage, error) {
	vs, next, err := decodeVersionsPage(b)
	if err != nil {
		return versionsPage{}, err
	}
	prefix := map[string]string{}
	byModel := map[string][]*version{}
	for i := range vs {
		v := &vs[i]
		u, ok := prefix[v.model]
		if !ok {
			u = c.ModelURL(v.model) + "/versions/"
			prefix[v.model] = u
		}
		v.v.URL = u + v.v.ID // ids are validated decimal numbers
		byModel[v.model] = append(byModel[v.model], v)
	}
	for name, vs := range byModel {
		byModel[name] = slices.Clip(sortVersions(vs))
	}
	return versionsPage{byModel: byModel, next: next}, nil
}

// assemble builds the snapshot, sorted, in parallel chunks of the
// name-ordered models. Each model's slices are its own, except Versions,
// which a model whose versions did not change shares with the last snapshot.
func (p *poll) assemble() *sources.Snapshot {
	names := make([]string, 0, len(p.models))
	for name := range p.models {
		names = append(names, name)
	}
	slices.Sort(names)
	snap := &sources.Snapshot{Models: make([]sources.Model, len(names))}
	built := make([]builtModel, len(names))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(names)/64))
	chunk := (len(names) + workers - 1) / max(workers, 1)
	var wg sync.WaitGroup
	for lo := 0; lo < len(names); lo += chunk {
		hi := min(lo+chunk, len(names))
		wg.Go(func() { p.buildModels(names[lo:hi], snap.Models[lo:hi], built[lo:hi]) })
	}
	wg.Wait()
	p.next.models = make(map[string]builtModel, len(names))
	for i, name := range names {
		p.next.models[name] = built[i]
	}
	return snap
}

// buildModels builds the models named into out, and what they were built
// from into built. A version's Tags and Raw are those of its decoded value
// (sorted when decoded), shared with the cache.
func (p *poll) buildModels(names []string, out []sources.Model, built []builtModel) {
	var fresh []int
	nv, nkv := 0, 0
	for i, name := range names {
		st := p.models[name]
		nkv += len(st.m.Tags) + len(st.m.Raw)
		if last, ok := p.last.models[name]; ok && p.unchanged(name, st, last) {
			built[i] = last
			continue
		}
		fresh = append(fresh, i)
		nv += len(st.versions)
	}
	vslab := make([]sources.Version, nv)
	for _, i := range fresh {
		name := names[i]
		st := p.models[name]
		n := len(st.versions)
		vs := vslab[:n:n]
		vslab = vslab[n:]
		requests := false
		for j, v := range st.versions {
			sv := &vs[j]
			*sv = v.v
			sv.Aliases = []string{}
			if a := st.aliases[sv.ID]; len(a) > 0 {
				sv.Aliases = slices.Sorted(slices.Values(a))
			}
			if r := p.requests[versionRef{name, sv.ID}]; len(r) > 0 {
				slices.SortFunc(r, func(a, b sources.Request) int { return strings.Compare(a.ID, b.ID) })
				sv.Requests = r
				requests = true
			}
		}
		built[i] = builtModel{from: st.versions, aliases: st.aliases, requests: requests, versions: vs}
	}
	// The model-level slices are copied: each snapshot may change its
	// models (the diff carries model ids over).
	kvslab := make([]sources.KV, nkv)
	kvs := func(kv []sources.KV) []sources.KV {
		if kv == nil {
			return nil
		}
		n := copy(kvslab, kv)
		out := kvslab[:n:n]
		kvslab = kvslab[n:]
		return out
	}
	for i, name := range names {
		st := p.models[name]
		m := &out[i]
		*m = st.m
		m.Tags, m.Raw = kvs(m.Tags), kvs(m.Raw)
		sources.SortKV(m.Tags)
		sources.SortKV(m.Raw)
		m.URL = p.c.ModelURL(name)
		m.Versions = built[i].versions
	}
}

// unchanged reports whether the versions of st would build what last holds:
// the same decoded versions and aliases, and (Databricks) no open request
// now or then.
func (p *poll) unchanged(name string, st *modelState, last builtModel) bool {
	if last.requests || !slices.Equal(st.versions, last.from) || !maps.EqualFunc(st.aliases, last.aliases, slices.Equal) {
		return false
	}
	for _, v := range st.versions {
		if len(p.requests[versionRef{name, v.v.ID}]) > 0 {
			return false
		}
	}
	return true
}
