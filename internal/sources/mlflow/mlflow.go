// Package mlflow reads the MLflow model registry over its REST API: open
// source MLflow 2.x and 3.x, and the Databricks workspace registry (the same
// endpoints, plus transition requests).
//
// One poll lists the registered models (registered-models/search, pages of
// 1000), reads each model in scope with registered-models/get (the only
// answer that carries aliases), reads the versions with model-versions/search
// in the largest page the registry allows, and confirms every model or
// version that the last snapshot had and this one lacks with a direct get
// before leaving it out: search pages are offsets, so rows shift between pages
// when the registry changes during a poll.
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
	"runtime"
	"slices"
	"strings"
	"sync"

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
	h, err := sources.NewHTTP(cfg, sources.HTTPOptions{Client: opts.HTTPClient, Clock: opts.Clock, Logger: log})
	if err != nil {
		return nil, err
	}
	c := &Client{
		name:         cfg.Name,
		typ:          cfg.Type,
		databricks:   cfg.Type == sources.TypeDatabricks,
		http:         h,
		base:         h.BaseURL(),
		globs:        cfg.Models,
		concurrency:  cfg.Concurrency,
		modelsPage:   modelsPageSize,
		versionsPage: versionsPageSize,
		log:          log,
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
func (c *Client) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	start := c.http.Requests()
	p := &poll{c: c, models: map[string]*modelState{}}
	snap, err := p.run(ctx, prev.Snapshot)
	if err != nil {
		return sources.Result{}, err
	}
	return sources.Result{Snapshot: snap, Requests: int(c.http.Requests() - start)}, nil
}

// versionRef names one version of one model.
type versionRef struct{ model, version string }

// modelState is one model being assembled.
type modelState struct {
	model
	versions map[string]*version
}

// add keeps v unless the model already has a newer copy of it (rows repeat
// across pages when the registry changes during a poll).
func (m *modelState) add(v *version) {
	if old, ok := m.versions[v.v.ID]; ok && old.updated > v.updated {
		return
	}
	m.versions[v.v.ID] = v
}

// poll is the state of one Snapshot call.
type poll struct {
	c      *Client
	models map[string]*modelState
}

