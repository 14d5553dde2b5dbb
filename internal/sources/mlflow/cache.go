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
// search answers of the last successful poll (those of 64 KiB or more) with
// their decoded values, and the versions it built of each model: an answer
// byte-identical to the last one decodes to the same value, so it is not
// decoded again, and a model whose versions are the same decoded values as
// last time keeps its built Versions. A poll that fails leaves the cache as
// it was. The cache holds about 1.7 KB per version, the answer's bytes
// included.

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

// minCachedPage is the size from which an answer is kept: a smaller one
// decodes in less time than it is worth keeping in memory between polls.
const minCachedPage = 64 << 10

// decodePage decodes an answer of a search call with decode, or returns the
// value decoded from the same bytes by the last poll.
func decodePage[T any](p *poll, call sources.Call, body []byte, decode func([]byte) (T, error)) (T, error) {
	key := call.Path + "?" + call.Query.Encode()
	if c, ok := p.last.pages[key]; ok && bytes.Equal(c.body, body) {
		p.remember(key, c)
		return c.value.(T), nil
	}
	v, err := decode(body)
	if err == nil && len(body) >= p.c.minCachedPage {
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
		lm.m.m.URL = c.ModelURL(lm.name)
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
	states := p.sortedModels()
	snap := &sources.Snapshot{Models: make([]sources.Model, len(states))}
	built := make([]builtModel, len(states))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(states)/64))
	chunk := (len(states) + workers - 1) / max(workers, 1)
	var wg sync.WaitGroup
	for lo := 0; lo < len(states); lo += chunk {
		hi := min(lo+chunk, len(states))
		wg.Go(func() { p.buildModels(states[lo:hi], snap.Models[lo:hi], built[lo:hi]) })
	}
	wg.Wait()
	if len(p.next.pages) > 0 {
		// Built versions are reused only with their cached answers.
		p.next.models = make(map[string]builtModel, len(states))
		for i, st := range states {
			p.next.models[st.m.Name] = built[i]
		}
	}
	return snap
}

// sortedModels returns the models by name: in the order of p.states when it
// holds them all already sorted (the model search lists by name), else
// sorted here.
func (p *poll) sortedModels() []*modelState {
	byName := func(a, b *modelState) int { return strings.Compare(a.m.Name, b.m.Name) }
	out := make([]*modelState, 0, len(p.models))
	if len(p.states) == len(p.models) {
		for i := range p.states {
			out = append(out, &p.states[i])
		}
		if slices.IsSortedFunc(out, byName) {
			return out
		}
		out = out[:0]
	}
	for _, st := range p.models {
		out = append(out, st)
	}
	slices.SortFunc(out, byName)
	return out
}

// buildModels builds the models states into out, and what they were built
// from into built. Tags and Raw are those of the decoded values (sorted when
// decoded), shared with the cache.
func (p *poll) buildModels(states []*modelState, out []sources.Model, built []builtModel) {
	var fresh []int
	nv := 0
	for i, st := range states {
		if last, ok := p.last.models[st.m.Name]; ok && p.unchanged(st, last) {
			built[i] = last
			continue
		}
		fresh = append(fresh, i)
		nv += len(st.versions)
	}
	vslab := make([]sources.Version, nv)
	for _, i := range fresh {
		st := states[i]
		name := st.m.Name
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
	for i, st := range states {
		m := &out[i]
		*m = st.m
		m.Versions = built[i].versions
	}
}

// unchanged reports whether the versions of st would build what last holds:
// the same decoded versions and aliases, and (Databricks) no open request
// now or then.
func (p *poll) unchanged(st *modelState, last builtModel) bool {
	if last.requests || !sameVersions(st.versions, last.from) || !maps.EqualFunc(st.aliases, last.aliases, slices.Equal) {
		return false
	}
	if p.requests != nil {
		for _, v := range st.versions {
			if len(p.requests[versionRef{st.m.Name, v.v.ID}]) > 0 {
				return false
			}
		}
	}
	return true
}

// sameVersions reports whether a and b hold the same decoded versions; when
// a model's versions come from one cached answer they are the same slice.
func sameVersions(a, b []*version) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}
