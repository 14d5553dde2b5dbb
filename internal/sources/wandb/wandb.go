// Package wandb watches Weights & Biases model registries through W&B's
// GraphQL API (POST <url>/graphql, basic auth "api:<API key>"): the W&B
// Registry (projects `wandb-registry-<name>` of the organization's entity)
// and the older Model Registry (project `model-registry` of a team entity).
//
// A snapshot holds one model per collection, named
// `<entity>/<project>/<collection>` with the collection's ID as model_id (a
// renamed collection keeps it), and one version per linked artifact, `v<N>`
// ordered by the membership's versionIndex. W&B's automatic `latest` and
// `v<N>` aliases are left out. When the server still has the action-history
// fields (probed once), alias changes carry who made them and when.
//
// Requests: every version comes nested in the collection listing (100
// collections per page), so an unchanged registry of N collections costs
// ceil(N/100) requests per project; only collections with more than 100
// versions or alias actions need pages of their own. The next listing page is
// requested while the current one is decoded, and a page whose bytes equal
// the last poll's is not decoded again.
package wandb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
)

// DefaultURL is the W&B cloud API.
const DefaultURL = "https://api.wandb.ai"

const (
	registryPrefix = "wandb-registry-"
	legacyProject  = "model-registry"
	// defaultConcurrency bounds the follow-up page requests in flight.
	defaultConcurrency = 8
)

// Options are the dependencies of a Client. Zero values take defaults.
type Options struct {
	// HTTPClient sends the requests; nil builds one from the source config
	// (timeouts, ca_file).
	HTTPClient *http.Client
	// Clock times retries and request timeouts; nil is the wall clock.
	Clock clock.Clock
	// Logger receives retry warnings and the action-history probe result.
	Logger *slog.Logger
}

// Client is a W&B registry source.
type Client struct {
	name        string
	cfg         config.Source
	http        *sources.HTTP
	log         *slog.Logger
	web         string // base URL of the W&B web app
	concurrency int

	polling   sync.Mutex // one Snapshot at a time
	mu        sync.Mutex
	orgEntity string                 // resolved once per Client
	history   historyState           // probed once, kept in memory and in Aux
	pages     map[string]*listedPage // listing pages of the last successful poll
	nextPages map[string]*listedPage // listing pages of the poll in progress
}

var _ sources.Source = (*Client)(nil)

type historyState int

const (
	historyUnknown historyState = iota
	historyPresent
	historyAbsent
)

// aux is the auxiliary state a Client keeps between polls.
type aux struct {
	// ActionHistory records the probe: "present" or "absent".
	ActionHistory string `json:"action_history,omitempty"`
}

