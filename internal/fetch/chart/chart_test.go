package chart_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/chart"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

var fastRetry = fetch.Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond}

type env struct {
	t    *testing.T
	st   *store.Store
	logs *bytes.Buffer
	opts chart.Options
	f    *chart.Fetcher
}

func newEnv(t *testing.T, mod ...func(*chart.Options)) *env {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, logs: &bytes.Buffer{}}
	e.opts = chart.Options{Store: st, HTTPOptions: fetch.HTTPOptions{
		Retry:  fastRetry,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) },
	}}
	for _, m := range mod {
		m(&e.opts)
	}
	e.f, err = chart.New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) manifest(d v1.Descriptor) (v1.Manifest, []byte) {
	e.t.Helper()
	raw, err := e.st.ReadBlob(d.Digest, store.MaxManifestSize)
	if err != nil {
		e.t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatal(err)
	}
	return m, raw
}

func (e *env) blob(d v1.Hash) []byte {
	e.t.Helper()
	b, err := e.st.ReadBlob(d, 1<<30)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) assertNothingStored() {
	e.t.Helper()
	var blobs []string
	filepath.WalkDir(filepath.Join(e.st.Dir(), "blobs", "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs = append(blobs, p)
		}
		return nil
	})
	if len(blobs) != 0 {
		e.t.Errorf("blobs stored after a refused chart: %v", blobs)
	}
	im, err := e.st.Index()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(im.Manifests) != 0 {
		e.t.Errorf("index.json lists %v after a refused chart", im.Manifests)
	}
}

func mustContain(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var teamEdition = upstreamtest.Chart{
	Name:        "mattermost-team-edition",
	Version:     "6.6.50",
	AppVersion:  "10.5.0",
	Description: "Mattermost Team Edition server.",
}

// wantConfig is what `helm push` writes as the config of teamEdition: Chart.yaml as JSON, in
// the field order of Helm's chart.Metadata.
const wantConfig = `{"name":"mattermost-team-edition","version":"6.6.50","description":"Mattermost Team Edition server.",` +
	`"keywords":["mattermost","test"],"maintainers":[{"name":"mmgap tests","email":"tests@example.invalid"}],` +
	`"apiVersion":"v2","appVersion":"10.5.0","type":"application"}`

func TestRepoChart(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	tgz := repo.AddChart(t, teamEdition)
	repo.AddChart(t, upstreamtest.Chart{Name: "mattermost-team-edition", Version: "6.6.49"})
	repo.AddChart(t, upstreamtest.Chart{Name: "mattermost-operator", Version: "1.0.0"})
	e := newEnv(t)

	desc, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: "mattermost-team-edition", Version: "6.6.50"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		store.AnnotationRefName: "mmgap.charts/mattermost-team-edition:6.6.50",
		store.AnnotationKind:    "chart",
		store.AnnotationName:    "mattermost-team-edition",
		store.AnnotationVersion: "6.6.50",
		store.AnnotationSource:  repo.URL + "/mattermost-team-edition",
		store.AnnotationCreated: "2026-11-27T10:00:00Z",
	}
	for k, v := range want {
		if desc.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, desc.Annotations[k], v)
		}
	}
	m, _ := e.manifest(desc)
	if desc.MediaType != types.OCIManifestSchema1 || m.MediaType != types.OCIManifestSchema1 || m.SchemaVersion != 2 {
		t.Errorf("media types %q %q", desc.MediaType, m.MediaType)
	}
	if m.Config.MediaType != store.MediaTypeHelmConfig {
		t.Errorf("config media type %q", m.Config.MediaType)
	}
	if got := string(e.blob(m.Config.Digest)); got != wantConfig {
		t.Errorf("config\n%s\nwant\n%s", got, wantConfig)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != store.MediaTypeHelmChart || m.Layers[0].Digest.Hex != sha(tgz) {
		t.Fatalf("layers %+v", m.Layers)
	}
	if !bytes.Equal(e.blob(m.Layers[0].Digest), tgz) {
		t.Error("stored archive differs")
	}
	if err := e.st.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if s := e.logs.String(); strings.Contains(s, "no digest") {
		t.Errorf("warned about a missing digest: %s", s)
	}
}

func TestRepoChartSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo not found; install it (Debian package skopeo): the interoperability check needs it")
	}
	repo := upstreamtest.NewChartRepo(t)
	repo.AddChart(t, teamEdition)
	e := newEnv(t)
	desc, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version})
	if err != nil {
		t.Fatal(err)
	}
	_, raw := e.manifest(desc)
	out, err := exec.Command(skopeo, "inspect", "--raw", "oci:"+e.st.Dir()+":mmgap.charts/mattermost-team-edition:6.6.50").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if !bytes.Equal(bytes.TrimSpace(out), raw) {
		t.Errorf("skopeo returned\n%s\nwant\n%s", out, raw)
	}
}

func TestRepoDigestMismatch(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	tgz := repo.AddChart(t, teamEdition)
	bogus := sha([]byte("not the chart"))
	repo.SetEntry(t, teamEdition.Name, teamEdition.Version, func(d *string, _ *[]string) { *d = bogus })
	e := newEnv(t)
	_, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version})
	if !errors.Is(err, chart.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	mustContain(t, err, teamEdition.Name, bogus, sha(tgz))
	e.assertNothingStored()
}

func TestRepoTamperedArchive(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	repo.AddChart(t, teamEdition)
	evil := upstreamtest.BuildChart(t, upstreamtest.Chart{Name: teamEdition.Name, Version: teamEdition.Version, Values: "evil: true\n"})
	repo.Replace(repo.Path(upstreamtest.ArchiveName(teamEdition.Name, teamEdition.Version)), evil)
	e := newEnv(t)
	_, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version})
	if !errors.Is(err, chart.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	e.assertNothingStored()
}

func TestChartNotInIndex(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	for _, v := range []string{"1.0.0", "1.10.0", "1.2.0", "1.2.0-rc.1"} {
		repo.AddChart(t, upstreamtest.Chart{Name: "mattermost-operator", Version: v})
	}
	e := newEnv(t)
	_, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: "mattermost-operator", Version: "1.3.0"})
	if !errors.Is(err, chart.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	mustContain(t, err, `"mattermost-operator"`, `"1.3.0"`, "available versions: 1.10.0, 1.2.0, 1.2.0-rc.1, 1.0.0")

	_, err = e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: "mattermost-enterprise", Version: "1.0.0"})
	if !errors.Is(err, chart.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	mustContain(t, err, `"mattermost-enterprise"`, "mattermost-operator")
	if n := repo.Requests(repo.IndexPath()); n != 2 {
		t.Errorf("index fetched %d times, want once per Fetch (no retries of a missing version)", n)
	}
	e.assertNothingStored()
}

func TestChartYAMLMustMatch(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	// The index says 6.6.50 but the archive's Chart.yaml says 6.6.49.
	other := upstreamtest.BuildChart(t, upstreamtest.Chart{Name: teamEdition.Name, Version: "6.6.49"})
	repo.AddArchive(teamEdition, other)
	e := newEnv(t)
	_, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version})
	if !errors.Is(err, chart.ErrNotChart) {
		t.Fatalf("err = %v, want ErrNotChart", err)
	}
	mustContain(t, err, "6.6.49")
	e.assertNothingStored()
}

func TestMissingDigest(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	repo.AddChart(t, teamEdition)
	repo.SetEntry(t, teamEdition.Name, teamEdition.Version, func(d *string, _ *[]string) { *d = "" })
	req := chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version}

	strict := newEnv(t, func(o *chart.Options) { o.RequireDigest = true })
	if _, err := strict.f.Fetch(context.Background(), req); !errors.Is(err, chart.ErrChecksum) {
		t.Fatalf("RequireDigest: err = %v, want ErrChecksum", err)
	}
	strict.assertNothingStored()

	e := newEnv(t)
	if _, err := e.f.Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "publishes no digest") {
		t.Errorf("no warning logged:\n%s", e.logs)
	}
}

