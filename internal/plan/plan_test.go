package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/gather"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

// fixture is a set of upstreams on 127.0.0.1 and a manifest naming everything they serve.
type fixture struct {
	reg    *upstreamtest.Registry
	files  *upstreamtest.FileServer
	charts *upstreamtest.ChartRepo
	dir    string
	base   upstreamtest.RegistryLayer
	server upstreamtest.RegistryIndex
	pg     upstreamtest.RegistryImage
	tgz    []byte // repo chart archive
	oci    []byte // OCI chart archive
	tar    []byte // signed file
	mmctl  []byte // file with sha256
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reg: upstreamtest.NewRegistry(t), files: upstreamtest.NewFileServer(t), charts: upstreamtest.NewChartRepo(t), dir: t.TempDir()}
	f.base = f.reg.Layer(t, 48<<10)
	f.server = f.reg.PushIndex(t, "mattermost/server", "11.4.0", upstreamtest.RegistryIndexSpec{
		Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Layers: 2, LayerSize: 32 << 10,
		Shared: []upstreamtest.RegistryLayer{f.base}, Attestations: true})
	f.pg = f.reg.PushImage(t, "library/postgres", "15", upstreamtest.RegistryImageSpec{
		Layers: 1, LayerSize: 16 << 10, Shared: []upstreamtest.RegistryLayer{f.base}})
	f.oci, _ = upstreamtest.PushOCIChart(t, f.reg.Host(), "charts/mattermost-operator",
		upstreamtest.Chart{Name: "mattermost-operator", Version: "1.0.0", AppVersion: "1.22.0"})
	f.tgz = f.charts.AddChart(t, upstreamtest.Chart{Name: "mattermost-team-edition", Version: "2.6.0", AppVersion: "11.4.0"})
	f.tar = randomBytes(t, 30<<10)
	f.files.AddSigned("/releases/mattermost.tar.gz", f.tar, nil)
	f.mmctl = randomBytes(t, 12<<10)
	f.files.Add("/tools/mmctl.tar.gz", f.mmctl)
	if err := os.WriteFile(filepath.Join(f.dir, "upstream.asc"), f.files.Key().PublicArmored, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7919 + n + i/251)
	}
	sum := sha256.Sum256(b)
	copy(b, sum[:]) // distinct per size
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// yaml is the manifest naming everything f serves; extra is appended verbatim.
func (f *fixture) yaml(extra string) string {
	return fmt.Sprintf(`apiVersion: mmgap.io/v1alpha1
kind: Manifest
metadata:
  name: plan-test
images:
  - name: server
    ref: %[1]s/mattermost/server:11.4.0
    platforms: [linux/amd64]
  - name: postgres
    ref: %[1]s/library/postgres:15
files:
  - name: tarball
    version: 11.4.0
    url: %[2]s/releases/mattermost.tar.gz
    signature:
      url: %[2]s/releases/mattermost.tar.gz.asc
      key: upstream.asc
  - name: mmctl
    url: %[2]s/tools/mmctl.tar.gz
    sha256: %[3]s
charts:
  - repo: %[4]s
    chart: mattermost-team-edition
    version: 2.6.0
  - oci: oci://%[1]s/charts/mattermost-operator
    version: 1.0.0
%[5]s`, f.reg.Host(), f.files.URL, sha(f.mmctl), f.charts.URL, extra)
}

