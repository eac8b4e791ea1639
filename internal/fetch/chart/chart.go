// Package chart fetches Helm charts into the content store, in Helm's own OCI form
// (docs/spec/bundle-v1.md §2.4): a manifest whose config is the chart's Chart.yaml as JSON
// (application/vnd.cncf.helm.config.v1+json) and whose layer is the chart archive
// (application/vnd.cncf.helm.chart.content.v1.tar+gzip), so that `helm pull oci://` against a
// registry serving the store works unchanged.
//
// Two sources are supported:
//
//   - An HTTP chart repository (`repo` + `chart`): index.yaml is fetched and parsed defensively,
//     the exact version is looked up, its first URL is resolved against the repository URL as
//     Helm resolves it, and the archive is checked against the index's `digest` (SHA-256).
//     An entry without a digest is accepted with a logged warning, as Helm accepts it, unless
//     Options.RequireDigest is set; the archive's Chart.yaml is still checked. mmgap writes the
//     OCI manifest and config itself, deterministically, so a re-run stores the same digests.
//   - An OCI registry (`oci://host/path/name` + version as the tag): the manifest is copied as
//     the registry serves it, with its config and layers, after checking it is a Helm chart.
//
// Either way the archive's Chart.yaml must name the requested chart and version.
//
// Provenance files (.prov) are out of scope: an HTTP repository's .prov is not fetched, and an
// OCI chart's provenance layer, when present, is copied with the manifest but not verified.
package chart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/httpfile"
	"github.com/mmgap/mmgap/internal/store"
)

// ErrChecksum reports an archive whose SHA-256 differs from the digest its source published
// (it is httpfile.ErrChecksum, so callers test one sentinel for every source).
var ErrChecksum = httpfile.ErrChecksum

// ErrNotChart reports an OCI artifact that is not a Helm chart, or an archive whose Chart.yaml
// does not name the requested chart and version.
var ErrNotChart = errors.New("not the requested Helm chart")

// MediaTypeProvenance is Helm's OCI media type for a chart's provenance file.
const MediaTypeProvenance = "application/vnd.cncf.helm.chart.provenance.v1.prov"

// maxConfigSize bounds a chart's OCI config (Chart.yaml as JSON) and provenance layer.
const maxConfigSize = 1 << 20

// Options configures a Fetcher.
type Options struct {
	// Store receives the charts. Required.
	Store *store.Store
	// HTTPOptions: Client also carries OCI registry requests through its Transport;
	// RewriteURL applies to index.yaml and chart archives.
	fetch.HTTPOptions
	// RewriteRepository maps an OCI repository "host/path/name" to the one to pull from; nil
	// pulls from the repository as written.
	RewriteRepository func(string) (string, error)
	// RemoteOptions are added to every go-containerregistry remote call (authentication, for
	// example); anonymous access by default.
	RemoteOptions []remote.Option
	// RequireDigest refuses HTTP repository entries that publish no digest.
	RequireDigest bool
}

// Request is one chart to fetch: Repo and Chart, or OCI.
type Request struct {
	// ID identifies the artifact to Progress; empty means the store reference name.
	ID string
	// Name is the chart's short name in the store; empty means Chart, or the last element of
	// the OCI path.
	Name string
	// Repo is an HTTP chart repository URL (one serving index.yaml).
	Repo string
	// Chart is the chart's name in Repo.
	Chart string
	// OCI is oci://host/path/name, without a tag.
	OCI string
	// Version is the exact chart version; for OCI it is the tag ('+' is written '_', as Helm
	// does).
	Version string
}

// Fetcher fetches charts into a store. It is safe for concurrent use.
type Fetcher struct {
	opts   Options
	store  *store.Store
	client *http.Client
	log    *slog.Logger
}

// New makes a Fetcher.
func New(opts Options) (*Fetcher, error) {
	if opts.Store == nil {
		return nil, errors.New("chart: no store")
	}
	opts.HTTPOptions = opts.HTTPOptions.WithDefaults()
	return &Fetcher{opts: opts, store: opts.Store, client: opts.Client, log: opts.Logger}, nil
}