func TestRepoRetriesAndErrors(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	repo.AddChart(t, teamEdition)
	repo.Set(repo.IndexPath(), upstreamtest.FailFirst(2))
	repo.Set(repo.Path(upstreamtest.ArchiveName(teamEdition.Name, teamEdition.Version)), upstreamtest.TruncateAfter(100, 1))
	e := newEnv(t)
	if _, err := e.f.Fetch(context.Background(), chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version}); err != nil {
		t.Fatal(err)
	}

	down := upstreamtest.NewChartRepo(t)
	down.Set(down.IndexPath(), upstreamtest.FailAlways())
	_, err := e.f.Fetch(context.Background(), chart.Request{Name: "down", Repo: down.URL, Chart: "x", Version: "1.0.0"})
	mustContain(t, err, `"down"`, "503", "after 3 attempts")
}

func TestAbsoluteURLMirrorAndCredentials(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	releases := upstreamtest.NewFileServer(t)
	tgz := repo.AddChart(t, teamEdition)
	abs := releases.Add("/download/mattermost-team-edition-6.6.50.tgz", tgz)
	repo.SetEntry(t, teamEdition.Name, teamEdition.Version, func(_ *string, u *[]string) { *u = []string{abs} })
	mirror := upstreamtest.NewFileServer(t)
	mirror.Add("/releases/download/mattermost-team-edition-6.6.50.tgz", tgz)

	e := newEnv(t, func(o *chart.Options) {
		o.RewriteURL = func(s string) (string, error) {
			if rest, ok := strings.CutPrefix(s, releases.URL); ok {
				return mirror.URL + "/releases" + rest, nil
			}
			return s, nil
		}
	})
	repo.Set(repo.IndexPath(), upstreamtest.RequireBasicAuth("reader", "hunter2"))
	withCreds := strings.Replace(repo.URL, "http://", "http://reader:hunter2@", 1) + "?token=abc123"
	desc, err := e.f.Fetch(context.Background(), chart.Request{Repo: withCreds, Chart: teamEdition.Name, Version: teamEdition.Version})
	if err != nil {
		t.Fatal(err)
	}
	if releases.TotalRequests() != 0 || mirror.Requests("/releases/download/mattermost-team-edition-6.6.50.tgz") != 1 {
		t.Errorf("origin %d requests, mirror %d", releases.TotalRequests(), mirror.TotalRequests())
	}
	if got := desc.Annotations[store.AnnotationSource]; got != repo.URL+"/mattermost-team-edition" {
		t.Errorf("source %q", got)
	}
	_, err = e.f.Fetch(context.Background(), chart.Request{Repo: strings.Replace(withCreds, "hunter2", "wrong", 1), Chart: teamEdition.Name, Version: "9.9.9"})
	mustContain(t, err, "401")
	for _, s := range []string{"hunter2", "wrong", "abc123"} {
		if strings.Contains(err.Error(), s) || strings.Contains(e.logs.String(), s) {
			t.Errorf("secret %q leaked: %v\n%s", s, err, e.logs)
		}
	}
}

func TestRepoRerunFetchesNoArchive(t *testing.T) {
	repo := upstreamtest.NewChartRepo(t)
	repo.AddChart(t, teamEdition)
	e := newEnv(t)
	req := chart.Request{Repo: repo.URL, Chart: teamEdition.Name, Version: teamEdition.Version}
	d1, err := e.f.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	idx1, _ := os.ReadFile(filepath.Join(e.st.Dir(), "index.json"))
	repo.ResetCounters()
	later := e.opts
	later.Now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	f2, _ := chart.New(later)
	d2, err := f2.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Digest != d2.Digest {
		t.Errorf("re-run stored a different manifest: %s then %s", d1.Digest, d2.Digest)
	}
	if n := repo.Requests(repo.Path(upstreamtest.ArchiveName(teamEdition.Name, teamEdition.Version))); n != 0 {
		t.Errorf("archive fetched %d times on re-run", n)
	}
	idx2, _ := os.ReadFile(filepath.Join(e.st.Dir(), "index.json"))
	if !bytes.Equal(idx1, idx2) {
		t.Errorf("index.json changed on re-run")
	}
}