func (f *fixture) manifest(t *testing.T, extra string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse(filepath.Join(f.dir, "mmgap.yaml"), []byte(f.yaml(extra)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func plentyOfSpace(string) (uint64, error) { return 1 << 50, nil }

func opts(st *store.Store) Options {
	return Options{Store: st, Auth: authn.Anonymous, FreeSpace: plentyOfSpace}
}

func byName(t *testing.T, p *Plan, name string) Item {
	t.Helper()
	for _, it := range p.Items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no artifact %q in plan", name)
	return Item{}
}

// contentBytes sums the non-manifest blobs an artifact reaches in the store.
func contentBytes(t *testing.T, st *store.Store, desc v1.Descriptor, skipSignature, repoChart bool) int64 {
	t.Helper()
	blobs, err := st.Reachable(desc)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, b := range blobs {
		if store.IsIndex(b.MediaType) || store.IsManifest(b.MediaType) {
			continue
		}
		if desc.Annotations[store.AnnotationKind] == store.KindFile && (b.MediaType == store.MediaTypeEmpty || (skipSignature && b.MediaType == store.MediaTypePGPSignature)) {
			continue
		}
		if repoChart && b.MediaType != store.MediaTypeHelmChart {
			continue // gather writes the config of a chart from an HTTP repository itself
		}
		n += b.Size
	}
	return n
}

func TestPlanSizesMatchGather(t *testing.T) {
	f := newFixture(t)
	m := f.manifest(t, "")
	regBefore := f.reg.TotalBlobBytes()
	p, err := Run(context.Background(), m, opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.reg.TotalBlobBytes() - regBefore; got != 0 {
		t.Errorf("plan downloaded %d blob bytes from the registry", got)
	}
	if p.Verdict != VerdictOK || p.Totals.Failed != 0 {
		t.Fatalf("verdict %s, %+v", p.Verdict, p.Errors())
	}
	amd := f.server.Images[0]
	if s := byName(t, p, "server"); s.Size != amd.BlobBytes()+f.server.Attestations[0].BlobBytes() ||
		len(s.Platforms) != 1 || s.Platforms[0] != "linux/amd64" || s.Digest != f.server.Digest.String() {
		t.Errorf("server: %+v, want size %d", s, amd.BlobBytes()+f.server.Attestations[0].BlobBytes())
	}
	if s := byName(t, p, "tarball"); s.Size != int64(len(f.tar)) || s.Status != StatusUnknown {
		t.Errorf("tarball: %+v", s)
	}
	if s := byName(t, p, "mattermost-team-edition"); s.Size != int64(len(f.tgz)) || s.Digest != "sha256:"+sha(f.tgz) {
		t.Errorf("repo chart: %+v", s)
	}

	// gather, then compare with what the store holds
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := f.reg.TotalBlobBytes()
	rep, err := gather.Run(context.Background(), m, gather.Options{Store: st, Auth: authn.Anonymous, Retry: fetch.Retry{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	fetchedFromRegistry := f.reg.TotalBlobBytes() - before
	var wantRegistry int64
	for i, gi := range rep.Items {
		pi := p.Items[i]
		if pi.Name != gi.Name || pi.Kind != gi.Kind {
			t.Fatalf("item %d: plan %s %s, gather %s %s", i, pi.Kind, pi.Name, gi.Kind, gi.Name)
		}
		desc, ok, err := st.Lookup(gi.Ref)
		if err != nil || !ok {
			t.Fatalf("%s not in store: %v", gi.Ref, err)
		}
		if got := contentBytes(t, st, desc, true, pi.Kind == store.KindChart && !strings.HasPrefix(pi.Source, "oci://")); got != pi.Size {
			t.Errorf("%s %s: plan says %d bytes, gather stored %d", pi.Kind, pi.Name, pi.Size, got)
		}
		if pi.Kind == store.KindImage {
			if desc.Digest.String() != pi.Digest && desc.Annotations[store.AnnotationUpstreamDigest] != pi.Digest {
				t.Errorf("%s: plan digest %s, gather %s", pi.Name, pi.Digest, desc.Digest)
			}
		}
	}
	// the registry served exactly the unique config and layer bytes the plan counted for images
	// and the OCI chart (each shared layer once)
	seen := map[v1.Hash]bool{}
	for _, it := range p.Items {
		if it.Kind == store.KindImage || (it.Kind == store.KindChart && strings.HasPrefix(it.Source, "oci://")) {
			for d, n := range it.blobs {
				if !seen[d] {
					seen[d] = true
					wantRegistry += n
				}
			}
		}
	}
	if fetchedFromRegistry != wantRegistry {
		t.Errorf("gather fetched %d blob bytes from the registry; plan counted %d", fetchedFromRegistry, wantRegistry)
	}

	// the same plan against the filled store: nothing to download
	p2, err := Run(context.Background(), m, opts(st))
	if err != nil {
		t.Fatal(err)
	}
	if p2.Totals.Download != 0 {
		t.Errorf("after gather, download %d bytes; want 0", p2.Totals.Download)
	}
	for _, it := range p2.Items {
		if it.Status != StatusStored || it.Download != 0 || it.Stored != it.Size {
			t.Errorf("after gather: %s %s status %s download %d stored %d size %d", it.Kind, it.Name, it.Status, it.Download, it.Stored, it.Size)
		}
	}
}

func TestPlanSharedLayersCountOnce(t *testing.T) {
	f := newFixture(t)
	p, err := Run(context.Background(), f.manifest(t, ""), opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	server, pg := byName(t, p, "server"), byName(t, p, "postgres")
	if pg.Size != f.pg.BlobBytes() {
		t.Errorf("postgres size %d, want %d", pg.Size, f.pg.BlobBytes())
	}
	var sum, meta int64
	for _, it := range p.Items {
		sum += it.Size
		for _, n := range it.meta {
			meta += n
		}
	}
	// The base layer is in both images: the total has it once. Manifests count too.
	if want := sum - f.base.Descriptor.Size + meta; p.Totals.Download != want {
		t.Errorf("total download %d, want %d (sum of sizes %d less the shared %d, plus manifests %d)", p.Totals.Download, want, sum, f.base.Descriptor.Size, meta)
	}
	if p.Totals.Store < p.Totals.Download || p.Totals.Bundle < p.Totals.Store {
		t.Errorf("totals out of order: %+v", p.Totals)
	}
	_ = server
}

func TestPlanAlreadyStored(t *testing.T) {
	f := newFixture(t)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// gather postgres only: the base layer it shares with server is then stored
	small, err := manifest.Parse(filepath.Join(f.dir, "small.yaml"), []byte(fmt.Sprintf(
		"apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n  name: small\nimages:\n  - name: postgres\n    ref: %s/library/postgres:15\n", f.reg.Host())))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gather.Run(context.Background(), small, gather.Options{Store: st, Auth: authn.Anonymous}); err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), f.manifest(t, ""), opts(st))
	if err != nil {
		t.Fatal(err)
	}
	pg, server := byName(t, p, "postgres"), byName(t, p, "server")
	if pg.Status != StatusStored || pg.Download != 0 {
		t.Errorf("postgres: %+v", pg)
	}
	if server.Status != StatusPartial || server.Stored != f.base.Descriptor.Size || server.Download != server.Size-f.base.Descriptor.Size {
		t.Errorf("server: status %s stored %d download %d size %d; base layer %d", server.Status, server.Stored, server.Download, server.Size, f.base.Descriptor.Size)
	}
	if p.Totals.Stored < f.pg.BlobBytes() {
		t.Errorf("totals stored %d < postgres %d", p.Totals.Stored, f.pg.BlobBytes())
	}
	if mm := byName(t, p, "mmctl"); mm.Status != StatusDownload || mm.Download != int64(len(f.mmctl)) {
		t.Errorf("mmctl: %+v", mm)
	}
}

func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestPlanUnreachableIsPerArtifact(t *testing.T) {
	f := newFixture(t)
	dead := deadPort(t)
	m := f.manifest(t, fmt.Sprintf(`  - repo: http://%[1]s/charts
    chart: gone
    version: 1.0.0
`, dead))
	m.Images = append(m.Images, manifest.Image{Name: "nowhere", Ref: dead + "/library/nowhere:1"},
		manifest.Image{Name: "missing", Ref: f.reg.Host() + "/library/missing:1"},
		manifest.Image{Name: "wrongplat", Ref: f.reg.Host() + "/mattermost/server:11.4.0", Platforms: []string{"linux/s390x"}},
		manifest.Image{Name: "wrongplat1", Ref: f.reg.Host() + "/library/postgres:15", Platforms: []string{"linux/arm64"}})
	m.Files = append(m.Files, manifest.File{Name: "404", URL: f.files.URL + "/no/such/file", SHA256: sha(nil)})
	p, err := Run(context.Background(), m, opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.Verdict != VerdictPartial || p.Totals.Failed != 6 {
		t.Fatalf("verdict %s failed %d: %+v", p.Verdict, p.Totals.Failed, p.Items)
	}
	for _, n := range []string{"nowhere", "missing", "wrongplat", "wrongplat1", "404", "gone"} {
		it := byName(t, p, n)
		if it.Status != StatusError || it.Error == "" || it.Size != -1 || !strings.Contains(it.Error, n) && n != "404" {
			t.Errorf("%s: %+v", n, it)
		}
	}
	if !strings.Contains(byName(t, p, "wrongplat").Error, "linux/s390x not offered") {
		t.Errorf("wrongplat: %s", byName(t, p, "wrongplat").Error)
	}
	if e := byName(t, p, "wrongplat1").Error; !strings.Contains(e, "linux/arm64 not offered by the source; it offers linux/amd64") {
		t.Errorf("wrongplat1: %s", e)
	}
	if !strings.Contains(byName(t, p, "404").Error, "404") {
		t.Errorf("404: %s", byName(t, p, "404").Error)
	}
	if s := byName(t, p, "server"); s.Status != StatusDownload || s.Size <= 0 {
		t.Errorf("server should still be sized: %+v", s)
	}
}

func TestPlanHonoursMirrors(t *testing.T) {
	f := newFixture(t)
	// Upstream names under .invalid never resolve: every request must go to the mirrors.
	y := fmt.Sprintf(`apiVersion: mmgap.io/v1alpha1
kind: Manifest
metadata:
  name: mirrored
images:
  - name: postgres
    ref: registry.example.invalid/library/postgres:15
files:
  - name: mmctl
    url: https://files.example.invalid/tools/mmctl.tar.gz
    sha256: %s
charts:
  - repo: https://charts.example.invalid/charts
    chart: mattermost-team-edition
    version: 2.6.0
  - oci: oci://registry.example.invalid/charts/mattermost-operator
    version: 1.0.0
mirrors:
  registry.example.invalid: %s
  files.example.invalid: %s
  charts.example.invalid: %s
`, sha(f.mmctl), f.reg.Host(), f.files.URL, f.charts.FileServer.URL)
	m, err := manifest.Parse("mirrored.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), m, opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.Verdict != VerdictOK {
		t.Fatalf("verdict %s: %+v", p.Verdict, p.Errors())
	}
	pg := byName(t, p, "postgres")
	if pg.Source != "registry.example.invalid/library/postgres:15" || pg.Resolved != f.reg.Host()+"/library/postgres:15" || pg.Size != f.pg.BlobBytes() {
		t.Errorf("postgres: %+v", pg)
	}
	mm := byName(t, p, "mmctl")
	if mm.Resolved != f.files.URL+"/tools/mmctl.tar.gz" || mm.Size != int64(len(f.mmctl)) {
		t.Errorf("mmctl: %+v", mm)
	}
	if c := byName(t, p, "mattermost-team-edition"); !strings.HasPrefix(c.Resolved, f.charts.FileServer.URL+"/") || c.Size != int64(len(f.tgz)) {
		t.Errorf("chart: %+v", c)
	}
	if c := byName(t, p, "mattermost-operator"); !strings.HasPrefix(c.Resolved, "oci://"+f.reg.Host()+"/") || c.Size <= int64(len(f.oci)) {
		t.Errorf("oci chart: %+v", c)
	}
}

// A server that refuses HEAD is sized by a GET of one byte.
func TestPlanRangedGetFallback(t *testing.T) {
	content := randomBytes(t, 5000)
	var heads, gets int
	var rangeHdr string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads++
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		gets++
		rangeHdr = r.Header.Get("Range")
		w.Header().Set("Content-Range", "bytes 0-0/"+strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(content[:1])
	}))
	defer srv.Close()
	m := &manifest.Manifest{Files: []manifest.File{{Name: "f", URL: srv.URL + "/f.bin", SHA256: sha(content)}}}
	p, err := Run(context.Background(), m, opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if it := p.Items[0]; it.Size != int64(len(content)) || heads != 1 || gets != 1 || rangeHdr != "bytes=0-0" {
		t.Errorf("size %d (want %d), %d HEAD, %d GET with Range %q", it.Size, len(content), heads, gets, rangeHdr)
	}
}

func TestPlanDiskRefusal(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	o := opts(nil)
	o.StoreDir = filepath.Join(dir, "store", "not", "yet")
	o.BundlePath = filepath.Join(dir, "site.mmgap.tar.zst")
	var asked []string
	o.FreeSpace = func(p string) (uint64, error) { asked = append(asked, p); return 100 << 10, nil }
	p, err := Run(context.Background(), f.manifest(t, ""), o)
	var de *DiskError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want *DiskError", err)
	}
	if p == nil || p.Verdict != VerdictNoSpace {
		t.Fatalf("plan %+v", p)
	}
	// store and bundle share a filesystem: one check, their needs added
	if len(p.Disks) != 1 || len(p.Disks[0].Uses) != 2 || len(asked) != 1 || asked[0] != dir {
		t.Fatalf("disks %+v, asked %v", p.Disks, asked)
	}
	want := uint64(p.Totals.Download) + uint64(p.Totals.Bundle)
	if de.Need < want || de.Free != 100<<10 || de.Path != dir {
		t.Errorf("DiskError %+v; want need >= %d", de, want)
	}
	msg := de.Error()
	for _, s := range []string{"not enough disk space at " + dir, "need " + HumanBytes(de.Need), "100.0 KiB free", "--store", "-o"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q lacks %q", msg, s)
		}
	}

	// enough room: no error
	o.FreeSpace = plentyOfSpace
	if _, err := Run(context.Background(), f.manifest(t, ""), o); err != nil {
		t.Errorf("with room: %v", err)
	}
}

// A real small filesystem: a 1 MiB tmpfs. The fixture needs more than that.
func TestPlanDiskRefusalTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a tmpfs needs root; run the tests as root, as .ci/run does")
	}
	mnt := t.TempDir()
	if out, err := execMount(mnt); err != nil {
		t.Fatalf("mount -t tmpfs -o size=1m: %v\n%s", err, out)
	}
	t.Cleanup(func() { execUmount(mnt) })
	f := newFixture(t)
	big := randomBytes(t, 2<<20)
	f.files.Add("/big.bin", big)
	m := f.manifest(t, "")
	m.Files = append(m.Files, manifest.File{Name: "big", URL: f.files.URL + "/big.bin", SHA256: sha(big)})
	_, err := Run(context.Background(), m, Options{Auth: authn.Anonymous, StoreDir: filepath.Join(mnt, "store"), BundlePath: filepath.Join(mnt, "b.tar.zst")})
	var de *DiskError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want *DiskError", err)
	}
	if de.Path != mnt || de.Free > 1<<20 || de.Need < 4<<20 {
		t.Errorf("DiskError %+v", de)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