// RefName is the store reference name of a chart (spec §2.1).
func RefName(name, version string) string { return "mmgap.charts/" + name + ":" + version }

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// resolved is a validated Request.
type resolved struct {
	Request
	chart  string // the chart's own name (Chart.yaml name)
	ref    string
	id     string
	source string
	prog   *progress
}

func (f *Fetcher) resolve(req Request) (*resolved, error) {
	r := &resolved{Request: req}
	switch {
	case req.OCI != "" && (req.Repo != "" || req.Chart != ""):
		return nil, fmt.Errorf("chart %q: give either oci or repo and chart, not both", req.Name)
	case req.OCI != "":
		p, ok := strings.CutPrefix(req.OCI, "oci://")
		p = strings.TrimSuffix(p, "/")
		host, repoPath, ok2 := strings.Cut(p, "/")
		if !ok || !ok2 || host == "" || repoPath == "" || strings.ContainsAny(repoPath, ":@") || strings.Contains(host, "@") {
			return nil, fmt.Errorf("chart %q: oci %q: want oci://host/path/name without a tag", req.Name, clip(req.OCI))
		}
		r.chart = p[strings.LastIndexByte(p, '/')+1:]
		r.source = "oci://" + p
	case req.Repo != "" && req.Chart != "":
		u, err := url.Parse(req.Repo)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("chart %q: repo %s: want an absolute http or https URL", req.Chart, httpfile.RedactURL(req.Repo))
		}
		r.chart = req.Chart
		r.source = strings.TrimSuffix(httpfile.SourceURL(req.Repo), "/") + "/" + req.Chart
	default:
		return nil, fmt.Errorf("chart %q: give oci, or repo and chart", req.Name)
	}
	if r.Name == "" {
		r.Name = r.chart
	}
	if !nameRE.MatchString(r.Name) {
		return nil, fmt.Errorf("chart %q: name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", clip(r.Name))
	}
	if !nameRE.MatchString(r.chart) {
		return nil, fmt.Errorf("chart %q: chart name %q is not a valid chart name", r.Name, clip(r.chart))
	}
	if !versionRE.MatchString(r.Version) {
		return nil, fmt.Errorf("chart %q: version %q: want an exact version (letters, digits, '.', '_', '+', '-')", r.Name, clip(r.Version))
	}
	r.ref = RefName(r.Name, r.Version)
	r.id = req.ID
	if r.id == "" {
		r.id = r.ref
	}
	return r, nil
}

// Fetch fetches one chart into the store, records it in index.json and returns its index
// descriptor. Errors name the chart; integrity failures wrap ErrChecksum or ErrNotChart, and
// leave nothing in the store.
func (f *Fetcher) Fetch(ctx context.Context, req Request) (desc v1.Descriptor, err error) {
	r, err := f.resolve(req)
	if err != nil {
		return v1.Descriptor{}, err
	}
	r.prog = &progress{p: f.opts.Progress, id: r.id, name: r.Name}
	defer func() { r.prog.done(err) }()
	if r.OCI != "" {
		return f.fetchOCI(ctx, r)
	}
	return f.fetchRepo(ctx, r)
}

