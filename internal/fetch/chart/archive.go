package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Limits on chart archives, in line with Helm's own (pkg/chart/loader).
const (
	// MaxChartSize bounds a chart archive as fetched (compressed).
	MaxChartSize = 32 << 20
	// MaxChartExpandedSize bounds the archive's uncompressed tar stream.
	MaxChartExpandedSize = 100 << 20
	// MaxChartYAMLSize bounds Chart.yaml.
	MaxChartYAMLSize = 1 << 20
	// maxChartEntries bounds the number of tar entries.
	maxChartEntries = 20000
)

// Maintainer is a chart maintainer, as Helm models it.
type Maintainer struct {
	Name  string `json:"name,omitempty" yaml:"name"`
	Email string `json:"email,omitempty" yaml:"email"`
	URL   string `json:"url,omitempty" yaml:"url"`
}

// Dependency is a chart dependency, as Helm models it.
type Dependency struct {
	Name         string   `json:"name" yaml:"name"`
	Version      string   `json:"version,omitempty" yaml:"version"`
	Repository   string   `json:"repository" yaml:"repository"`
	Condition    string   `json:"condition,omitempty" yaml:"condition"`
	Tags         []string `json:"tags,omitempty" yaml:"tags"`
	Enabled      bool     `json:"enabled,omitempty" yaml:"enabled"`
	ImportValues []any    `json:"import-values,omitempty" yaml:"import-values"`
	Alias        string   `json:"alias,omitempty" yaml:"alias"`
}

// Metadata is a chart's Chart.yaml. Its JSON form, field for field and in the same order, is
// what Helm pushes as the OCI config of a chart (helm.sh/helm/v3/pkg/chart.Metadata).
type Metadata struct {
	Name         string            `json:"name,omitempty" yaml:"name"`
	Home         string            `json:"home,omitempty" yaml:"home"`
	Sources      []string          `json:"sources,omitempty" yaml:"sources"`
	Version      string            `json:"version,omitempty" yaml:"version"`
	Description  string            `json:"description,omitempty" yaml:"description"`
	Keywords     []string          `json:"keywords,omitempty" yaml:"keywords"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty" yaml:"maintainers"`
	Icon         string            `json:"icon,omitempty" yaml:"icon"`
	APIVersion   string            `json:"apiVersion,omitempty" yaml:"apiVersion"`
	Condition    string            `json:"condition,omitempty" yaml:"condition"`
	Tags         string            `json:"tags,omitempty" yaml:"tags"`
	AppVersion   string            `json:"appVersion,omitempty" yaml:"appVersion"`
	Deprecated   bool              `json:"deprecated,omitempty" yaml:"deprecated"`
	Annotations  map[string]string `json:"annotations,omitempty" yaml:"annotations"`
	KubeVersion  string            `json:"kubeVersion,omitempty" yaml:"kubeVersion"`
	Dependencies []*Dependency     `json:"dependencies,omitempty" yaml:"dependencies"`
	Type         string            `json:"type,omitempty" yaml:"type"`
}