func TestOCIChart(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	op := upstreamtest.Chart{Name: "mattermost-operator", Version: "1.22.1+build.7", AppVersion: "1.22.1", Description: "Mattermost operator"}
	tgz, mdig := upstreamtest.PushOCIChart(t, reg.Host(), "charts/mattermost-operator", op)
	e := newEnv(t)
	src := "oci://" + reg.Host() + "/charts/mattermost-operator"

	desc, err := e.f.Fetch(context.Background(), chart.Request{OCI: src, Version: op.Version})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != mdig {
		t.Errorf("stored manifest %s, registry has %s", desc.Digest, mdig)
	}
	for k, v := range map[string]string{
		store.AnnotationRefName: "mmgap.charts/mattermost-operator:1.22.1+build.7",
		store.AnnotationKind:    "chart",
		store.AnnotationName:    "mattermost-operator",
		store.AnnotationVersion: "1.22.1+build.7",
		store.AnnotationSource:  src,
	} {
		if desc.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, desc.Annotations[k], v)
		}
	}
	m, _ := e.manifest(desc)
	if m.Config.MediaType != store.MediaTypeHelmConfig || !bytes.Equal(e.blob(m.Config.Digest), op.ConfigJSON()) {
		t.Errorf("config %+v", m.Config)
	}
	if !bytes.Equal(e.blob(m.Layers[0].Digest), tgz) {
		t.Error("stored archive differs")
	}
	if err := e.st.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	// Re-run: blobs come from the store.
	reg.ResetCounts()
	if _, err := e.f.Fetch(context.Background(), chart.Request{OCI: src, Version: op.Version}); err != nil {
		t.Fatal(err)
	}
	if n := reg.TotalBlobGets(); n != 0 {
		t.Errorf("re-run fetched %d blobs", n)
	}
}

func TestOCIRefusals(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	ref, err := name.ParseReference(reg.Host() + "/images/not-a-chart:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	ociRef, err := name.ParseReference(reg.Host() + "/images/oci-image:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ociRef, mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)); err != nil {
		t.Fatal(err)
	}
	// A chart whose config and archive say another version than the tag.
	c := upstreamtest.Chart{Name: "mattermost-operator", Version: "1.0.0"}
	upstreamtest.PushOCIChartArchive(t, reg.Host(), "charts/mattermost-operator", "2.0.0", c.ConfigJSON(), upstreamtest.BuildChart(t, c))

	for _, tc := range []struct {
		req  chart.Request
		want error
		subs []string
	}{
		{chart.Request{OCI: "oci://" + reg.Host() + "/images/not-a-chart", Version: "1.0.0"}, chart.ErrNotChart, []string{"not a Helm chart manifest"}},
		{chart.Request{OCI: "oci://" + reg.Host() + "/images/oci-image", Version: "1.0.0"}, chart.ErrNotChart, []string{"config media type"}},
		{chart.Request{OCI: "oci://" + reg.Host() + "/charts/mattermost-operator", Version: "2.0.0"}, chart.ErrNotChart, []string{`"1.0.0"`}},
	} {
		e := newEnv(t)
		_, err := e.f.Fetch(context.Background(), tc.req)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.req.OCI, err, tc.want)
			continue
		}
		mustContain(t, err, tc.subs...)
		e.assertNothingStored()
	}

	e := newEnv(t)
	_, err = e.f.Fetch(context.Background(), chart.Request{OCI: "oci://" + reg.Host() + "/charts/absent", Version: "1.0.0"})
	mustContain(t, err, `"absent"`)
	for _, bad := range []chart.Request{
		{OCI: "oci://" + reg.Host() + "/charts/x:1.0.0", Version: "1.0.0"},
		{OCI: "https://" + reg.Host() + "/charts/x", Version: "1.0.0"},
		{OCI: "oci://" + reg.Host(), Version: "1.0.0"},
		{OCI: "oci://" + reg.Host() + "/charts/x", Version: ""},
		{OCI: "oci://" + reg.Host() + "/charts/x", Repo: "http://127.0.0.1/", Version: "1.0.0"},
		{Repo: "file:///etc", Chart: "x", Version: "1.0.0"},
		{Repo: "http://127.0.0.1:1", Chart: "../x", Version: "1.0.0"},
	} {
		if _, err := e.f.Fetch(context.Background(), bad); err == nil {
			t.Errorf("request %+v accepted", bad)
		}
	}
}