// fetchRepo fetches a chart from an HTTP chart repository.
func (f *Fetcher) fetchRepo(ctx context.Context, r *resolved) (v1.Descriptor, error) {
	repoShown := httpfile.RedactURL(r.Repo)
	indexURL, err := joinURL(r.Repo, "index.yaml")
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: repo %s: %w", r.Name, repoShown, err)
	}
	raw, err := f.get(ctx, indexURL, MaxIndexSize, false)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: fetch repository index: %w", r.Name, err)
	}
	idx, err := ParseIndex(raw)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: repository %s: %w", r.Name, repoShown, err)
	}
	if idx.Skipped > 0 {
		f.log.Debug("index.yaml entries skipped", "repo", repoShown, "skipped", idx.Skipped)
	}
	entry, err := idx.Lookup(r.chart, r.Version)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: repository %s: %w", r.Name, repoShown, err)
	}
	if len(entry.URLs) == 0 {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: repository %s lists no URL for it", r.Name, r.Version, repoShown)
	}
	chartURL, err := ResolveChartURL(r.Repo, entry.URLs[0])
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: repository %s: chart URL %q: %w", r.Name, r.Version, repoShown, clip(entry.URLs[0]), err)
	}
	chartShown := httpfile.RedactURL(chartURL)

	var want *v1.Hash
	switch d := strings.ToLower(strings.TrimPrefix(entry.Digest, "sha256:")); {
	case d != "":
		h := v1.Hash{Algorithm: "sha256", Hex: d}
		if store.CheckDigest(h) != nil {
			return v1.Descriptor{}, fmt.Errorf("chart %q %s: repository %s: index digest %q is not a SHA-256", r.Name, r.Version, repoShown, clip(entry.Digest))
		}
		want = &h
	case f.opts.RequireDigest:
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: repository %s publishes no digest for it, and digests are required", r.Name, r.Version, ErrChecksum, repoShown)
	default:
		f.log.Warn("chart repository publishes no digest; the archive is checked only by its Chart.yaml", "chart", r.Name, "version", r.Version, "repo", repoShown)
	}

	var tgz []byte
	if want != nil {
		if n, ok := f.store.Stat(*want); ok && n <= MaxChartSize {
			if b, err := f.store.ReadBlob(*want, MaxChartSize); err == nil {
				tgz = b
				r.prog.start(n)
				r.prog.add(n, true)
				f.log.Debug("chart archive already in store", "chart", r.Name, "digest", want.String())
			}
		}
	}
	if tgz == nil {
		if tgz, err = f.get(ctx, chartURL, MaxChartSize, true); err != nil {
			return v1.Descriptor{}, fmt.Errorf("chart %q %s: fetch archive: %w", r.Name, r.Version, err)
		}
		r.prog.start(int64(len(tgz)))
		r.prog.add(int64(len(tgz)), false)
	}
	got := store.Digest(tgz)
	if want != nil && got != *want {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s (%s): %w: repository index says %s, archive is %s; nothing was stored",
			r.Name, r.Version, chartShown, ErrChecksum, want, got)
	}
	md, _, err := ReadChartArchive(tgz)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s (%s): %w", r.Name, r.Version, chartShown, err)
	}
	if err := r.check(md, "Chart.yaml"); err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := md.ConfigJSON()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w", r.Name, r.Version, err)
	}
	return f.storeChart(r, md, cfg, tgz)
}

// check compares a chart's metadata with the request.
func (r *resolved) check(md *Metadata, where string) error {
	if md.Name != r.chart || md.Version != r.Version {
		return fmt.Errorf("chart %q %s: %w: its %s names %q version %q", r.Name, r.Version, ErrNotChart, where, clip(md.Name), clip(md.Version))
	}
	return nil
}

// storeChart writes a chart fetched from an HTTP repository in Helm's OCI form.
func (f *Fetcher) storeChart(r *resolved, md *Metadata, cfg, tgz []byte) (v1.Descriptor, error) {
	cd, err := f.store.PutBytes(store.MediaTypeHelmConfig, cfg)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: store: %w", r.Name, err)
	}
	ld, err := f.store.PutBytes(store.MediaTypeHelmChart, tgz)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: store: %w", r.Name, err)
	}
	ann := map[string]string{
		"org.opencontainers.image.title":   md.Name,
		"org.opencontainers.image.version": md.Version,
	}
	if md.Description != "" {
		ann["org.opencontainers.image.description"] = md.Description
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        cd,
		Layers:        []v1.Descriptor{ld},
		Annotations:   ann,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return f.record(r, string(types.OCIManifestSchema1), raw)
}