func (p *poll) run(ctx context.Context, prev *sources.Snapshot) (*sources.Snapshot, error) {
	var pages [][]version
	searchAll := func(ctx context.Context) error {
		return p.searchVersions(ctx, "", func(page []version) { pages = append(pages, page) })
	}
	if len(p.c.globs) == 0 {
		// Every model is in scope: one search of the whole registry, read
		// while the models are listed and read.
		if err := p.listAndGet(ctx, searchAll); err != nil {
			return nil, err
		}
	} else {
		listed, total, err := p.listModels(ctx)
		if err != nil {
			return nil, err
		}
		// A few models of many: one filtered search per model.
		each := len(listed) <= filteredSearchMax && 4*len(listed) <= total
		var also func(context.Context) error
		if len(listed) > 0 && !each {
			also = searchAll
		}
		if err := p.getModels(ctx, listed, also, p.c.concurrency); err != nil {
			return nil, err
		}
		if len(listed) > 0 && each {
			if err := p.searchEach(ctx, listed); err != nil {
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
		if err := p.confirmVersions(ctx, prev); err != nil {
			return nil, err
		}
	}
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
		names, _, err := p.listModels(ctx)
		if err != nil {
			return err
		}
		return p.getModels(ctx, names, nil, limit)
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

// listModels pages through registered-models/search and returns the names in
// scope (deduplicated) and the number of models listed in all.
func (p *poll) listModels(ctx context.Context) ([]string, int, error) {
	seen := map[string]bool{}
	var names []string
	total := 0
	token := ""
	for {
		q := url.Values{"max_results": {fmt.Sprint(p.c.modelsPage)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page []string
		err := p.c.http.Do(ctx, sources.Call{Method: http.MethodGet, Path: pathSearchModels, Query: q}, func(b []byte) error {
			var err error
			page, token, err = decodeModelsPage(b)
			return err
		})
		if err != nil {
			return nil, 0, err
		}
		for _, n := range page {
			if seen[n] {
				continue
			}
			seen[n] = true
			total++
			if p.c.inScope(n) {
				names = append(names, n)
			}
		}
		if token == "" {
			return names, total, nil
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
			return err
		})
	return m, err
}

// getModels reads the named models, and runs also (when not nil) among the
// same set of at most limit concurrent requests.
func (p *poll) getModels(ctx context.Context, names []string, also func(context.Context) error, limit int) error {
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
	for _, m := range got {
		p.addModel(m)
	}
	return nil
}

func (p *poll) addModel(m model) *modelState {
	st := &modelState{model: m, versions: map[string]*version{}}
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
func (p *poll) searchVersions(ctx context.Context, filter string, keep func([]version)) error {
	token := ""
	for {
		q := url.Values{"max_results": {fmt.Sprint(p.c.versionsPage)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var page []version
		err := p.c.http.Do(ctx, sources.Call{Method: http.MethodGet, Path: pathSearchVersions, Query: q}, func(b []byte) error {
			var err error
			page, token, err = decodeVersionsPage(b)
			return err
		})
		if err != nil {
			return err
		}
		keep(page)
		if token == "" {
			return nil
		}
	}
}

// searchAll reads every version of the registry and keeps those of the
// models read.
func (p *poll) searchAll(ctx context.Context) error {
	return p.searchVersions(ctx, "", func(page []version) { p.keep(page, "") })
}

// keep adds the versions of a page to their models, if read (and, when only
// is set, to that model only).
func (p *poll) keep(page []version, only string) {
	for i := range page {
		v := &page[i]
		if only != "" && v.model != only {
			continue
		}
		if m, ok := p.models[v.model]; ok {
			m.add(v)
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
	got := make([][][]version, len(names))
	err := p.each(ctx, len(names), func(ctx context.Context, i int) error {
		f, _ := nameFilter(names[i])
		return p.searchVersions(ctx, f, func(page []version) { got[i] = append(got[i], page) })
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

// confirmVersions checks every version of prev whose model is present but
// that the search did not return.
func (p *poll) confirmVersions(ctx context.Context, prev *sources.Snapshot) error {
	var missing []versionRef
	for _, m := range prev.Models {
		st, ok := p.models[m.Name]
		if !ok {
			continue
		}
		for _, v := range m.Versions {
			if _, ok := st.versions[v.ID]; !ok {
				missing = append(missing, versionRef{m.Name, v.ID})
			}
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
		for id, v := range m.versions {
			if v.v.Stage != "Archived" {
				refs = append(refs, versionRef{name, id})
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
	for i, r := range refs {
		p.models[r.model].versions[r.version].v.Requests = got[i]
	}
	return nil
}

// assemble builds the sorted snapshot. Models are built and sorted in
// parallel chunks (Sort orders each model independently, then the models by
// name, so sorting the chunks of a name-ordered list sorts the whole).
func (p *poll) assemble() *sources.Snapshot {
	names := make([]string, 0, len(p.models))
	for name := range p.models {
		names = append(names, name)
	}
	slices.Sort(names)
	snap := &sources.Snapshot{Models: make([]sources.Model, len(names))}
	workers := min(runtime.GOMAXPROCS(0), max(1, len(names)/64))
	chunk := (len(names) + workers - 1) / max(workers, 1)
	var wg sync.WaitGroup
	for lo := 0; lo < len(names); lo += chunk {
		hi := min(lo+chunk, len(names))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				snap.Models[i] = p.buildModel(names[i])
			}
			(&sources.Snapshot{Models: snap.Models[lo:hi]}).Sort()
		})
	}
	wg.Wait()
	snap.Sort() // on sorted input this only checks the order
	return snap
}

func (p *poll) buildModel(name string) sources.Model {
	st := p.models[name]
	m := st.m
	m.URL = p.c.ModelURL(name)
	m.Versions = make([]sources.Version, 0, len(st.versions))
	for id, v := range st.versions {
		m.Versions = append(m.Versions, v.v)
		sv := &m.Versions[len(m.Versions)-1]
		sv.URL = m.URL + "/versions/" + id // ids are validated decimal numbers
		if a := st.aliases[id]; len(a) > 0 {
			sv.Aliases = append([]string{}, a...)
		}
	}
	slices.SortFunc(m.Versions, func(a, b sources.Version) int { return cmp.Compare(a.Order, b.Order) })
	return m
}
