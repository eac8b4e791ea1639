package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// MaxManifestSize bounds manifests and indexes read from the store or a registry.
const MaxManifestSize = 4 << 20

func typesMediaType(s string) types.MediaType { return types.MediaType(s) }

// IsIndex reports whether mt is an OCI image index or a Docker manifest list.
func IsIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// IsManifest reports whether mt is an OCI or Docker image manifest.
func IsManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// manifestRefs is the union of the fields of image manifests and indexes that point at blobs.
type manifestRefs struct {
	MediaType string          `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
	Subject   *v1.Descriptor  `json:"subject"`
}

// Children parses a manifest or index and lists the descriptors it points at.
func Children(mt types.MediaType, raw []byte) ([]v1.Descriptor, error) {
	var m manifestRefs
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", mt, err)
	}
	var out []v1.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Manifests...)
	if m.Subject != nil {
		out = append(out, *m.Subject)
	}
	for _, d := range out {
		if err := CheckDigest(d.Digest); err != nil {
			return nil, err
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("descriptor %s: negative size", d.Digest)
		}
	}
	return out, nil
}

// Reachable lists every blob desc reaches (desc itself first), each once. It fails if a blob is
// missing or a manifest cannot be parsed; it reads manifests but not layers.
func (s *Store) Reachable(desc v1.Descriptor) ([]v1.Descriptor, error) {
	seen := map[v1.Hash]bool{}
	var out []v1.Descriptor
	var walk func(d v1.Descriptor, path string) error
	walk = func(d v1.Descriptor, path string) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		n, ok := s.Stat(d.Digest)
		if !ok {
			return fmt.Errorf("%s: blob %s: %w", path, d.Digest, ErrNotFound)
		}
		if n != d.Size {
			return fmt.Errorf("%s: blob %s: stored size %d, descriptor says %d", path, d.Digest, n, d.Size)
		}
		out = append(out, v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
		if !IsIndex(d.MediaType) && !IsManifest(d.MediaType) {
			return nil
		}
		raw, err := s.ReadBlob(d.Digest, MaxManifestSize)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		kids, err := Children(d.MediaType, raw)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, k := range kids {
			if err := walk(k, path+" > "+k.Digest.String()[:19]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(desc, desc.Digest.String()); err != nil {
		return nil, err
	}
	return out, nil
}

// Blobs lists every blob reachable from index.json, sorted by digest, each once.
func (s *Store) Blobs() ([]v1.Descriptor, error) {
	im, err := s.Index()
	if err != nil {
		return nil, err
	}
	seen := map[v1.Hash]v1.Descriptor{}
	for _, m := range im.Manifests {
		r, err := s.Reachable(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Annotations[AnnotationRefName], err)
		}
		for _, d := range r {
			seen[d.Digest] = d
		}
	}
	out := make([]v1.Descriptor, 0, len(seen))
	for _, d := range seen {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest.Hex < out[j].Digest.Hex })
	return out, nil
}

// VerifyBlob re-reads blob d and checks its size and digest.
func (s *Store) VerifyBlob(ctx context.Context, d v1.Hash, size int64) error {
	f, err := s.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	h := newHasher()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return fmt.Errorf("verify blob %s: %w", d, err)
	}
	if got := h.digest(); got != d || (size >= 0 && n != size) {
		return &DigestError{Want: d, Got: got, WantSize: size, GotSize: n}
	}
	return nil
}

// Verify checks every blob reachable from index.json, calling progress after each.
func (s *Store) Verify(ctx context.Context, progress func(v1.Descriptor)) error {
	blobs, err := s.Blobs()
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := s.VerifyBlob(ctx, b.Digest, b.Size); err != nil {
			return err
		}
		if progress != nil {
			progress(b)
		}
	}
	return nil
}
