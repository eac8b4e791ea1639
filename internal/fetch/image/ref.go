package image

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/store"
)

// DockerHub is how references to Docker Hub are spelled in ref names and passed to
// Options.RewriteRegistry (go-containerregistry says index.docker.io).
const DockerHub = "docker.io"

// Ref is an image reference split into its parts.
type Ref struct {
	Registry   string  // host[:port]; Docker Hub is "docker.io"
	Repository string  // "library/postgres"
	Tag        string  // empty only when the reference had a digest and no tag
	Digest     v1.Hash // zero when the reference had no digest
}

// ParseRef parses an image reference as written in a manifest: "repo:tag", "repo@sha256:…" or
// "repo:tag@sha256:…". A reference with neither tag nor digest means tag "latest". Only sha256
// digests are accepted.
func ParseRef(s string) (Ref, error) {
	base, dgst, hasDigest := strings.Cut(s, "@")
	var r Ref
	if hasDigest {
		h, err := v1.NewHash(dgst)
		if err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		if err := store.CheckDigest(h); err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		r.Digest = h
	}
	last := base[strings.LastIndexByte(base, '/')+1:]
	var repo name.Repository
	if strings.Contains(last, ":") || !hasDigest {
		t, err := name.NewTag(base)
		if err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		repo, r.Tag = t.Context(), t.TagStr()
	} else {
		rp, err := name.NewRepository(base)
		if err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		repo = rp
	}
	r.Registry = repo.RegistryStr()
	if r.Registry == name.DefaultRegistry {
		r.Registry = DockerHub
	}
	r.Repository = repo.RepositoryStr()
	return r, nil
}

// Name is the ref name the store records (docs/spec/bundle-v1.md §2.1): registry/repository:tag,
// or registry/repository@sha256:<hex> for a reference by digest only.
func (r Ref) Name() string {
	if r.Tag == "" {
		return r.Registry + "/" + r.Repository + "@" + r.Digest.String()
	}
	return r.Registry + "/" + r.Repository + ":" + r.Tag
}

// String is the full normalised reference, with tag and digest when both are known.
func (r Ref) String() string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != (v1.Hash{}) {
		s += "@" + r.Digest.String()
	}
	return s
}

// identifier is what to ask the registry for: the digest when known, else the tag.
func (r Ref) identifier() string {
	if r.Digest != (v1.Hash{}) {
		return r.Digest.String()
	}
	return r.Tag
}

// shortName is the last element of the repository path, the default display name.
func (r Ref) shortName() string { return path.Base(r.Repository) }

// target is where a reference is fetched from after mirror rewriting.
type target struct {
	reg      name.Registry
	repo     string // repository path at reg
	mirrored bool
}

// host is reg as written in URLs and messages.
func (t target) host() string { return t.reg.RegistryStr() }

// resolveTarget applies the mirror rewrite to r. A rewrite result may be "host[:port]",
// "host[:port]/prefix" (the repository is fetched under prefix) and may start with https:// or
// http:// (plain HTTP).
func (f *Fetcher) resolveTarget(r Ref) (target, error) {
	host, prefix := r.Registry, ""
	mirrored := false
	insecure := false
	if f.opts.RewriteRegistry != nil {
		if m := f.opts.RewriteRegistry(r.Registry); m != "" && m != r.Registry {
			mirrored = true
			if rest, ok := strings.CutPrefix(m, "http://"); ok {
				m, insecure = rest, true
			}
			m = strings.TrimPrefix(m, "https://")
			m = strings.TrimSuffix(m, "/")
			host, prefix, _ = strings.Cut(m, "/")
		}
	}
	if f.opts.Insecure != nil && f.opts.Insecure(host) {
		insecure = true
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return target{}, fmt.Errorf("registry %q: %w", host, err)
	}
	repo := r.Repository
	if prefix != "" {
		repo = path.Join(prefix, repo)
	}
	return target{reg: reg, repo: repo, mirrored: mirrored}, nil
}
