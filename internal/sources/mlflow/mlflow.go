// Package mlflow reads the MLflow model registry over its REST API: open
// source MLflow 2.x and 3.x, and the Databricks workspace registry (the same
// endpoints, plus transition requests).
//
// One poll lists the registered models (registered-models/search, pages of
// 1000), reads the versions with model-versions/search in the largest page
// the registry allows, and confirms every model or version that the last
// snapshot had and this one lacks with a direct get before leaving it out:
// search pages are offsets, so rows shift between pages when the registry
// changes during a poll. Open-source MLflow 2.x and 3.x include each model's
// aliases, tags and description in the model search; when some model of the
// listing carries aliases, the listing is the models' state. Otherwise (a
// registry whose search omits aliases, or one without any alias, which look
// the same) each model in scope is read with registered-models/get.
package mlflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// REST endpoints used by the client.
const (
	pathSearchModels   = "/api/2.0/mlflow/registered-models/search"
	pathGetModel       = "/api/2.0/mlflow/registered-models/get"
	pathSearchVersions = "/api/2.0/mlflow/model-versions/search"
	pathGetVersion     = "/api/2.0/mlflow/model-versions/get"
	pathListRequests   = "/api/2.0/mlflow/transition-requests/list"
)

// Page sizes and defaults.
const (
	modelsPageSize             = 1000
	versionsPageSize           = 200000
	versionsPageSizeDatabricks = 10000
	defaultConcurrency         = 8
	idleConnTimeout            = 5 * time.Second
	// filteredSearchMax is the largest number of models in scope for which
	// one filtered version search per model beats one search of the whole
	// registry, provided they are at most a quarter of the registry.
	filteredSearchMax = 32
)

