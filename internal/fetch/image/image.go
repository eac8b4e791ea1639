// Package image copies container images from OCI distribution registries into the content
// store, by digest, narrowing multi-platform indexes to the platforms asked for
// (docs/spec/bundle-v1.md §2.2).
//
// A Fetch resolves the reference once (one GET of the manifest by tag or digest), records the
// digest the source served, then walks the manifest tree by digest: child manifests are fetched
// first (small, in parallel), then configs and layers are streamed straight into store writers
// with up to Options.Jobs downloads at a time across the whole Fetcher. Blobs already in the
// store are not requested; a partial blob left by an interrupted run is resumed with an HTTP Range
// request. Every blob is hashed exactly once, by the store's writer, and becomes visible only
// after its digest checked. Manifests are written after everything they reach, and Fetch ends by
// recording the image in index.json (Store.SetRef): the caller only reports the Result.
//
// Foreign ("non-distributable") layers are fetched from the registry like any other blob; their
// urls field is not followed. Referrers and signatures are not gathered.
package image

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/store"
)

// Options configures a Fetcher. Only Store is required.
type Options struct {
	Store *store.Store
	// Keychain finds credentials per registry; nil means authn.DefaultKeychain (docker's
	// config.json, honouring DOCKER_CONFIG, and its credential helpers).
	Keychain authn.Keychain
	// Auth, when set, is used for every registry instead of Keychain (credentials from flags).
	Auth authn.Authenticator
	// RewriteRegistry maps a registry host (Docker Hub is passed as "docker.io") to the host to
	// fetch from instead: "host[:port]", optionally with a "/path" prefix under which
	// repositories live, optionally with an "http://" (plain HTTP) or "https://" scheme. An
	// empty result or nil function means no rewrite. Ref names and annotations keep the original
	// registry.
	RewriteRegistry func(host string) string
	// Insecure reports hosts (after rewriting) that may be reached over plain HTTP. Loopback
	// registries (127.0.0.1, localhost, ::1) always may, as go-containerregistry decides.
	Insecure func(host string) bool
	// Transport is the base HTTP transport; nil means a clone of http.DefaultTransport tuned
	// for large downloads.
	Transport http.RoundTripper
	// Retry is the retry policy for every manifest and blob request; zero means
	// fetch.DefaultRetry.
	Retry fetch.Retry
	// Progress receives byte counts; nil discards them.
	Progress fetch.Progress
	// Jobs bounds concurrent blob downloads across the Fetcher; zero means 8. More downloads in
	// flight hide the per-blob fsync of the store (bench/README.md).
	Jobs int
	// StallTimeout aborts (and retries) a blob download that receives nothing for this long;
	// zero means two minutes.
	StallTimeout time.Duration
	// Logger receives debug and info records; nil discards them.
	Logger *slog.Logger
	// Now stamps org.opencontainers.image.created; nil means time.Now.
	Now func() time.Time
}

// Request asks for one image.
type Request struct {
	// Ref is the reference as written in the manifest: with a tag, a digest, or both.
	Ref string
	// Name is the display name (io.mmgap.name); empty means the repository's last element.
	Name string
	// Platforms narrows a multi-platform image to these os/arch[/variant] platforms; empty means
	// all platforms the source offers.
	Platforms []string
	// ID identifies the artifact to the progress reporter; empty means the ref name.
	ID string
}

// Result describes what Fetch stored.
type Result struct {
	// Descriptor is the index.json entry Fetch recorded, with its annotations.
	Descriptor v1.Descriptor
	// Ref is the normalised reference parts; Ref.Name() is the ref name.
	Ref Ref
	// UpstreamDigest is the digest the source served for the reference. It differs from
	// Descriptor.Digest only when the index was narrowed.
	UpstreamDigest v1.Hash
	// Platforms are the platforms stored, os/arch[/variant].
	Platforms []string
	// Bytes counts bytes received from the registry; Skipped counts blob bytes that were
	// already in the store (whole blobs, and partial blobs resumed).
	Bytes, Skipped int64
}

// Fetcher copies images into a store. It is safe for concurrent use; concurrent fetches share
// authenticated connections, the download limit, and blobs (a layer two images share is
// downloaded once).
type Fetcher struct {
	opts      Options
	retry     fetch.Retry
	prog      fetch.Progress
	log       *slog.Logger
	transport http.RoundTripper
	stall     time.Duration
	sem       chan struct{}

	mu      sync.Mutex
	sources map[string]*sourceEntry
}

