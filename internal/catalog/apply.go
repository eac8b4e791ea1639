package catalog

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/store"
)

//go:embed keys/mattermost-release.asc
var releaseKey []byte

// pluginKey is Mattermost's plugin signing key as the server's own source carries it
// (server/build/plugin-production-public-key.gpg), fingerprint PluginKeyFingerprint.
//
//go:embed keys/mattermost-plugin.asc
var pluginKey []byte

// PluginKey returns the built-in copy of Mattermost's plugin signing key, ASCII-armored.
func PluginKey() []byte { return slices.Clone(pluginKey) }

// embeddedKeys maps the file names of the built-in keys to their bytes.
var embeddedKeys = map[string][]byte{ReleaseKeyFile: releaseKey, PluginKeyFile: pluginKey}

// ReleaseKey returns the built-in copy of Mattermost's release signing key
// (fingerprint ReleaseKeyFingerprint), ASCII-armored.
func ReleaseKey() []byte { return slices.Clone(releaseKey) }

// WriteKeys writes the plan's embedded keys into dir (created if missing)
// and points the files that use them at the written copies, so that
// Apply's manifest carries absolute key paths. Keys the user supplies are
// left where the manifest says.
func (p *Plan) WriteKeys(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("write keys: %w", err)
	}
	for i := range p.Keys {
		k := &p.Keys[i]
		if !k.Embedded {
			continue
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("write keys: %w", err)
		}
		path := filepath.Join(abs, k.File)
		if err := store.WriteFileAtomic(path, embeddedKeys[k.File], 0o644); err != nil {
			return fmt.Errorf("write key %s: %w", k.File, err)
		}
		k.Path = path
		for j := range p.Files {
			if s := p.Files[j].Signature; s != nil && s.Key == k.File && s.KeyPath == "" {
				s.KeyPath = path
			}
		}
	}
	return nil
}

// Apply returns a copy of m whose images, files and charts are m's own
// followed by the plan's. A plan item whose image reference, file URL or
// chart (repository, name, version / OCI reference, version) m already
// lists is dropped; one whose name collides with a different item of m is
// renamed with a "-mattermost" suffix, so that gather, which wants unique
// names, can run on the result unchanged. m is not modified; the plan's
// signatures are copied, so call WriteKeys first.
func (p *Plan) Apply(m *manifest.Manifest) *manifest.Manifest {
	out := *m // keeps the file name and positions for error messages
	out.Images = slices.Clone(m.Images)
	out.Files = slices.Clone(m.Files)
	out.Charts = slices.Clone(m.Charts)

	imgNames := map[string]bool{}
	refs := map[string]bool{}
	for _, i := range out.Images {
		imgNames[i.DisplayName()] = true
		refs[i.Ref] = true
	}
	for _, i := range p.Images {
		if refs[i.Ref] {
			continue
		}
		refs[i.Ref] = true
		i.Platforms = slices.Clone(i.Platforms)
		i.Name = uniqueName(imgNames, i.DisplayName())
		out.Images = append(out.Images, i)
	}

	fileNames := map[string]bool{}
	urls := map[string]bool{}
	for _, f := range out.Files {
		fileNames[f.DisplayName()] = true
		urls[f.URL] = true
	}
	for _, f := range p.Files {
		if urls[f.URL] {
			continue
		}
		urls[f.URL] = true
		if f.Signature != nil {
			s := *f.Signature
			f.Signature = &s
		}
		if n := f.DisplayName(); fileNames[n] {
			f.Name = uniqueName(fileNames, strings.ToLower(n))
		} else {
			fileNames[n] = true
		}
		out.Files = append(out.Files, f)
	}

	chartNames := map[string]bool{}
	charts := map[string]bool{}
	chartKey := func(c manifest.Chart) string { return c.Repo + "|" + c.Chart + "|" + c.OCI + "|" + c.Version }
	for _, c := range out.Charts {
		chartNames[c.DisplayName()] = true
		charts[chartKey(c)] = true
	}
	for _, c := range p.Charts {
		if charts[chartKey(c)] {
			continue
		}
		charts[chartKey(c)] = true
		c.Name = uniqueName(chartNames, c.DisplayName())
		out.Charts = append(out.Charts, c)
	}
	return &out
}

// uniqueName returns name, or name with a suffix when taken, and records it.
func uniqueName(taken map[string]bool, name string) string {
	n := name
	for i := 1; taken[n]; i++ {
		if i == 1 {
			n = name + "-mattermost"
		} else {
			n = fmt.Sprintf("%s-mattermost-%d", name, i)
		}
	}
	taken[n] = true
	return n
}

// Prepare is Expand, WriteKeys(keyDir) and Apply in one: it returns the
// manifest gather should run on (the user's artifacts followed by the
// catalog's, with absolute key paths) and the plan for its packages and
// warnings. keyDir receives the embedded keys the plan uses; it is
// created when needed and untouched when the plan uses none.
func Prepare(m *manifest.Manifest, keyDir string) (*manifest.Manifest, *Plan, error) {
	p, err := Expand(m)
	if err != nil {
		return nil, nil, err
	}
	if err := p.WriteKeys(keyDir); err != nil {
		return nil, nil, err
	}
	return p.Apply(m), p, nil
}