// record stores a manifest and sets the chart's reference in index.json.
func (f *Fetcher) record(r *resolved, mediaType string, manifest []byte) (v1.Descriptor, error) {
	md, err := f.store.PutBytes(mediaType, manifest)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: store manifest: %w", r.Name, err)
	}
	created := f.opts.Now().UTC().Format(time.RFC3339)
	if old, ok, err := f.store.Lookup(r.ref); err == nil && ok && old.Digest == md.Digest &&
		old.Annotations[store.AnnotationSource] == r.source && old.Annotations[store.AnnotationCreated] != "" {
		created = old.Annotations[store.AnnotationCreated]
	}
	md.Annotations = map[string]string{
		store.AnnotationRefName: r.ref,
		store.AnnotationKind:    store.KindChart,
		store.AnnotationName:    r.Name,
		store.AnnotationVersion: r.Version,
		store.AnnotationSource:  r.source,
		store.AnnotationCreated: created,
	}
	if err := f.store.SetRef(md); err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: %w", r.Name, err)
	}
	f.log.Info("gathered chart", "chart", r.Name, "version", r.Version, "source", r.source, "digest", md.Digest.String())
	return md, nil
}

// joinURL appends a path element to a base URL, keeping its query (as Helm does for
// index.yaml).
func joinURL(base, elem string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", errors.New("not a URL")
	}
	return u.JoinPath(elem).String(), nil
}

// ResolveChartURL resolves an index entry's URL against the repository URL as Helm does
// (repo/getter ResolveReferenceURL): relative URLs are relative to the repository directory
// and keep its query string; the result must be http or https.
func ResolveChartURL(repo, ref string) (string, error) {
	ru, err := url.Parse(ref)
	if err != nil {
		return "", errors.New("not a URL")
	}
	if !ru.IsAbs() {
		base, err := url.Parse(repo)
		if err != nil {
			return "", errors.New("repository URL is not a URL")
		}
		q := base.RawQuery
		base.RawPath = strings.TrimSuffix(base.RawPath, "/") + "/"
		base.Path = strings.TrimSuffix(base.Path, "/") + "/"
		base.RawQuery = ""
		ru = base.ResolveReference(ru)
		ru.RawQuery = q
	}
	if (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" {
		return "", errors.New("want an http or https URL")
	}
	return ru.String(), nil
}

// get fetches a URL (after mirror rewrite) whole, up to limit bytes, with retries. exact asks
// for the bytes as stored (no transfer decoding), for archives whose digest is checked.
func (f *Fetcher) get(ctx context.Context, rawURL string, limit int64, exact bool) ([]byte, error) {
	shown := httpfile.RedactURL(rawURL)
	target := rawURL
	if f.opts.RewriteURL != nil {
		var err error
		if target, err = f.opts.RewriteURL(rawURL); err != nil {
			return nil, fmt.Errorf("mirror for %s: %w", shown, err)
		}
		shown = httpfile.RedactURL(target)
	}
	var body []byte
	attempts := 0
	err := f.opts.Retry.Do(ctx, func(attempt int) error {
		attempts = attempt
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return fetch.Permanent(fmt.Errorf("GET %s: %v", shown, err))
		}
		if exact {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return redactURLError(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fetch.Classify(&fetch.StatusError{URL: shown, StatusCode: resp.StatusCode, Status: resp.Status})
		}
		if resp.ContentLength > limit {
			return fetch.Permanent(fmt.Errorf("GET %s: %d bytes, more than the limit of %d", shown, resp.ContentLength, limit))
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fmt.Errorf("GET %s: %w", shown, redactURLError(err))
		}
		if int64(len(b)) > limit {
			return fetch.Permanent(fmt.Errorf("GET %s: more than the limit of %d bytes", shown, limit))
		}
		body = b
		return nil
	})
	if err != nil {
		if attempts > 1 && !fetch.IsPermanent(err) && ctx.Err() == nil {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
		}
		return nil, err
	}
	return body, nil
}

func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = httpfile.RedactURL(ue.URL)
	}
	return err
}

// progress reports one chart to a fetch.Progress, starting it lazily.
type progress struct {
	p       fetch.Progress
	id      string
	name    string
	started bool
}

func (p *progress) start(total int64) {
	if !p.started {
		p.started = true
		p.p.Start(p.id, p.name, total)
	}
}

func (p *progress) add(n int64, skipped bool) {
	p.start(-1)
	p.p.Add(p.id, n, skipped)
}

func (p *progress) done(err error) {
	p.start(-1)
	p.p.Done(p.id, err)
}

// readAllBounded reads r up to limit bytes and refuses more.
func readAllBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}
