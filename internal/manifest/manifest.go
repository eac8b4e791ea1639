package manifest

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// APIVersion is the apiVersion this package writes and reads.
const APIVersion = "mmgap.io/v1alpha1"

// Kind is the only kind of document this package reads.
const Kind = "Manifest"

// SupportedAPIVersions lists every apiVersion this package can read, oldest
// first.
var SupportedAPIVersions = []string{APIVersion}

// MaxSize is the largest manifest, in bytes, that Parse and Load accept.
const MaxSize = 4 << 20

// MaxErrors is how many problems Parse reports before it stops looking.
const MaxErrors = 20

// Manifest is an mmgap.yaml document: everything an air-gapped Mattermost
// installation needs, and where to get it.
type Manifest struct {
	// APIVersion is the version of this file format; mmgap.io/v1alpha1.
	APIVersion string `yaml:"apiVersion" json:"apiVersion" jsonschema:"required"`
	// Kind is the kind of document; always Manifest.
	Kind string `yaml:"kind" json:"kind" jsonschema:"required"`
	// Metadata names and describes this manifest.
	Metadata Metadata `yaml:"metadata" json:"metadata" jsonschema:"required"`
	// Mattermost describes the Mattermost deployment; mmgap expands it into the images, files, charts and packages it needs.
	Mattermost *Mattermost `yaml:"mattermost,omitempty" json:"mattermost,omitempty"`
	// Images are the container images to gather.
	Images []Image `yaml:"images,omitempty" json:"images,omitempty"`
	// Files are single files fetched over HTTP(S), such as the Mattermost release tarball.
	Files []File `yaml:"files,omitempty" json:"files,omitempty"`
	// Charts are the Helm charts to gather, from an HTTP chart repository or an OCI registry.
	Charts []Chart `yaml:"charts,omitempty" json:"charts,omitempty"`
	// Mirrors maps an upstream host to the host or base URL to fetch from instead; every fetcher honours it.
	Mirrors Mirrors `yaml:"mirrors,omitempty" json:"mirrors,omitempty"`

	file string              // file name used in error messages
	pos  map[string]Position // where each decoded path was written
}

