package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	var wants []platform
	for _, p := range im.Platforms {
		w, err := parsePlatform(p)
		if err != nil {
			return fail(err)
		}
		wants = append(wants, w)
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

// Annotations buildx puts on attestation manifests in an index.
const (
	refTypeAnnotation   = "vnd.docker.reference.type"
	refDigestAnnotation = "vnd.docker.reference.digest"
)

// narrow picks the index children gather keeps: those matching wants (all when empty), plus
// attestation manifests of kept children. It mirrors internal/fetch/image's narrowing.
func narrow(raw []byte, wants []platform) ([]v1.Descriptor, []string, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, nil, fmt.Errorf("parse index: %w", err)
	}
	kids := idx.Manifests
	var offered []string
	for _, k := range kids {
		if p := fromV1(k.Platform); p.known() && !slices.Contains(offered, p.String()) {
			offered = append(offered, p.String())
		}
	}
	if len(wants) == 0 {
		return kids, offered, nil
	}
	keep := make([]bool, len(kids))
	var missing []string
	for _, w := range wants {
		found := false
		for i, k := range kids {
			if p := fromV1(k.Platform); p.known() && w.matches(p) {
				keep[i], found = true, true
			}
		}
		if !found {
			for i, k := range kids {
				if p := fromV1(k.Platform); p.known() && w.matchesLoosely(p) {
					keep[i], found = true, true
				}
			}
		}
		if !found {
			missing = append(missing, w.String())
		}
	}
	if len(missing) > 0 {
		return nil, nil, &image.PlatformError{Missing: missing, Offered: offered}
	}
	kept := map[string]bool{}
	for i, k := range kids {
		if keep[i] {
			kept[k.Digest.String()] = true
		}
	}
	var out []v1.Descriptor
	var plats []string
	for i, k := range kids {
		if !keep[i] && k.Annotations[refTypeAnnotation] == "attestation-manifest" && kept[k.Annotations[refDigestAnnotation]] {
			keep[i] = true
		}
		if keep[i] {
			out = append(out, k)
			if p := fromV1(k.Platform); p.known() && !slices.Contains(plats, p.String()) {
				plats = append(plats, p.String())
			}
		}
	}
	return out, plats, nil
}

// platform is an os/arch[/variant] triple, matched as internal/fetch/image matches it.
type platform struct{ os, arch, variant string }

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return platform{}, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	p := platform{os: parts[0], arch: parts[1]}
	if len(parts) == 3 {
		p.variant = parts[2]
	}
	return p, nil
}

func fromV1(p *v1.Platform) platform {
	if p == nil {
		return platform{}
	}
	return platform{os: p.OS, arch: p.Architecture, variant: p.Variant}
}

func (p platform) String() string {
	s := p.os + "/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

func (p platform) known() bool {
	return p.os != "" && p.arch != "" && p.os != "unknown" && p.arch != "unknown"
}

func normVariant(arch, v string) string {
	switch {
	case v == "" && arch == "arm64":
		return "v8"
	case v == "" && arch == "arm":
		return "v7"
	case v != "" && !strings.HasPrefix(v, "v"):
		return "v" + v
	}
	return v
}

func (p platform) matches(have platform) bool {
	return p.os == have.os && p.arch == have.arch && normVariant(p.arch, p.variant) == normVariant(have.arch, have.variant)
}

func (p platform) matchesLoosely(have platform) bool {
	return p.variant == "" && p.os == have.os && p.arch == have.arch
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
func checkImagePlatform(r name.Reference, ropts []remote.Option, wants []platform) ([]string, error) {
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
	have := platform{os: cfg.OS, arch: cfg.Architecture, variant: cfg.Variant}
	var missing, offered []string
	for _, w := range wants {
		if !w.matches(have) && !w.matchesLoosely(have) {
			missing = append(missing, w.String())
		}
	}
	if have.known() {
		offered = []string{have.String()}
	}
	if len(missing) > 0 {
		return nil, &image.PlatformError{Missing: missing, Offered: offered}
	}
	return offered, nil
}
