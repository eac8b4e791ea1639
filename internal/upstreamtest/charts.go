package upstreamtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gopkg.in/yaml.v3"
)

// Helm's OCI media types (https://helm.sh/docs/topics/registries/).
const (
	HelmConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	HelmChartMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// Chart describes a Helm chart to build.
type Chart struct {
	Name        string
	Version     string
	AppVersion  string
	Description string
	// APIVersion defaults to v2.
	APIVersion string
	// Values is values.yaml; a small default when empty.
	Values string
	// Templates maps file names under templates/ to their content; one ConfigMap when empty.
	Templates map[string]string
	// ChartYAML, when set, is written as Chart.yaml verbatim instead of one made from the fields.
	ChartYAML string
	// Extra maps further paths (relative to the chart directory) to content.
	Extra map[string]string
}

func (c Chart) chartYAML() string {
	if c.ChartYAML != "" {
		return c.ChartYAML
	}
	api := c.APIVersion
	if api == "" {
		api = "v2"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: %s\nname: %s\nversion: %q\n", api, c.Name, c.Version)
	if c.AppVersion != "" {
		fmt.Fprintf(&b, "appVersion: %q\n", c.AppVersion)
	}
	if c.Description != "" {
		fmt.Fprintf(&b, "description: %q\n", c.Description)
	}
	b.WriteString("type: application\nkeywords:\n  - mattermost\n  - test\nmaintainers:\n  - name: mmgap tests\n    email: tests@example.invalid\n")
	return b.String()
}

// ConfigJSON is the Helm OCI config (Chart.yaml as JSON) for a chart built from the fields.
func (c Chart) ConfigJSON() []byte {
	api := c.APIVersion
	if api == "" {
		api = "v2"
	}
	m := struct {
		Name        string `json:"name"`
		Version     string `json:"version"`
		Description string `json:"description,omitempty"`
		APIVersion  string `json:"apiVersion"`
		AppVersion  string `json:"appVersion,omitempty"`
		Type        string `json:"type"`
	}{c.Name, c.Version, c.Description, api, c.AppVersion, "application"}
	b, _ := json.Marshal(m)
	return b
}

// BuildChart makes the chart's .tgz archive the way `helm package` lays it out: every file
// under a directory named after the chart. The archive is deterministic.
func BuildChart(t testing.TB, c Chart) []byte {
	t.Helper()
	files := map[string]string{"Chart.yaml": c.chartYAML()}
	files["values.yaml"] = c.Values
	if c.Values == "" {
		files["values.yaml"] = "replicaCount: 1\nimage:\n  repository: mattermost/mattermost-team-edition\n"
	}
	if len(c.Templates) == 0 {
		files["templates/configmap.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  replicas: \"{{ .Values.replicaCount }}\"\n"
	}
	for n, v := range c.Templates {
		files["templates/"+n] = v
	}
	for n, v := range c.Extra {
		files[n] = v
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range names {
		body := files[n]
		hdr := &tar.Header{Name: c.Name + "/" + n, Mode: 0o644, Size: int64(len(body)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ChartRepo is a Helm HTTP chart repository on 127.0.0.1: index.yaml plus chart archives under
// URL. Its FileServer gives fault injection and counters; paths are ChartRepo.Path(...).
type ChartRepo struct {
	*FileServer
	// URL is the repository URL (what `helm repo add` takes), without a trailing slash.
	URL string

	mu      sync.Mutex
	entries map[string][]chartIndexEntry
}

// chartIndexEntry is one version of a chart in index.yaml.
type chartIndexEntry struct {
	APIVersion  string    `yaml:"apiVersion"`
	Name        string    `yaml:"name"`
	Version     string    `yaml:"version"`
	AppVersion  string    `yaml:"appVersion,omitempty"`
	Description string    `yaml:"description,omitempty"`
	Type        string    `yaml:"type,omitempty"`
	Created     time.Time `yaml:"created"`
	Digest      string    `yaml:"digest,omitempty"`
	URLs        []string  `yaml:"urls"`
}

// chartRepoBase is the path under which a ChartRepo serves, to exercise relative URLs.
const chartRepoBase = "/charts"

// NewChartRepo starts an empty chart repository.
func NewChartRepo(t testing.TB) *ChartRepo {
	t.Helper()
	fs := NewFileServer(t)
	r := &ChartRepo{FileServer: fs, URL: fs.URL + chartRepoBase, entries: map[string][]chartIndexEntry{}}
	r.writeIndex()
	return r
}

// Path is the server path of a file in the repository, for FileServer's counters and faults.
func (r *ChartRepo) Path(file string) string {
	return chartRepoBase + "/" + strings.TrimPrefix(file, "/")
}

// IndexPath is the server path of index.yaml.
func (r *ChartRepo) IndexPath() string { return r.Path("index.yaml") }

// ArchiveName is the file name of a chart version's archive in the repository.
func ArchiveName(name, version string) string { return name + "-" + version + ".tgz" }

// AddChart builds the chart, serves it at a relative URL and lists it in index.yaml with its
// digest. It returns the archive.
func (r *ChartRepo) AddChart(t testing.TB, c Chart) []byte {
	t.Helper()
	tgz := BuildChart(t, c)
	r.AddArchive(c, tgz)
	return tgz
}

// AddArchive serves tgz as chart c and lists it in index.yaml with tgz's digest.
func (r *ChartRepo) AddArchive(c Chart, tgz []byte) {
	file := ArchiveName(c.Name, c.Version)
	r.FileServer.Add(r.Path(file), tgz)
	sum := sha256.Sum256(tgz)
	api := c.APIVersion
	if api == "" {
		api = "v2"
	}
	r.mu.Lock()
	r.entries[c.Name] = append(r.entries[c.Name], chartIndexEntry{
		APIVersion: api, Name: c.Name, Version: c.Version, AppVersion: c.AppVersion,
		Description: c.Description, Type: "application",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Digest:  hex.EncodeToString(sum[:]), URLs: []string{file},
	})
	r.mu.Unlock()
	r.writeIndex()
}

// SetEntry changes the index entry of name/version with fn and rewrites index.yaml.
func (r *ChartRepo) SetEntry(t testing.TB, name, version string, fn func(digest *string, urls *[]string)) {
	t.Helper()
	r.mu.Lock()
	found := false
	for i := range r.entries[name] {
		e := &r.entries[name][i]
		if e.Version == version {
			fn(&e.Digest, &e.URLs)
			found = true
		}
	}
	r.mu.Unlock()
	if !found {
		t.Fatalf("upstreamtest: chart repo has no %s %s", name, version)
	}
	r.writeIndex()
}

// SetRawIndex serves b as index.yaml verbatim (until the next AddChart or SetEntry).
func (r *ChartRepo) SetRawIndex(b []byte) {
	r.FileServer.Add(r.IndexPath(), b)
}

func (r *ChartRepo) writeIndex() {
	r.mu.Lock()
	idx := struct {
		APIVersion string                       `yaml:"apiVersion"`
		Entries    map[string][]chartIndexEntry `yaml:"entries"`
		Generated  time.Time                    `yaml:"generated"`
	}{"v1", r.entries, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := yaml.Marshal(idx)
	r.mu.Unlock()
	if err != nil {
		panic(err) // plain structs always marshal
	}
	r.FileServer.Add(r.IndexPath(), b)
}

// helmArtifact is a manifest pushed with remote.Put.
type helmArtifact struct {
	raw []byte
}

func (a helmArtifact) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a helmArtifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// PushOCIChart pushes chart c to the OCI registry at host (host:port, served over plain HTTP on
// loopback) as host/repository:c.Version with Helm's media types, the way `helm push` does.
// It returns the archive and the manifest digest.
func PushOCIChart(t testing.TB, host, repository string, c Chart) ([]byte, v1.Hash) {
	t.Helper()
	tgz := BuildChart(t, c)
	return tgz, PushOCIChartArchive(t, host, repository, c.Version, c.ConfigJSON(), tgz)
}

// PushOCIChartArchive pushes a given config and archive as host/repository:tag ('+' in tag is
// written '_', as Helm does).
func PushOCIChartArchive(t testing.TB, host, repository, tag string, config, tgz []byte) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repository + ":" + strings.ReplaceAll(tag, "+", "_"))
	if err != nil {
		t.Fatalf("upstreamtest: chart reference: %v", err)
	}
	cfgLayer := static.NewLayer(config, types.MediaType(HelmConfigMediaType))
	chartLayer := static.NewLayer(tgz, types.MediaType(HelmChartMediaType))
	for _, l := range []v1.Layer{cfgLayer, chartLayer} {
		if err := remote.WriteLayer(ref.Context(), l); err != nil {
			t.Fatalf("upstreamtest: push chart blob: %v", err)
		}
	}
	desc := func(b []byte, mt string) v1.Descriptor {
		sum := sha256.Sum256(b)
		return v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(len(b)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        desc(config, HelmConfigMediaType),
		Layers:        []v1.Descriptor{desc(tgz, HelmChartMediaType)},
		Annotations:   map[string]string{"org.opencontainers.image.title": repository[strings.LastIndexByte(repository, '/')+1:], "org.opencontainers.image.version": tag},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, helmArtifact{raw}); err != nil {
		t.Fatalf("upstreamtest: push chart manifest: %v", err)
	}
	sum := sha256.Sum256(raw)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