// Options are the dependencies of a Client.
type Options struct {
	// HTTPClient sends the requests; nil builds one from the config
	// (timeouts, ca_file).
	HTTPClient *http.Client
	// Clock times retries and request timeouts; nil is the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Client is an MLflow or Databricks workspace-registry source.
type Client struct {
	name        string
	typ         string
	databricks  bool
	http        *sources.HTTP
	base        string
	globs       []string
	concurrency int
	// modelsPage and versionsPage are the page sizes of the two searches.
	modelsPage   int
	versionsPage int
	log          *slog.Logger
	// cache holds what the last successful poll read and built;
	// minCachedPage is the smallest answer it keeps.
	cache         cache
	minCachedPage int
}

var _ sources.Source = (*Client)(nil)

// New returns the source configured by cfg (cfg.Type mlflow or databricks).
func New(cfg config.Source, opts Options) (*Client, error) {
	if cfg.Type != sources.TypeMLflow && cfg.Type != sources.TypeDatabricks {
		return nil, fmt.Errorf("source %q: type %q is not mlflow or databricks", cfg.Name, cfg.Type)
	}
	for _, g := range cfg.Models {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("source %q: models: bad pattern %q: %w", cfg.Name, g, err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTPClient
	if hc == nil {
		var err error
		if hc, err = sources.NewHTTPClient(cfg); err != nil {
			return nil, err
		}
		if tr, ok := hc.Transport.(*http.Transport); ok {
			// MLflow's servers close idle connections after a few seconds
			// (gunicorn 2 s, uvicorn 5 s): keeping them longer between
			// polls only holds memory.
			tr.IdleConnTimeout = idleConnTimeout
		}
	}
	h, err := sources.NewHTTP(cfg, sources.HTTPOptions{Client: hc, Clock: opts.Clock, Logger: log})
	if err != nil {
		return nil, err
	}
	c := &Client{
		name:          cfg.Name,
		typ:           cfg.Type,
		databricks:    cfg.Type == sources.TypeDatabricks,
		http:          h,
		base:          h.BaseURL(),
		globs:         cfg.Models,
		concurrency:   cfg.Concurrency,
		modelsPage:    modelsPageSize,
		versionsPage:  versionsPageSize,
		log:           log,
		minCachedPage: minCachedPage,
	}
	if c.concurrency <= 0 {
		c.concurrency = defaultConcurrency
	}
	if c.databricks {
		c.versionsPage = versionsPageSizeDatabricks
	}
	return c, nil
}

// Name returns the configured source name.
func (c *Client) Name() string { return c.name }

// Type returns sources.TypeMLflow or sources.TypeDatabricks.
func (c *Client) Type() string { return c.typ }

func (c *Client) inScope(name string) bool {
	if len(c.globs) == 0 {
		return true
	}
	for _, g := range c.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// ModelURL returns the registry page of a model.
func (c *Client) ModelURL(name string) string {
	if c.databricks {
		return c.base + "/#mlflow/models/" + url.PathEscape(name)
	}
	return c.base + "/#/models/" + url.PathEscape(name)
}

// VersionURL returns the registry page of a model version.
func (c *Client) VersionURL(name, v string) string {
	return c.ModelURL(name) + "/versions/" + url.PathEscape(v)
}

// Snapshot reads the whole registry (the models in scope) and returns its
// state, or an error naming the source and the endpoint that failed.
//
// Answers byte-identical to those of the last successful poll are not decoded
// again, and a model whose versions did not change keeps the Versions slice
// of the last snapshot: consecutive snapshots of a client share those slices,
// and strings, which neither the client nor its callers modify.
func (c *Client) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	start := c.http.Requests()
	p := &poll{c: c, models: map[string]*modelState{}, last: c.cache.get()}
	p.next.pages = map[string]cachedPage{}
	snap, err := p.run(ctx, prev.Snapshot)
	if err != nil {
		return sources.Result{}, err
	}
	c.cache.set(p.next)
	return sources.Result{Snapshot: snap, Requests: int(c.http.Requests() - start)}, nil
}

// versionRef names one version of one model.
type versionRef struct{ model, version string }

// modelState is one model being assembled.
type modelState struct {
	model
	// versions are the versions read, in the order read; once sorted, by
	// version number, one per version. They MUST NOT be modified: they
	// belong to cached answers.
	versions []*version
	sorted   bool
}

// add appends the versions vs (rows repeat across pages when the registry
// changes during a poll: sort keeps the newest copy). A model's first set of
// versions is kept as given (sorted, from a versionsPage), so it is never
// appended to in place.
func (m *modelState) add(vs ...*version) {
	if len(m.versions) == 0 {
		m.versions = vs[:len(vs):len(vs)]
		return
	}
	m.versions = append(m.versions, vs...)
	m.sorted = false
}

// sort orders the versions by number and keeps one copy of each.
func (m *modelState) sort() {
	if !m.sorted {
		m.versions = sortVersions(m.versions)
		m.sorted = true
	}
}

// sortVersions sorts vs in place by version number and keeps one copy of
// each: the one updated last, and of equal copies the one read last.
func sortVersions(vs []*version) []*version {
	slices.SortStableFunc(vs, func(a, b *version) int { return cmp.Compare(a.v.Order, b.v.Order) })
	out := vs[:0]
	for i := 0; i < len(vs); {
		best, j := vs[i], i+1
		for ; j < len(vs) && vs[j].v.Order == best.v.Order; j++ {
			if vs[j].updated >= best.updated {
				best = vs[j]
			}
		}
		out = append(out, best)
		i = j
	}
	clear(vs[len(out):])
	return out
}

// poll is the state of one Snapshot call.
type poll struct {
	c      *Client
	models map[string]*modelState
	states []modelState // storage for models, see reserve
	// requests are the open transition requests by version (Databricks).
	requests map[versionRef][]sources.Request
	// last is what the last successful poll left; next collects this
	// poll's answers (guarded by mu) and built models.
	last cacheState
	mu   sync.Mutex
	next cacheState
}

// sortModels sorts the versions of every model.
func (p *poll) sortModels() {
	for _, m := range p.models {
		m.sort()
	}
}

func (p *poll) run(ctx context.Context, prev *sources.Snapshot) (*sources.Snapshot, error) {
	var pages []versionsPage
	searchAll := func(ctx context.Context) error {
		return p.searchVersions(ctx, "", func(page versionsPage) { pages = append(pages, page) })
	}
	if len(p.c.globs) == 0 {
		// Every model is in scope: one search of the whole registry, read
		// while the models are listed and read.
		if err := p.listAndGet(ctx, searchAll); err != nil {
			return nil, err
		}
	} else {
		l, err := p.listModels(ctx)
		if err != nil {
			return nil, err
		}
		// A few models of many: one filtered search per model.
		each := len(l.names) <= filteredSearchMax && 4*len(l.names) <= l.total
		var also func(context.Context) error
		if len(l.names) > 0 && !each {
			also = searchAll
		}
		if err := p.getModels(ctx, l, also, p.c.concurrency); err != nil {
			return nil, err
		}
		if len(l.names) > 0 && each {
			if err := p.searchEach(ctx, l.names); err != nil {
				return nil, err
			}
		}
	}
	for _, page := range pages {
		p.keep(page, "")
	}
	if prev != nil {
		if err := p.confirmModels(ctx, prev); err != nil {
			return nil, err
		}
		p.sortModels()
		if err := p.confirmVersions(ctx, prev); err != nil {
			return nil, err
		}
	}
	p.sortModels()
	if p.c.databricks {
		if err := p.listRequests(ctx); err != nil {
			return nil, err
		}
	}
	return p.assemble(), nil
}

// listAndGet runs search beside listing the models and reading each, within
// the source's concurrency.
func (p *poll) listAndGet(ctx context.Context, search func(context.Context) error) error {
	listAndGet := func(ctx context.Context, limit int) error {
		l, err := p.listModels(ctx)
		if err != nil {
			return err
		}
		return p.getModels(ctx, l, nil, limit)
	}
	if p.c.concurrency < 2 {
		if err := search(ctx); err != nil {
			return err
		}
		return listAndGet(ctx, 1)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return search(gctx) })
	g.Go(func() error { return listAndGet(gctx, p.c.concurrency-1) })
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// listing is what registered-models/search returned.
type listing struct {
	// names are the models in scope, deduplicated, in listing order.
	names []string
	// total counts every model listed, in scope or not.
	total int
	// models holds the last copy listed of each model in scope.
	models map[string]*listedModel
	// aliases reports whether some model listed carried an aliases key.
	aliases bool
}

// listModels pages through registered-models/search.
func (p *poll) listModels(ctx context.Context) (listing, error) {
	l := listing{models: map[string]*listedModel{}}
	seen := map[string]bool{}
	token := ""
	for {
		q := url.Values{"max_results": {strconv.Itoa(p.c.modelsPage)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page listedPage
		call := sources.Call{Method: http.MethodGet, Path: pathSearchModels, Query: q}
		err := p.c.http.Do(ctx, call, func(b []byte) error {
			var err error
			page, err = decodePage(p, call, b, p.c.decodeModelsPage)
			return err
		})
		if err != nil {
			return listing{}, err
		}
		l.aliases = l.aliases || page.aliases
		for i := range page.models {
			lm := &page.models[i]
			if !seen[lm.name] {
				seen[lm.name] = true
				l.total++
				if p.c.inScope(lm.name) {
					l.names = append(l.names, lm.name)
				}
			}
			if p.c.inScope(lm.name) {
				l.models[lm.name] = lm // a later page is a later read
			}
		}
		if token = page.next; token == "" {
			return l, nil
		}
	}
}

// getModel reads one model with registered-models/get.
func (p *poll) getModel(ctx context.Context, name string) (model, error) {
	var m model
	err := p.c.http.Do(ctx, sources.Call{Method: http.MethodGet, Path: pathGetModel, Query: url.Values{"name": {name}}},
		func(b []byte) error {
			var err error
			if m, err = decodeModel(b); err == nil && m.m.Name != name {
				err = malformed("asked for model %q, got %q", name, m.m.Name)
			}
			m.m.URL = p.c.ModelURL(name)
			return err
		})
	return m, err
}

// getModels adds the models listed in scope. When the registry's search
// answers carry aliases, the listing holds everything registered-models/get
// would say, and also (when not nil) runs alone. Otherwise it reads each
// model with registered-models/get, running also among the same set of at
// most limit concurrent requests: a registry whose search omits aliases
// (older MLflow, Databricks), or one where no model has an alias, which looks
// the same.
func (p *poll) getModels(ctx context.Context, l listing, also func(context.Context) error, limit int) error {
	if l.aliases {
		p.reserve(len(l.names))
		for _, name := range l.names {
			lm := l.models[name]
			if lm.err != nil {
				return p.c.http.Errorf(sources.Call{Method: http.MethodGet, Path: pathSearchModels}, "decode response: %w", lm.err)
			}
			p.addModel(lm.m)
		}
		if also == nil {
			return nil
		}
		return also(ctx)
	}
	names := l.names
	got := make([]model, len(names))
	err := p.eachLimit(ctx, len(names)+1, limit, func(ctx context.Context, i int) error {
		if i == 0 {
			if also == nil {
				return nil
			}
			return also(ctx)
		}
		i--
		m, err := p.getModel(ctx, names[i])
		if errors.Is(err, sources.ErrNotFound) {
			return fmt.Errorf("%w (model %q was listed by search: the registry changed during the poll)", err, names[i])
		}
		got[i] = m
		return err
	})
	if err != nil {
		return err
	}
	p.reserve(len(got))
	for _, m := range got {
		p.addModel(m)
	}
	return nil
}

// reserve makes room for n more models.
func (p *poll) reserve(n int) {
	if len(p.models) == 0 && n > 0 {
		p.models = make(map[string]*modelState, n)
		p.states = make([]modelState, 0, n)
	}
}

func (p *poll) addModel(m model) *modelState {
	var st *modelState
	if len(p.states) < cap(p.states) {
		p.states = append(p.states, modelState{model: m, sorted: true})
		st = &p.states[len(p.states)-1]
	} else {
		st = &modelState{model: m, sorted: true}
	}
	p.models[m.m.Name] = st
	return st
}

// each runs fn for 0..n-1 with the source's concurrency, stopping at the first error.
func (p *poll) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	return p.eachLimit(ctx, n, p.c.concurrency, fn)
}

// eachLimit is each with at most limit calls at a time.
func (p *poll) eachLimit(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := 0; i < n; i++ {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// searchVersions pages through model-versions/search with filter.
func (p *poll) searchVersions(ctx context.Context, filter string, keep func(versionsPage)) error {
	token := ""
	for {
		q := url.Values{"max_results": {strconv.Itoa(p.c.versionsPage)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var page versionsPage
		call := sources.Call{Method: http.MethodGet, Path: pathSearchVersions, Query: q}
		err := p.c.http.Do(ctx, call, func(b []byte) error {
			var err error
			page, err = decodePage(p, call, b, p.c.decodeVersionsPage)
			return err
		})
		if err != nil {
			return err
		}
		keep(page)
		if token = page.next; token == "" {
			return nil
		}
	}
}

// searchAll reads every version of the registry and keeps those of the
// models read.
func (p *poll) searchAll(ctx context.Context) error {
	return p.searchVersions(ctx, "", func(page versionsPage) { p.keep(page, "") })
}

// keep adds the versions of a page to their models, if read (and, when only
// is set, to that model only).
func (p *poll) keep(page versionsPage, only string) {
	if only != "" {
		if m, ok := p.models[only]; ok {
			m.add(page.byModel[only]...)
		}
		return
	}
	for name, vs := range page.byModel {
		if m, ok := p.models[name]; ok {
			m.add(vs...)
		}
	}
}

// nameFilter returns the search filter selecting one model, or false when the
// name cannot be quoted.
func nameFilter(name string) (string, bool) {
	switch {
	case !strings.Contains(name, "'"):
		return "name='" + name + "'", true
	case !strings.Contains(name, `"`):
		return `name="` + name + `"`, true
	}
	return "", false
}

// searchEach reads the versions of each named model with its own search.
func (p *poll) searchEach(ctx context.Context, names []string) error {
	for _, n := range names {
		if _, ok := nameFilter(n); !ok {
			return p.searchAll(ctx)
		}
	}
	got := make([][]versionsPage, len(names))
	err := p.each(ctx, len(names), func(ctx context.Context, i int) error {
		f, _ := nameFilter(names[i])
		return p.searchVersions(ctx, f, func(page versionsPage) { got[i] = append(got[i], page) })
	})
	if err != nil {
		return err
	}
	for i, n := range names {
		for _, page := range got[i] {
			p.keep(page, n)
		}
	}
	return nil
}

// confirm runs a direct get of an object the search did not return. It
// reports false when the registry answers 404 RESOURCE_DOES_NOT_EXIST; any
// other failure is retried once, then returned.
func (p *poll) confirm(ctx context.Context, get func(ctx context.Context) error) (bool, error) {
	var err error
	for try := 0; try < 2; try++ {
		err = get(ctx)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, sources.ErrNotFound):
			return false, nil
		case ctx.Err() != nil:
			return false, err
		}
	}
	return false, err
}

// confirmModels checks every model of prev that is in scope but was not
// listed: a 404 confirms its deletion (or rename); a model that is still
// there is read completely and kept.
func (p *poll) confirmModels(ctx context.Context, prev *sources.Snapshot) error {
	var missing []string
	for _, m := range prev.Models {
		if _, ok := p.models[m.Name]; !ok && p.c.inScope(m.Name) {
			missing = append(missing, m.Name)
		}
	}
	found := make([]*model, len(missing))
	err := p.each(ctx, len(missing), func(ctx context.Context, i int) error {
		var m model
		ok, err := p.confirm(ctx, func(ctx context.Context) error {
			var err error
			m, err = p.getModel(ctx, missing[i])
			return err
		})
		if ok {
			found[i] = &m
		}
		return err
	})
	if err != nil {
		return err
	}
	var back []string
	for i, m := range found {
		if m != nil {
			p.c.log.Info("model missing from search still exists", "source", p.c.name, "model", missing[i])
			p.addModel(*m)
			back = append(back, missing[i])
		}
	}
	if len(back) == 0 {
		return nil
	}
	return p.searchEach(ctx, back)
}

// missingFrom returns the ids of the versions of prev that have is missing
// (have sorted by number; prev normally too).
func missingFrom(prev []sources.Version, have []*version) []string {
	var out []string
	j := 0
	for i := range prev {
		v := &prev[i]
		if i > 0 && v.Order < prev[i-1].Order {
			j = 0 // prev is not sorted: search from the start
		}
		for j < len(have) && have[j].v.Order < v.Order {
			j++
		}
		if j == len(have) || have[j].v.Order != v.Order || have[j].v.ID != v.ID {
			out = append(out, v.ID)
		}
	}
	return out
}

// confirmVersions checks every version of prev whose model is present but
// that the search did not return.
func (p *poll) confirmVersions(ctx context.Context, prev *sources.Snapshot) error {
	var missing []versionRef
	for _, m := range prev.Models {
		st, ok := p.models[m.Name]
		if !ok {
			continue
		}
		for _, id := range missingFrom(m.Versions, st.versions) {
			missing = append(missing, versionRef{m.Name, id})
		}
	}
	found := make([]*version, len(missing))
	err := p.each(ctx, len(missing), func(ctx context.Context, i int) error {
		r := missing[i]
		call := sources.Call{Method: http.MethodGet, Path: pathGetVersion, Query: url.Values{"name": {r.model}, "version": {r.version}}}
		var v version
		ok, err := p.confirm(ctx, func(ctx context.Context) error {
			return p.c.http.Do(ctx, call, func(b []byte) error {
				var err error
				if v, err = decodeVersion(b); err == nil && (v.model != r.model || v.v.ID != r.version) {
					err = malformed("asked for %s version %s, got %s version %s", r.model, r.version, v.model, v.v.ID)
				}
				v.v.URL = p.c.VersionURL(v.model, v.v.ID)
				return err
			})
		})
		if ok {
			found[i] = &v
		}
		return err
	})
	if err != nil {
		return err
	}
	for i, v := range found {
		if v != nil {
			p.c.log.Info("version missing from search still exists", "source", p.c.name,
				"model", missing[i].model, "version", missing[i].version)
			p.models[v.model].add(v)
		}
	}
	return nil
}

// listRequests reads the open transition requests of every version that is
// not Archived (Databricks).
func (p *poll) listRequests(ctx context.Context) error {
	var refs []versionRef
	for name, m := range p.models {
		for _, v := range m.versions {
			if v.v.Stage != "Archived" {
				refs = append(refs, versionRef{name, v.v.ID})
			}
		}
	}
	got := make([][]sources.Request, len(refs))
	err := p.each(ctx, len(refs), func(ctx context.Context, i int) error {
		q := url.Values{"name": {refs[i].model}, "version": {refs[i].version}}
		return p.c.http.Do(ctx, sources.Call{Method: http.MethodGet, Path: pathListRequests, Query: q}, func(b []byte) error {
			var err error
			got[i], err = decodeRequests(b)
			return err
		})
	})
	if err != nil {
		return err
	}
	p.requests = make(map[versionRef][]sources.Request, len(refs))
	for i, r := range refs {
		if len(got[i]) > 0 {
			p.requests[r] = got[i]
		}
	}
	return nil
}