// ParseChartYAML decodes and checks Chart.yaml the way Helm does before it pushes a chart:
// apiVersion, name and version are required, the name is a plain file name, the type is
// application or library, and free-text fields lose control characters.
func ParseChartYAML(data []byte) (md *Metadata, err error) {
	if len(data) > MaxChartYAMLSize {
		return nil, fmt.Errorf("Chart.yaml: larger than %d bytes", MaxChartYAMLSize)
	}
	defer func() {
		if r := recover(); r != nil {
			md, err = nil, errors.New("Chart.yaml: YAML parser failed on this input")
		}
	}()
	md = &Metadata{}
	if err := yaml.Unmarshal(data, md); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	md.sanitize()
	switch {
	case md.APIVersion == "":
		return nil, errors.New("Chart.yaml: apiVersion is required")
	case md.Name == "":
		return nil, errors.New("Chart.yaml: name is required")
	case md.Name == "." || md.Name == ".." || strings.ContainsAny(md.Name, `/\`):
		return nil, fmt.Errorf("Chart.yaml: name %q is not allowed", clip(md.Name))
	case md.Version == "":
		return nil, errors.New("Chart.yaml: version is required")
	case md.Type != "" && md.Type != "application" && md.Type != "library":
		return nil, errors.New("Chart.yaml: type must be application or library")
	}
	for _, m := range md.Maintainers {
		if m == nil {
			return nil, errors.New("Chart.yaml: maintainers must not contain empty entries")
		}
	}
	for _, d := range md.Dependencies {
		if d == nil {
			return nil, errors.New("Chart.yaml: dependencies must not contain empty entries")
		}
	}
	return md, nil
}

// sanitize does what Helm's Metadata.Validate does to strings: whitespace becomes a space and
// non-printable characters go.
func (md *Metadata) sanitize() {
	s := func(p *string) {
		*p = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return ' '
			}
			if unicode.IsPrint(r) {
				return r
			}
			return -1
		}, *p)
	}
	for _, p := range []*string{&md.Name, &md.Description, &md.Home, &md.Icon, &md.Condition, &md.Tags, &md.AppVersion, &md.KubeVersion} {
		s(p)
	}
	for i := range md.Sources {
		s(&md.Sources[i])
	}
	for i := range md.Keywords {
		s(&md.Keywords[i])
	}
	for _, m := range md.Maintainers {
		if m != nil {
			s(&m.Name)
			s(&m.Email)
			s(&m.URL)
		}
	}
}

// ConfigJSON is the Helm OCI config blob for the chart: Chart.yaml as JSON.
func (md *Metadata) ConfigJSON() ([]byte, error) {
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml as JSON: %w", err)
	}
	return b, nil
}

// countingReader fails once more than limit bytes were read.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, fmt.Errorf("chart archive expands to more than %d bytes", c.limit)
	}
	return n, err
}

// ReadChartArchive reads a chart .tgz as Helm lays it out (every file under one top-level
// directory) and returns its Chart.yaml, parsed and raw. The whole archive is read, so that a
// corrupt or hostile archive is refused here rather than at install time: entries that are not
// regular files or directories, names that are absolute or contain "..", a Chart.yaml outside
// the chart's directory or more than one, and archives beyond the size limits.
func ReadChartArchive(tgz []byte) (md *Metadata, raw []byte, err error) {
	if len(tgz) > MaxChartSize {
		return nil, nil, fmt.Errorf("chart archive: larger than %d bytes", MaxChartSize)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, nil, fmt.Errorf("chart archive: not gzip: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(&countingReader{r: zr, limit: MaxChartExpandedSize})
	for entries := 0; ; entries++ {
		if entries >= maxChartEntries {
			return nil, nil, fmt.Errorf("chart archive: more than %d entries", maxChartEntries)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("chart archive: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg, tar.TypeDir:
		default:
			return nil, nil, fmt.Errorf("chart archive: entry %q is not a regular file or directory", clip(hdr.Name))
		}
		name := strings.ReplaceAll(hdr.Name, `\`, "/")
		if strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
			return nil, nil, fmt.Errorf("chart archive: entry %q has an absolute or invalid name", clip(hdr.Name))
		}
		for _, el := range strings.Split(name, "/") {
			if el == ".." {
				return nil, nil, fmt.Errorf("chart archive: entry %q leaves the chart directory", clip(hdr.Name))
			}
		}
		clean := path.Clean(strings.TrimPrefix(name, "./"))
		parts := strings.Split(clean, "/")
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		if len(parts) == 1 {
			if parts[0] == "Chart.yaml" {
				return nil, nil, errors.New("chart archive: Chart.yaml is not inside the chart's directory")
			}
			continue
		}
		if len(parts) != 2 || parts[1] != "Chart.yaml" {
			continue
		}
		if raw != nil {
			return nil, nil, fmt.Errorf("chart archive: more than one Chart.yaml (%q)", clip(hdr.Name))
		}
		if hdr.Size > MaxChartYAMLSize {
			return nil, nil, fmt.Errorf("chart archive: Chart.yaml larger than %d bytes", MaxChartYAMLSize)
		}
		raw, err = io.ReadAll(io.LimitReader(tr, MaxChartYAMLSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("chart archive: read Chart.yaml: %w", err)
		}
		if len(raw) == 0 {
			raw = []byte{} // present but empty; ParseChartYAML refuses it
		}
	}
	if raw == nil {
		return nil, nil, errors.New("chart archive: no Chart.yaml")
	}
	md, err = ParseChartYAML(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("chart archive: %w", err)
	}
	return md, raw, nil
}