// Metadata names and describes a manifest.
type Metadata struct {
	// Name identifies the manifest: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.
	Name string `yaml:"name" json:"name" jsonschema:"required"`
	// Description is free text for people.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Image is a container image to gather.
type Image struct {
	// Name is a short unique name for the image; it defaults to the last element of the repository path.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Ref is the image reference with a tag, a digest (@sha256:<64 hex>) or both, e.g. docker.io/library/postgres:15-alpine.
	Ref string `yaml:"ref" json:"ref" jsonschema:"required"`
	// Platforms restricts a multi-platform image to these os/arch[/variant] platforms, e.g. linux/amd64; empty means all platforms.
	Platforms []string `yaml:"platforms,omitempty" json:"platforms,omitempty"`
}

// File is a single file fetched over HTTP(S) and verified by checksum, signature or both.
type File struct {
	// Name is a short unique name for the file; it defaults to the last element of the URL path.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Version is the version of the file's content, for the inventory.
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// URL is where to download the file; http or https only.
	URL string `yaml:"url" json:"url" jsonschema:"required"`
	// SHA256 is the expected SHA-256 of the file as 64 lowercase hex digits; give at least one of sha256, signature and checksum.
	SHA256 string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
	// Signature is a detached OpenPGP signature over the file; give at least one of sha256, signature and checksum.
	Signature *Signature `yaml:"signature,omitempty" json:"signature,omitempty"`
	// Checksum is a published SHA-256 checksum file for the file (a bare digest, or sha256sum lines); give at least one of sha256, signature and checksum.
	Checksum *Checksum `yaml:"checksum,omitempty" json:"checksum,omitempty"`
}

// Checksum is a published checksum file that pins a file's SHA-256: either a single line of 64
// hex digits (such as kubectl's .sha256), or sha256sum output ("<hex>  <name>" or
// "<hex> *<name>" lines, such as helm's .sha256sum or a SHA256SUMS listing), in which the line
// naming the last element of the file's URL path is used.
type Checksum struct {
	// URL is where to download the checksum file; http or https only.
	URL string `yaml:"url" json:"url" jsonschema:"required"`
}

// Signature is a detached OpenPGP signature and the public key that must have made it.
type Signature struct {
	// URL is where to download the detached signature; http or https only.
	URL string `yaml:"url" json:"url" jsonschema:"required"`
	// Key is the OpenPGP public key file, relative to the manifest's directory.
	Key string `yaml:"key" json:"key" jsonschema:"required"`

	// KeyPath is Key resolved against the manifest's directory. Load makes it
	// absolute; Parse resolves it against the directory of the file name it
	// is given. It is not part of the file format.
	KeyPath string `yaml:"-" json:"-"`
}

// Chart is a Helm chart, from an HTTP chart repository (repo and chart) or an OCI registry (oci).
type Chart struct {
	// Name is a short unique name for the chart; it defaults to chart, or to the last element of the oci path.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Repo is the URL of an HTTP chart repository (one that serves index.yaml); give either repo or oci.
	Repo string `yaml:"repo,omitempty" json:"repo,omitempty"`
	// Chart is the chart's name in repo; required with repo.
	Chart string `yaml:"chart,omitempty" json:"chart,omitempty"`
	// OCI is the chart's OCI repository, oci://host/path/name, without a tag; give either repo or oci.
	OCI string `yaml:"oci,omitempty" json:"oci,omitempty"`
	// Version is the exact chart version (semantic version, no ranges); for oci it is the tag.
	Version string `yaml:"version" json:"version" jsonschema:"required"`
}

// Load reads and parses the manifest at path. Signature key paths become
// absolute, resolved against the manifest's directory. Problems in the
// manifest are returned as *Errors; failing to read the file is returned as
// an ordinary wrapped error.
func Load(path string) (*Manifest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	return parse(path, filepath.Dir(abs), data)
}

// Parse decodes and validates a manifest. filename is used in error
// messages and to resolve signature key paths (relative to its directory).
// It reads no file and touches no network. Problems are returned as *Errors.
func Parse(filename string, data []byte) (*Manifest, error) {
	return parse(filename, filepath.Dir(filename), data)
}

// Filename is the file name the manifest was parsed or loaded with.
func (m *Manifest) Filename() string { return m.file }

// Position reports where path (for example "images[2].platforms[0]") was
// written in the manifest. When path itself was not written, it reports the
// nearest enclosing path that was; ok is false only when none was.
func (m *Manifest) Position(p string) (pos Position, ok bool) {
	for {
		if pos, ok := m.pos[p]; ok {
			return pos, true
		}
		if p == "" {
			return Position{}, false
		}
		p = parentPath(p)
	}
}

// ErrorAt returns an *Error positioned where path was written, so that
// checks outside this package report problems in the manifest's terms.
func (m *Manifest) ErrorAt(p string, format string, args ...any) *Error {
	pos, _ := m.Position(p)
	return &Error{File: m.file, Line: pos.Line, Col: pos.Col, Path: p, Msg: fmt.Sprintf(format, args...)}
}

// Reference parses Ref. Parse has already validated it, so this fails only
// for an Image built by hand.
func (i Image) Reference() (name.Reference, error) {
	r, err := name.ParseReference(i.Ref)
	if err != nil {
		return nil, fmt.Errorf("parse image reference: %w", err)
	}
	return r, nil
}

// DisplayName is Name, or when that is empty the last element of the
// repository path of Ref (mattermost-enterprise-edition for
// docker.io/mattermost/mattermost-enterprise-edition:11.4.0).
func (i Image) DisplayName() string {
	if i.Name != "" {
		return i.Name
	}
	ref := i.Ref
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		ref = ref[:at]
	}
	last := ref[strings.LastIndexByte(ref, '/')+1:]
	if c := strings.IndexByte(last, ':'); c >= 0 {
		last = last[:c]
	}
	return last
}

// ParsedPlatforms parses the image's platforms. Parse has already validated them.
func (i Image) ParsedPlatforms() ([]Platform, error) {
	out := make([]Platform, 0, len(i.Platforms))
	for _, s := range i.Platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DisplayName is Name, or when that is empty the last element of the URL
// path, or "" when the URL has none.
func (f File) DisplayName() string {
	if f.Name != "" {
		return f.Name
	}
	u, err := url.Parse(f.URL)
	if err != nil {
		return ""
	}
	base := path.Base(u.Path)
	if base == "." || base == "/" {
		return ""
	}
	return base
}

// DisplayName is Name, or Chart, or the last element of the OCI repository
// path.
func (c Chart) DisplayName() string {
	switch {
	case c.Name != "":
		return c.Name
	case c.Chart != "":
		return c.Chart
	}
	o := strings.TrimSuffix(c.OCI, "/")
	return o[strings.LastIndexByte(o, '/')+1:]
}

// IsOCI reports whether the chart comes from an OCI registry rather than an
// HTTP chart repository.
func (c Chart) IsOCI() bool { return c.OCI != "" }
