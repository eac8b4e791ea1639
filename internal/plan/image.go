package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch/image"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/store"
)

// sizer sizes artifacts.
type sizer struct {
	opts     Options
	mirrors  manifest.Mirrors
	keychain authn.Keychain
}

func (s *sizer) remoteOptions(ctx context.Context) []remote.Option {
	o := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(s.opts.Transport),
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 2}),
	}
	if s.opts.Auth != nil {
		return append(o, remote.WithAuth(s.opts.Auth))
	}
	return append(o, remote.WithAuthFromKeychain(s.keychain))
}

// image resolves an image as gather's image fetcher does (mirror host, then the manifest by tag
// or digest, an index narrowed to the platforms asked for) and sums its configs and layers.
func (s *sizer) image(ctx context.Context, im manifest.Image) Item {
	it := Item{Kind: store.KindImage, Name: im.DisplayName(), Source: im.Ref, Size: -1, Download: -1}
	fail := func(err error) Item { it.err = wrap(it.Kind, it.Name, err); return it }
	ref, err := image.ParseRef(im.Ref)
	if err != nil {
		return fail(err)
	}
	host := ref.Registry
	if m := s.mirrors.RewriteRegistry(ref.Registry); m != "" {
		host = m
	}
	pull := image.Ref{Registry: host, Repository: ref.Repository, Tag: ref.Tag, Digest: ref.Digest}
	it.Resolved = pull.String()
	repo, err := name.NewRepository(host + "/" + ref.Repository)
	if err != nil {
		return fail(err)
	}
	ident := ref.Tag
	if ref.Digest != (v1.Hash{}) {
		ident = ref.Digest.String()
	}
	var r name.Reference
	if strings.HasPrefix(ident, "sha256:") {
		r = repo.Digest(ident)
	} else {
		r = repo.Tag(ident)
	}
	wants, err := image.ParsePlatforms(im.Platforms)
	if err != nil {
		return fail(err)
	}
	ropts := s.remoteOptions(ctx)
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return fail(fmt.Errorf("resolve %s: %w", it.Resolved, err))
	}
	if ref.Digest != (v1.Hash{}) && desc.Digest != ref.Digest {
		return fail(fmt.Errorf("%s: registry serves digest %s", it.Resolved, desc.Digest))
	}
	it.Digest = desc.Digest.String()
	it.blobs, it.meta = map[v1.Hash]int64{}, map[v1.Hash]int64{}
	it.meta[desc.Digest] = int64(len(desc.Manifest))

	w := &walker{ctx: ctx, repo: repo, opts: ropts, blobs: it.blobs, meta: it.meta}
	switch {
	case store.IsIndex(desc.MediaType):
		kids, plats, err := narrow(desc.Manifest, wants)
		if err != nil {
			return fail(err)
		}
		it.Platforms = plats
		if len(kids) < countManifests(desc.Manifest) {
			// gather stores a narrowed copy of the index, not this one; the per-artifact
			// overhead covers its size.
			delete(it.meta, desc.Digest)
		}
		for _, k := range kids {
			if err := w.walk(k); err != nil {
				return fail(err)
			}
		}
	case store.IsManifest(desc.MediaType):
		if err := w.manifest(desc.MediaType, desc.Manifest); err != nil {
			return fail(err)
		}
		if len(wants) > 0 {
			plats, err := checkImagePlatform(r, ropts, wants)
			if err != nil {
				return fail(err)
			}
			it.Platforms = plats
		}
	default:
		return fail(fmt.Errorf("unsupported manifest media type %q", desc.MediaType))
	}
	it.Size = 0
	for _, n := range it.blobs {
		it.Size += n
	}
	return it
}

type walker struct {
	ctx   context.Context
	repo  name.Repository
	opts  []remote.Option
	blobs map[v1.Hash]int64
	meta  map[v1.Hash]int64
}

// walk records a child manifest or index of an image and what it reaches.
func (w *walker) walk(d v1.Descriptor) error {
	if _, ok := w.meta[d.Digest]; ok {
		return nil
	}
	w.meta[d.Digest] = d.Size
	desc, err := remote.Get(w.repo.Digest(d.Digest.String()), w.opts...)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	if desc.Digest != d.Digest {
		return fmt.Errorf("manifest %s: registry serves digest %s", d.Digest, desc.Digest)
	}
	if store.IsIndex(desc.MediaType) {
		kids, err := store.Children(desc.MediaType, desc.Manifest)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		for _, k := range kids {
			if err := w.walk(k); err != nil {
				return err
			}
		}
		return nil
	}
	return w.manifest(desc.MediaType, desc.Manifest)
}

// manifest records an image manifest's config and layers.
func (w *walker) manifest(mt types.MediaType, raw []byte) error {
	kids, err := store.Children(mt, raw)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if store.IsIndex(k.MediaType) || store.IsManifest(k.MediaType) {
			if err := w.walk(k); err != nil {
				return err
			}
			continue
		}
		if old, ok := w.blobs[k.Digest]; ok && old != k.Size {
			return fmt.Errorf("blob %s: descriptors disagree on its size (%d, %d)", k.Digest, old, k.Size)
		}
		w.blobs[k.Digest] = k.Size
	}
	return nil
}

// narrow picks the index children gather keeps (image.Platforms.Select decides).
func narrow(raw []byte, wants image.Platforms) ([]v1.Descriptor, []string, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, nil, fmt.Errorf("parse index: %w", err)
	}
	keep, plats, err := wants.Select(idx.Manifests)
	if err != nil {
		return nil, nil, err
	}
	var out []v1.Descriptor
	for i, k := range idx.Manifests {
		if keep[i] {
			out = append(out, k)
		}
	}
	return out, plats, nil
}

func countManifests(raw []byte) int {
	var idx v1.IndexManifest
	if json.Unmarshal(raw, &idx) != nil {
		return 0
	}
	return len(idx.Manifests)
}

// checkImagePlatform reads a single-platform image's config (one small blob) and checks its
// platform against wants, as gather does before it fetches any layer.
func checkImagePlatform(r name.Reference, ropts []remote.Option, wants image.Platforms) ([]string, error) {
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return nil, fmt.Errorf("config media type %q is not a container image config; platforms cannot be checked", m.Config.MediaType)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return wants.Check(cfg.OS, cfg.Architecture, cfg.Variant)
}