// New returns a Fetcher.
func New(opts Options) (*Fetcher, error) {
	if opts.Store == nil {
		return nil, errors.New("image fetcher: no store")
	}
	f := &Fetcher{
		opts:      opts,
		retry:     opts.Retry,
		prog:      opts.Progress,
		log:       opts.Logger,
		transport: opts.Transport,
		stall:     cmp.Or(opts.StallTimeout, 2*time.Minute),
		sources:   map[string]*sourceEntry{},
	}
	if f.retry.Attempts == 0 {
		f.retry = fetch.DefaultRetry
	}
	if f.prog == nil {
		f.prog = fetch.NopProgress{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.transport == nil {
		f.transport = DefaultTransport()
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 8
	}
	f.sem = make(chan struct{}, jobs)
	return f, nil
}

// DefaultTransport is the base transport a Fetcher uses when Options.Transport is nil: Go's
// default (proxy from the environment, HTTP/2) with larger read buffers, enough idle
// connections for parallel downloads, and no transparent decompression (blobs are stored byte
// for byte).
func DefaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	t.ReadBufferSize = 256 << 10
	t.WriteBufferSize = 64 << 10
	t.DisableCompression = true
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// Fetch copies the image req names into the store and records it in index.json under its ref
// name (replacing an earlier entry of that name). On error nothing is recorded; blobs already
// verified stay in the store and partial downloads stay for a later resume.
func (f *Fetcher) Fetch(ctx context.Context, req Request) (Result, error) {
	ref, err := ParseRef(req.Ref)
	if err != nil {
		return Result{}, err
	}
	wants, err := ParsePlatforms(req.Platforms)
	if err != nil {
		return Result{}, fmt.Errorf("image %s: %w", ref.Name(), err)
	}
	j := &job{
		f:     f,
		ref:   ref,
		req:   req,
		wants: wants,
		t:     &tally{prog: f.prog, id: cmp.Or(req.ID, ref.Name())},
		name:  cmp.Or(req.Name, ref.shortName()),
		seen:  map[v1.Hash]bool{},
		blobs: map[v1.Hash]v1.Descriptor{},
	}
	res, err := j.run(ctx)
	if !j.started {
		f.prog.Start(j.t.id, j.name, -1)
	}
	if err != nil {
		err = fmt.Errorf("image %s: %w", ref.Name(), err)
	}
	f.prog.Done(j.t.id, err)
	return res, err
}

// job is one Fetch.
type job struct {
	f       *Fetcher
	ref     Ref
	req     Request
	wants   Platforms
	t       *tally
	name    string
	src     *source
	started bool

	mu        sync.Mutex
	seen      map[v1.Hash]bool
	manifests []node // children before parents
	blobs     map[v1.Hash]v1.Descriptor
}

// node is a manifest or index to write into the store.
type node struct {
	desc v1.Descriptor
	raw  []byte
}

func (j *job) run(ctx context.Context) (Result, error) {
	f := j.f
	src, err := f.source(ctx, j.ref)
	if err != nil {
		return Result{}, err
	}
	j.src = src

	// Resolve once.
	var raw []byte
	var ct, hdr string
	err = f.retry.Do(ctx, func(int) error {
		var err error
		raw, ct, hdr, err = src.getManifest(ctx, j.ref.identifier())
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("manifest %s from %s: %w", j.ref.identifier(), src.label, err)
	}
	j.t.fetched.Add(int64(len(raw)))
	upstream := store.Digest(raw)
	if j.ref.Digest != (v1.Hash{}) && upstream != j.ref.Digest {
		return Result{}, fmt.Errorf("manifest from %s: %w", src.label, &store.DigestError{Want: j.ref.Digest, Got: upstream, WantSize: -1})
	}
	if h, err := v1.NewHash(hdr); err == nil && h.Algorithm == "sha256" && h != upstream {
		return Result{}, fmt.Errorf("manifest %s from %s: registry says digest %s, content hashes to %s", j.ref.identifier(), src.label, h, upstream)
	}
	mt, err := manifestMediaType(raw, ct)
	if err != nil {
		return Result{}, fmt.Errorf("manifest %s from %s: %w", j.ref.identifier(), src.label, err)
	}
	f.log.Debug("resolved image", "ref", j.ref.Name(), "digest", upstream, "mediaType", mt, "registry", src.label)

	top := node{desc: v1.Descriptor{MediaType: mt, Digest: upstream, Size: int64(len(raw))}, raw: raw}
	var platforms []string
	switch {
	case store.IsIndex(mt):
		top.raw, platforms, err = j.narrow(raw)
		if err != nil {
			return Result{}, err
		}
		top.desc.Digest, top.desc.Size = store.Digest(top.raw), int64(len(top.raw))
	case store.IsManifest(mt):
	default:
		return Result{}, fmt.Errorf("unsupported manifest media type %q", mt)
	}

	if err := j.walk(ctx, top.desc, top.raw); err != nil {
		return Result{}, err
	}
	// Download blobs, largest first, within the Fetcher-wide limit. A single-platform image's
	// config comes first: its platform is checked before any layer is fetched.
	var total int64
	todo := make([]v1.Descriptor, 0, len(j.blobs))
	for _, d := range j.blobs {
		total += d.Size
		todo = append(todo, d)
	}
	slices.SortFunc(todo, func(a, b v1.Descriptor) int { return cmp.Compare(b.Size, a.Size) })
	f.prog.Start(j.t.id, j.name, total)
	j.started = true
	if store.IsManifest(mt) {
		var cfg v1.Hash
		if platforms, cfg, err = j.imagePlatform(ctx, top.raw); err != nil {
			return Result{}, err
		}
		todo = slices.DeleteFunc(todo, func(d v1.Descriptor) bool { return d.Digest == cfg })
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range todo {
		if f.opts.Store.Has(d.Digest, d.Size) {
			j.t.skipped.Add(d.Size)
			f.prog.Add(j.t.id, d.Size, true)
			continue
		}
		g.Go(func() error {
			select {
			case f.sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-f.sem }()
			return f.fetchBlob(gctx, src, d, j.t)
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}

	for _, n := range j.manifests {
		if _, err := f.opts.Store.PutBytes(string(n.desc.MediaType), n.raw); err != nil {
			return Result{}, fmt.Errorf("store manifest %s: %w", n.desc.Digest, err)
		}
	}

	now := time.Now
	if f.opts.Now != nil {
		now = f.opts.Now
	}
	desc := top.desc
	desc.Annotations = map[string]string{
		store.AnnotationRefName:   j.ref.Name(),
		store.AnnotationKind:      store.KindImage,
		store.AnnotationName:      j.name,
		store.AnnotationVersion:   j.ref.Tag,
		store.AnnotationSource:    j.req.Ref,
		store.AnnotationPlatforms: strings.Join(platforms, ","),
		store.AnnotationCreated:   now().UTC().Format(time.RFC3339),
	}
	if desc.Digest != upstream {
		desc.Annotations[store.AnnotationUpstreamDigest] = upstream.String()
	}
	if err := f.opts.Store.SetRef(desc); err != nil {
		return Result{}, err
	}
	f.log.Info("fetched image", "ref", j.ref.Name(), "digest", desc.Digest, "bytes", j.t.fetched.Load(), "skipped", j.t.skipped.Load())
	return Result{
		Descriptor:     desc,
		Ref:            j.ref,
		UpstreamDigest: upstream,
		Platforms:      platforms,
		Bytes:          j.t.fetched.Load(),
		Skipped:        j.t.skipped.Load(),
	}, nil
}

// walk records desc (with its raw content when already known) and everything it reaches:
// manifests into j.manifests after their children, other blobs into j.blobs. Child manifests are
// read from the store when present, else fetched by digest and verified.
func (j *job) walk(ctx context.Context, desc v1.Descriptor, raw []byte) error {
	j.mu.Lock()
	if j.seen[desc.Digest] {
		j.mu.Unlock()
		return nil
	}
	j.seen[desc.Digest] = true
	j.mu.Unlock()

	if raw == nil {
		var err error
		if raw, err = j.manifestByDigest(ctx, desc); err != nil {
			return err
		}
	}
	kids, err := store.Children(desc.MediaType, raw)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(j.f.sem))
	for _, k := range kids {
		if store.IsIndex(k.MediaType) || store.IsManifest(k.MediaType) {
			g.Go(func() error { return j.walk(gctx, k, nil) })
			continue
		}
		j.mu.Lock()
		if old, ok := j.blobs[k.Digest]; ok && old.Size != k.Size {
			j.mu.Unlock()
			return fmt.Errorf("blob %s: descriptors disagree on its size (%d, %d)", k.Digest, old.Size, k.Size)
		}
		j.blobs[k.Digest] = v1.Descriptor{MediaType: k.MediaType, Digest: k.Digest, Size: k.Size}
		j.mu.Unlock()
	}
	if err := g.Wait(); err != nil {
		return err
	}
	j.mu.Lock()
	j.manifests = append(j.manifests, node{desc: desc, raw: raw})
	j.mu.Unlock()
	return nil
}

func (j *job) manifestByDigest(ctx context.Context, desc v1.Descriptor) ([]byte, error) {
	if desc.Size > store.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes, more than the %d allowed", desc.Digest, desc.Size, store.MaxManifestSize)
	}
	s := j.f.opts.Store
	if s.Has(desc.Digest, desc.Size) {
		if raw, err := s.ReadBlob(desc.Digest, store.MaxManifestSize); err == nil {
			return raw, nil
		}
	}
	var raw []byte
	err := j.f.retry.Do(ctx, func(int) error {
		var err error
		raw, _, _, err = j.src.getManifest(ctx, desc.Digest.String())
		if err != nil {
			return err
		}
		if got := store.Digest(raw); got != desc.Digest || int64(len(raw)) != desc.Size {
			return fetch.Permanent(&store.DigestError{Want: desc.Digest, Got: got, WantSize: desc.Size, GotSize: int64(len(raw))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest %s from %s: %w", desc.Digest, j.src.label, err)
	}
	j.t.fetched.Add(int64(len(raw)))
	return raw, nil
}

// Annotations buildx puts on attestation manifests in an index.
const (
	refTypeAnnotation   = "vnd.docker.reference.type"
	refDigestAnnotation = "vnd.docker.reference.digest"
)

// narrow keeps the index children matching j.wants (all of them when there are none), plus
// attestation manifests that refer to a kept child. It returns the index to store, the same
// bytes when nothing was dropped, and the platforms kept.
func (j *job) narrow(raw []byte) ([]byte, []string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, nil, fmt.Errorf("parse index: %w", err)
	}
	var rawKids []json.RawMessage
	if m, ok := fields["manifests"]; ok {
		if err := json.Unmarshal(m, &rawKids); err != nil {
			return nil, nil, fmt.Errorf("parse index manifests: %w", err)
		}
	}
	kids := make([]v1.Descriptor, len(rawKids))
	for i, rk := range rawKids {
		if err := json.Unmarshal(rk, &kids[i]); err != nil {
			return nil, nil, fmt.Errorf("parse index manifests[%d]: %w", i, err)
		}
	}
	keep, platforms, err := j.wants.Select(kids)
	if err != nil {
		var pe *PlatformError
		if errors.As(err, &pe) {
			pe.Ref = j.ref.Name()
		}
		return nil, nil, err
	}
	if len(j.wants) == 0 {
		return raw, platforms, nil
	}
	var out []json.RawMessage
	for i := range kids {
		if keep[i] {
			out = append(out, rawKids[i])
		}
	}
	if len(out) == len(rawKids) {
		return raw, platforms, nil
	}
	m, err := json.Marshal(out)
	if err != nil {
		return nil, nil, err
	}
	fields["manifests"] = m
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return nil, nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), platforms, nil
}

// imagePlatform downloads the config of a single-platform image, reads its platform, and checks
// it against j.wants. It returns the platforms and the config's digest.
func (j *job) imagePlatform(ctx context.Context, raw []byte) ([]string, v1.Hash, error) {
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("parse manifest: %w", err)
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		if len(j.wants) > 0 {
			return nil, v1.Hash{}, fmt.Errorf("config media type %q is not a container image config; platforms cannot be checked", m.Config.MediaType)
		}
		return nil, v1.Hash{}, nil
	}
	if m.Config.Size > store.MaxManifestSize {
		return nil, v1.Hash{}, fmt.Errorf("config %s: %d bytes, more than the %d allowed", m.Config.Digest, m.Config.Size, store.MaxManifestSize)
	}
	if err := j.f.fetchBlob(ctx, j.src, m.Config, j.t); err != nil {
		return nil, v1.Hash{}, err
	}
	b, err := j.f.opts.Store.ReadBlob(m.Config.Digest, store.MaxManifestSize)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	offered, err := j.wants.Check(cfg.OS, cfg.Architecture, cfg.Variant)
	if err != nil {
		var pe *PlatformError
		if errors.As(err, &pe) {
			pe.Ref = j.ref.Name()
		}
		return nil, v1.Hash{}, err
	}
	return offered, m.Config.Digest, nil
}