// New returns the W&B source of cfg. cfg.URL defaults to DefaultURL (a
// self-hosted server is its base URL); the API key is cfg.APIKey or the
// content of cfg.APIKeyFile.
func New(cfg config.Source, opts Options) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.Organization == "" && len(cfg.Registries) > 0 {
		return nil, fmt.Errorf("source %q: registries need organization", cfg.Name)
	}
	if len(cfg.Registries) == 0 && len(cfg.LegacyEntities) == 0 {
		return nil, fmt.Errorf("source %q: set registries (with organization) or legacy_entities", cfg.Name)
	}
	for _, g := range cfg.Models {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("source %q: models: bad pattern %q: %w", cfg.Name, g, err)
		}
	}
	key := cfg.APIKey.Reveal()
	if key == "" && cfg.APIKeyFile != "" {
		b, err := os.ReadFile(cfg.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("source %q: api_key_file: %w", cfg.Name, err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return nil, fmt.Errorf("source %q: api_key is required", cfg.Name)
	}
	hc := opts.HTTPClient
	if hc == nil {
		var err error
		if hc, err = sources.NewHTTPClient(cfg); err != nil {
			return nil, err
		}
	}
	wrapped := *hc
	next := wrapped.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	wrapped.Transport = graphQLStatus{next: next}

	hcfg := cfg
	hcfg.Token, hcfg.TokenFile = "", ""
	hcfg.Username, hcfg.Password, hcfg.PasswordFile = "api", config.Secret(key), ""
	h, err := sources.NewHTTP(hcfg, sources.HTTPOptions{Client: &wrapped, Clock: opts.Clock, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = defaultConcurrency
	}
	return &Client{
		name:        cfg.Name,
		cfg:         cfg,
		http:        h,
		log:         log,
		web:         webBase(h.BaseURL()),
		concurrency: conc,
	}, nil
}

// webBase derives the web app's base URL from the API's: api.wandb.ai serves
// wandb.ai; a self-hosted or dedicated server serves both on one host.
func webBase(api string) string {
	u, err := url.Parse(api)
	if err != nil {
		return api
	}
	u.Host = strings.TrimPrefix(u.Host, "api.")
	return strings.TrimRight(u.String(), "/")
}

// Name returns the configured source name.
func (c *Client) Name() string { return c.name }

// Type returns "wandb".
func (c *Client) Type() string { return sources.TypeWandB }

// project is one watched project: a registry of the organization or a team's
// legacy Model Registry.
type project struct {
	entity, name string
	registry     string // registry name, "" for a legacy Model Registry
}

func (p project) String() string { return p.entity + "/" + p.name }

// Snapshot reads every watched collection with all its linked versions. It
// returns a complete snapshot or an error naming the source and the GraphQL
// operation that failed.
func (c *Client) Snapshot(ctx context.Context, prev sources.Previous) (sources.Result, error) {
	c.polling.Lock()
	defer c.polling.Unlock()
	before := c.http.Requests()
	history, err := c.actionHistory(ctx, prev.Aux)
	if err != nil {
		return sources.Result{}, err
	}
	projects, err := c.projects(ctx)
	if err != nil {
		return sources.Result{}, err
	}
	models, err := c.readAll(ctx, projects, history)
	if err != nil && history && isMissingField(err, "aliasActionHistory") {
		// The server lost the action-history fields since the probe.
		c.log.Warn("W&B server no longer serves action history; alias changes have no actor", "source", c.name)
		c.setHistory(historyAbsent)
		history = false
		models, err = c.readAll(ctx, projects, false)
	}
	if err != nil {
		return sources.Result{}, err
	}
	// Each model is in canonical order already (see model); this puts the
	// models in order, completing what Snapshot.Sort does.
	slices.SortFunc(models, func(a, b sources.Model) int { return strings.Compare(a.Name, b.Name) })
	snap := &sources.Snapshot{Models: models}
	state := "absent"
	if history {
		state = "present"
	}
	auxBytes, err := json.Marshal(aux{ActionHistory: state})
	if err != nil {
		return sources.Result{}, fmt.Errorf("source %q: encode aux: %w", c.name, err)
	}
	return sources.Result{Snapshot: snap, Aux: auxBytes, Requests: int(c.http.Requests() - before)}, nil
}

func (c *Client) setHistory(h historyState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.history = h
}

// actionHistory reports whether the server has the action-history fields:
// remembered in memory, else read from the aux state, else probed once.
func (c *Client) actionHistory(ctx context.Context, auxBytes []byte) (bool, error) {
	c.mu.Lock()
	h := c.history
	c.mu.Unlock()
	if h == historyUnknown && len(auxBytes) > 0 {
		var a aux
		if json.Unmarshal(auxBytes, &a) == nil {
			switch a.ActionHistory {
			case "present":
				h = historyPresent
			case "absent":
				h = historyAbsent
			}
		}
	}
	if h == historyUnknown {
		type probe struct {
			ArtifactCollection json.RawMessage `json:"artifactCollection"`
		}
		_, err := query[probe](ctx, c, opProbeHistory, "", queryProbeHistory, map[string]any{"id": probeCollectionID})
		var ge *graphQLError
		switch {
		case err == nil:
			h = historyPresent
		case isMissingField(err, "aliasActionHistory"):
			h = historyAbsent
		case errors.As(err, &ge):
			// The server validated the field and failed on the made-up ID.
			h = historyPresent
		default:
			return false, err
		}
		c.log.Info("W&B action history probed", "source", c.name, "present", h == historyPresent)
	}
	c.setHistory(h)
	return h == historyPresent, nil
}

// projects lists the watched projects, resolving the organization's entity
// once.
func (c *Client) projects(ctx context.Context) ([]project, error) {
	var out []project
	if len(c.cfg.Registries) > 0 {
		c.mu.Lock()
		entity := c.orgEntity
		c.mu.Unlock()
		if entity == "" {
			type orgData struct {
				Organization *struct {
					Name      string `json:"name"`
					OrgEntity *struct {
						Name string `json:"name"`
					} `json:"orgEntity"`
				} `json:"organization"`
			}
			d, err := query[orgData](ctx, c, opOrgEntity, c.cfg.Organization, queryOrgEntity, map[string]any{"org": c.cfg.Organization})
			if err != nil {
				return nil, err
			}
			if d.Organization == nil || d.Organization.OrgEntity == nil || d.Organization.OrgEntity.Name == "" {
				return nil, c.opError(opOrgEntity, c.cfg.Organization,
					fmt.Errorf("organization %q not found or has no registry entity", c.cfg.Organization))
			}
			entity = d.Organization.OrgEntity.Name
			c.mu.Lock()
			c.orgEntity = entity
			c.mu.Unlock()
		}
		for _, r := range c.cfg.Registries {
			name := strings.TrimPrefix(r, registryPrefix)
			out = append(out, project{entity: entity, name: registryPrefix + name, registry: name})
		}
	}
	for _, e := range c.cfg.LegacyEntities {
		out = append(out, project{entity: e, name: legacyProject})
	}
	return out, nil
}

// readAll reads every watched project and returns its models.
func (c *Client) readAll(ctx context.Context, projects []project, history bool) ([]sources.Model, error) {
	c.mu.Lock()
	c.nextPages = map[string]*listedPage{}
	c.mu.Unlock()
	var cols []*collection
	for _, p := range projects {
		got, err := c.listProject(ctx, p, history)
		if err != nil {
			return nil, err
		}
		cols = append(cols, got...)
	}
	if err := c.completePages(ctx, cols, history); err != nil {
		return nil, err
	}
	models := make([]sources.Model, 0, len(cols))
	for _, col := range cols {
		if col.model == nil {
			if err := c.convert(col); err != nil {
				return nil, err
			}
		}
		models = append(models, *col.model)
	}
	c.mu.Lock()
	c.pages, c.nextPages = c.nextPages, nil
	c.mu.Unlock()
	return models, nil
}

// convert turns a completely read collection into its model.
func (c *Client) convert(col *collection) error {
	m, err := c.model(col)
	if err != nil {
		return c.opError(opCollections, col.project.String()+"/"+col.node.Name, err)
	}
	col.model = &m
	return nil
}

// collection is one watched collection as read so far.
type collection struct {
	project     project
	node        *collectionNode
	memberships []*membershipNode
	actions     []*aliasActionNode
	moreMembers *string // cursor of the next membership page, if any
	moreActions *string
	model       *sources.Model // set once the collection is read completely
}

// listProject reads the collections of one project with their first pages of
// versions (and alias actions), keeping the collections the model filter
// selects. While one page is decoded, the next one is already requested
// (its cursor is read ahead from the body), so decoding hides behind the
// server's work.
func (c *Client) listProject(ctx context.Context, p project, history bool) ([]*collection, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := queryCollections
	if history {
		q = queryCollectionsHistory
	}
	type fetched struct {
		body []byte
		err  error
	}
	fetch := func(cursor *string) <-chan fetched {
		vars := map[string]any{"entity": p.entity, "project": p.name, "cursor": cursor,
			"perPage": collectionsPerPage, "versionsPerPage": membershipsPerPage}
		if history {
			vars["actionsPerPage"] = actionsPerPage
		}
		ch := make(chan fetched, 1)
		go func() {
			body, err := c.fetch(ctx, opCollections, p.String(), q, vars)
			ch <- fetched{body, err}
		}()
		return ch
	}

	c.mu.Lock()
	cached := c.pages
	c.mu.Unlock()
	var out []*collection
	seen := map[string]bool{}
	pg := newPager()
	var cursor *string
	pending := fetch(nil)
	for {
		f := <-pending
		if f.err != nil {
			return nil, f.err
		}
		var ahead <-chan fetched
		var aheadCursor string
		if pi, ok := peekPageInfo(f.body); ok && pi.HasNextPage && pi.EndCursor != nil && !pg.seen[*pi.EndCursor] {
			aheadCursor = *pi.EndCursor
			ahead = fetch(pi.EndCursor)
		}
		key := pageKey(p, cursor, history)
		page := cached[key]
		if page == nil || !bytes.Equal(page.body, f.body) {
			var err error
			if page, err = c.decodePage(p, f.body, history); err != nil {
				return nil, err
			}
		}
		c.mu.Lock()
		c.nextPages[key] = page
		c.mu.Unlock()
		for _, e := range page.entries {
			if seen[e.node.ID] {
				continue
			}
			seen[e.node.ID] = true
			col := &collection{project: p, node: e.node}
			if e.model != nil {
				m := cloneModel(e.model)
				col.model = &m
			} else {
				var err error
				if col, err = newCollection(p, e.node, history); err != nil {
					return nil, c.opError(opCollections, p.String()+"/"+e.node.Name, err)
				}
			}
			out = append(out, col)
		}
		more, err := pg.next(page.info, page.items)
		if err != nil {
			return nil, c.opError(opCollections, p.String(), err)
		}
		if !more {
			return out, nil
		}
		cursor = pg.cursor
		if ahead != nil && *pg.cursor == aheadCursor {
			pending = ahead
		} else {
			pending = fetch(pg.cursor)
		}
	}
}

// listedPage is one decoded page of a Collections answer, kept until the
// next poll: an unchanged registry answers with the same bytes, and then the
// page is not decoded and converted again.
type listedPage struct {
	body    []byte
	info    pageInfo
	items   int
	entries []pageEntry
}

// pageEntry is one selected collection of a page, with its model when the
// page held all of it.
type pageEntry struct {
	node  *collectionNode
	model *sources.Model
}

func pageKey(p project, cursor *string, history bool) string {
	k := fmt.Sprintf("%s|%v|", p, history)
	if cursor != nil {
		k += *cursor
	}
	return k
}

// decodePage decodes a Collections answer and converts the collections it
// holds completely.
func (c *Client) decodePage(p project, body []byte, history bool) (*listedPage, error) {
	d, err := decodeBody[collectionsData](c, opCollections, p.String(), body)
	if err != nil {
		return nil, err
	}
	if d.Project == nil {
		return nil, c.opError(opCollections, p.String(), errors.New("project not found (check organization, registries and legacy_entities)"))
	}
	conn := d.Project.ArtifactCollections
	if conn == nil {
		return nil, c.opError(opCollections, p.String(), errors.New("response has no artifactCollections"))
	}
	page := &listedPage{body: body, info: conn.PageInfo, items: len(conn.Edges)}
	for _, n := range nodes(conn.Edges) {
		if n.ID == "" || n.State == "DELETED" || !c.selected(p, n.Name) {
			continue
		}
		col, err := newCollection(p, n, history)
		if err != nil {
			return nil, c.opError(opCollections, p.String()+"/"+n.Name, err)
		}
		e := pageEntry{node: n}
		if col.moreMembers == nil && col.moreActions == nil {
			m, err := c.model(col)
			if err != nil {
				return nil, c.opError(opCollections, p.String()+"/"+n.Name, err)
			}
			e.model = &m
		}
		page.entries = append(page.entries, e)
	}
	return page, nil
}

// newCollection takes a collection as listed, with its first pages.
func newCollection(p project, n *collectionNode, history bool) (*collection, error) {
	col := &collection{project: p, node: n}
	if n.ArtifactMemberships == nil {
		return nil, fmt.Errorf("collection %s has no artifactMemberships", n.ID)
	}
	col.memberships = nodes(n.ArtifactMemberships.Edges)
	var err error
	if col.moreMembers, err = nextCursor(n.ArtifactMemberships.PageInfo, nil); err != nil {
		return nil, err
	}
	if history {
		if n.AliasActionHistory == nil {
			return nil, fmt.Errorf("collection %s has no aliasActionHistory", n.ID)
		}
		col.actions = nodes(n.AliasActionHistory.Edges)
		if col.moreActions, err = nextCursor(n.AliasActionHistory.PageInfo, nil); err != nil {
			return nil, err
		}
	}
	return col, nil
}

// peekPageInfo reads the first pageInfo object of a body without decoding
// the rest. In a Collections answer it is the listing's: GraphQL answers keep
// the query's field order, and a `"pageInfo":` key cannot occur inside a
// JSON string.
func peekPageInfo(body []byte) (pageInfo, bool) {
	var pi pageInfo
	i := bytes.Index(body, []byte(`"pageInfo":`))
	if i < 0 {
		return pi, false
	}
	dec := json.NewDecoder(bytes.NewReader(body[i+len(`"pageInfo":`):]))
	return pi, dec.Decode(&pi) == nil
}

// selected applies the source's model filter: a glob matches the model name
// `<entity>/<project>/<collection>` or the collection name alone.
func (c *Client) selected(p project, name string) bool {
	if len(c.cfg.Models) == 0 {
		return true
	}
	full := p.String() + "/" + name
	for _, g := range c.cfg.Models {
		if ok, _ := path.Match(g, full); ok {
			return true
		}
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// completePages fetches the remaining version and alias-action pages of
// collections that have more than the listing returned, a bounded number of
// requests in flight.
func (c *Client) completePages(ctx context.Context, cols []*collection, history bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for _, col := range cols {
		if col.moreMembers != nil {
			g.Go(func() error { return c.restMemberships(gctx, col) })
		}
		if history && col.moreActions != nil {
			g.Go(func() error { return c.restActions(gctx, col) })
		}
	}
	return g.Wait()
}

func (c *Client) restMemberships(ctx context.Context, col *collection) error {
	scope := col.project.String() + "/" + col.node.Name
	pg := newPager()
	pg.resume(*col.moreMembers)
	for {
		d, err := query[membershipsData](ctx, c, opMemberships, scope, queryMemberships,
			map[string]any{"id": col.node.ID, "cursor": pg.cursor, "perPage": membershipsPerPage})
		if err != nil {
			return err
		}
		if d.ArtifactCollection == nil || d.ArtifactCollection.ArtifactMemberships == nil {
			return c.opError(opMemberships, scope, errors.New("collection vanished while it was read"))
		}
		conn := d.ArtifactCollection.ArtifactMemberships
		col.memberships = append(col.memberships, nodes(conn.Edges)...)
		more, err := pg.next(conn.PageInfo, len(conn.Edges))
		if err != nil {
			return c.opError(opMemberships, scope, err)
		}
		if !more {
			return nil
		}
	}
}

func (c *Client) restActions(ctx context.Context, col *collection) error {
	scope := col.project.String() + "/" + col.node.Name
	pg := newPager()
	pg.resume(*col.moreActions)
	for {
		d, err := query[aliasActionsData](ctx, c, opAliasActions, scope, queryAliasActions,
			map[string]any{"id": col.node.ID, "cursor": pg.cursor, "perPage": actionsPerPage})
		if err != nil {
			return err
		}
		if d.ArtifactCollection == nil || d.ArtifactCollection.AliasActionHistory == nil {
			return c.opError(opAliasActions, scope, errors.New("collection vanished while it was read"))
		}
		conn := d.ArtifactCollection.AliasActionHistory
		col.actions = append(col.actions, nodes(conn.Edges)...)
		more, err := pg.next(conn.PageInfo, len(conn.Edges))
		if err != nil {
			return c.opError(opAliasActions, scope, err)
		}
		if !more {
			return nil
		}
	}
}

// maxEmptyPages bounds consecutive empty pages that still say hasNextPage.
const maxEmptyPages = 1000

// pager follows Relay pagination to the end. Empty pages that still say
// hasNextPage are followed; a cursor seen before (the server not advancing)
// and a page without endCursor are errors.
type pager struct {
	cursor *string
	seen   map[string]bool
	empty  int
}

func newPager() *pager { return &pager{seen: map[string]bool{}} }

func (p *pager) resume(cursor string) {
	p.seen[cursor] = true
	p.cursor = &cursor
}

func (p *pager) next(pi pageInfo, items int) (bool, error) {
	if !pi.HasNextPage {
		return false, nil
	}
	if items == 0 {
		p.empty++
		if p.empty > maxEmptyPages {
			return false, fmt.Errorf("more than %d empty pages in a row", maxEmptyPages)
		}
	} else {
		p.empty = 0
	}
	cur, err := nextCursor(pi, p.seen)
	if err != nil {
		return false, err
	}
	p.seen[*cur] = true
	p.cursor = cur
	return true, nil
}

// nextCursor returns the cursor of the next page, nil when there is none.
func nextCursor(pi pageInfo, seen map[string]bool) (*string, error) {
	if !pi.HasNextPage {
		return nil, nil
	}
	if pi.EndCursor == nil || *pi.EndCursor == "" {
		return nil, errors.New("page says hasNextPage but gives no endCursor")
	}
	if seen[*pi.EndCursor] {
		return nil, fmt.Errorf("pagination does not advance: cursor %q repeated", *pi.EndCursor)
	}
	return pi.EndCursor, nil
}
