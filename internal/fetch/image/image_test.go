package image_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/image"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

var gatherTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// loopbackOnly is a transport that refuses to dial anything but loopback addresses, so a bug in
// mirror rewriting cannot send test traffic elsewhere.
func loopbackOnly() http.RoundTripper {
	t := image.DefaultTransport()
	t.Proxy = nil
	d := &net.Dialer{Timeout: 5 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("test transport: refusing to dial non-loopback %s", addr)
		}
		return d.DialContext(ctx, network, addr)
	}
	return t
}

type fixture struct {
	store *store.Store
	opts  image.Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, opts: image.Options{
		Store:     s,
		Keychain:  authn.NewMultiKeychain(), // no credentials unless a test sets them
		Transport: loopbackOnly(),
		Retry:     fetch.Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond},
		Now:       func() time.Time { return gatherTime },
	}}
}

func (fx *fixture) fetcher(t *testing.T) *image.Fetcher {
	t.Helper()
	f, err := image.New(fx.opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (fx *fixture) fetch(t *testing.T, req image.Request) image.Result {
	t.Helper()
	res, err := fx.fetcher(t).Fetch(context.Background(), req)
	if err != nil {
		t.Fatalf("Fetch(%s): %v", req.Ref, err)
	}
	if _, err := fx.store.Reachable(res.Descriptor); err != nil {
		t.Fatalf("stored image incomplete: %v", err)
	}
	return res
}

func (fx *fixture) has(d v1.Hash) bool { return fx.store.Has(d, -1) }

func (fx *fixture) indexEntries(t *testing.T) []v1.Descriptor {
	t.Helper()
	im, err := fx.store.Index()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

func wantAnnotations(t *testing.T, got v1.Descriptor, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	for k := range got.Annotations {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected annotation %s = %q", k, got.Annotations[k])
		}
	}
}

func TestFetchTagResolvesOnceAndRecordsDigest(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "team/app", "v1", 3, 64<<10)
	fx := newFixture(t)

	res := fx.fetch(t, image.Request{Ref: img.Ref, Name: "app"})
	if res.Descriptor.Digest != img.Digest || res.UpstreamDigest != img.Digest {
		t.Fatalf("digest %s, upstream %s, want %s", res.Descriptor.Digest, res.UpstreamDigest, img.Digest)
	}
	if res.Descriptor.MediaType != types.OCIManifestSchema1 || res.Descriptor.Size != int64(len(img.Manifest)) {
		t.Errorf("descriptor %+v", res.Descriptor)
	}
	wantAnnotations(t, res.Descriptor, map[string]string{
		store.AnnotationRefName:   reg.Host() + "/team/app:v1",
		store.AnnotationKind:      store.KindImage,
		store.AnnotationName:      "app",
		store.AnnotationVersion:   "v1",
		store.AnnotationSource:    img.Ref,
		store.AnnotationPlatforms: "linux/amd64",
		store.AnnotationCreated:   "2026-11-27T10:00:00Z",
	})
	if got := reg.Requests(http.MethodGet, "/v2/team/app/manifests/v1"); got != 1 {
		t.Errorf("tag manifest GETs = %d, want 1", got)
	}
	if got := reg.Requests(http.MethodHead, "/v2/team/app/manifests/v1"); got != 0 {
		t.Errorf("tag manifest HEADs = %d, want 0 (one GET resolves)", got)
	}
	d, ok, err := fx.store.Lookup(reg.Host() + "/team/app:v1")
	if err != nil || !ok || d.Digest != img.Digest {
		t.Fatalf("index.json entry %v %v %v", d, ok, err)
	}
	if want := img.BlobBytes() + int64(len(img.Manifest)); res.Bytes != want || res.Skipped != 0 {
		t.Errorf("bytes %d skipped %d, want %d and 0", res.Bytes, res.Skipped, want)
	}

	// The tag moves upstream: fetching again records the new digest under the same ref name.
	img2 := reg.PushRandomImage(t, "team/app", "v1", 1, 1024)
	res2 := fx.fetch(t, image.Request{Ref: img.Ref})
	if res2.Descriptor.Digest != img2.Digest {
		t.Fatalf("after retag: digest %s, want %s", res2.Descriptor.Digest, img2.Digest)
	}
	if n := len(fx.indexEntries(t)); n != 1 {
		t.Errorf("index.json has %d entries, want 1", n)
	}
	if res2.Descriptor.Annotations[store.AnnotationName] != "app" {
		t.Errorf("default name = %q", res2.Descriptor.Annotations[store.AnnotationName])
	}
}

func TestFetchByDigest(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "app", "", 2, 1024)
	fx := newFixture(t)
	res := fx.fetch(t, image.Request{Ref: img.Ref})
	wantAnnotations(t, res.Descriptor, map[string]string{
		store.AnnotationRefName:   reg.Host() + "/app@" + img.Digest.String(),
		store.AnnotationKind:      store.KindImage,
		store.AnnotationName:      "app",
		store.AnnotationVersion:   "",
		store.AnnotationSource:    img.Ref,
		store.AnnotationPlatforms: "linux/amd64",
		store.AnnotationCreated:   "2026-11-27T10:00:00Z",
	})
	if reg.Requests(http.MethodGet, "/v2/app/manifests/"+img.Digest.String()) != 1 {
		t.Error("manifest not fetched by digest")
	}
}

func TestFetchTagAtDigest(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	pinned := reg.PushRandomImage(t, "app", "1.0", 1, 1024)
	fx := newFixture(t)

	// The tag moved since the manifest was written: the pin wins, fetched by digest.
	moved := reg.PushRandomImage(t, "app", "1.0", 1, 1024)
	ref := reg.Host() + "/app:1.0@" + pinned.Digest.String()
	res := fx.fetch(t, image.Request{Ref: ref})
	if res.Descriptor.Digest != pinned.Digest {
		t.Fatalf("stored %s, want pinned %s (tag now %s)", res.Descriptor.Digest, pinned.Digest, moved.Digest)
	}
	if got := res.Descriptor.Annotations[store.AnnotationRefName]; got != reg.Host()+"/app:1.0" {
		t.Errorf("ref name %q", got)
	}
	if got := res.Descriptor.Annotations[store.AnnotationSource]; got != ref {
		t.Errorf("source %q", got)
	}
	if reg.Requests(http.MethodGet, "/v2/app/manifests/1.0") != 0 {
		t.Error("the tag was queried although the digest pins the manifest")
	}

	// The registry serves other bytes for the pinned digest: refused, nothing recorded.
	other := reg.PushRandomImage(t, "other", "x", 1, 1024)
	reg.CorruptBlob(other.Digest, true)
	fx2 := newFixture(t)
	_, err := fx2.fetcher(t).Fetch(context.Background(), image.Request{Ref: reg.Host() + "/other:x@" + other.Digest.String()})
	var de *store.DigestError
	if !errors.As(err, &de) || de.Want != other.Digest {
		t.Fatalf("err = %v, want DigestError for %s", err, other.Digest)
	}
	if len(fx2.indexEntries(t)) != 0 || fx2.has(other.Config.Digest) {
		t.Error("something was stored for a manifest that failed its digest")
	}

	// A digest the repository does not have: a clear, permanent error.
	_, err = fx2.fetcher(t).Fetch(context.Background(), image.Request{Ref: reg.Host() + "/app:1.0@" + other.Digest.String()})
	var se *fetch.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v, want 404", err)
	}
	if reg.Requests(http.MethodGet, "/v2/app/manifests/"+other.Digest.String()) != 1 {
		t.Error("a 404 was retried")
	}
}

func TestFetchNarrowsIndex(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	base := reg.Layer(t, 32<<10)
	idx := reg.PushIndex(t, "multi", "2", upstreamtest.RegistryIndexSpec{Layers: 2, Shared: []upstreamtest.RegistryLayer{base}, Attestations: true})
	amd, arm64, arm := idx.Images[0], idx.Images[1], idx.Images[2]
	fx := newFixture(t)

	res := fx.fetch(t, image.Request{Ref: idx.Ref, Platforms: []string{"linux/arm64"}})
	if res.UpstreamDigest != idx.Digest || res.Descriptor.Digest == idx.Digest {
		t.Fatalf("upstream %s stored %s, index %s", res.UpstreamDigest, res.Descriptor.Digest, idx.Digest)
	}
	if res.Descriptor.MediaType != types.OCIImageIndex {
		t.Errorf("media type %s", res.Descriptor.MediaType)
	}
	wantAnnotations(t, res.Descriptor, map[string]string{
		store.AnnotationRefName:        reg.Host() + "/multi:2",
		store.AnnotationKind:           store.KindImage,
		store.AnnotationName:           "multi",
		store.AnnotationVersion:        "2",
		store.AnnotationSource:         idx.Ref,
		store.AnnotationUpstreamDigest: idx.Digest.String(),
		store.AnnotationPlatforms:      "linux/arm64/v8",
		store.AnnotationCreated:        "2026-11-27T10:00:00Z",
	})
	if !slices.Equal(res.Platforms, []string{"linux/arm64/v8"}) {
		t.Errorf("platforms %v", res.Platforms)
	}
	raw, err := fx.store.ReadBlob(res.Descriptor.Digest, store.MaxManifestSize)
	if err != nil {
		t.Fatal(err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 ||
		im.Manifests[0].Digest != arm64.Digest || im.Manifests[1].Digest != idx.Attestations[1].Digest {
		t.Fatalf("narrowed index %s", raw)
	}
	for _, l := range arm64.Layers {
		if !fx.has(l.Descriptor.Digest) {
			t.Errorf("arm64 layer %s missing", l.Descriptor.Digest)
		}
	}
	for _, img := range []upstreamtest.RegistryImage{amd, arm} {
		if fx.has(img.Digest) || fx.has(img.Config.Digest) {
			t.Errorf("%s stored although not requested", img.Platform)
		}
		for _, l := range img.Layers[1:] {
			if fx.has(l.Descriptor.Digest) || reg.BlobGets(l.Descriptor.Digest) != 0 {
				t.Errorf("%s layer fetched although not requested", img.Platform)
			}
		}
	}

	// Without platforms the index is kept as served.
	reg.ResetCounts()
	fx2 := newFixture(t)
	res = fx2.fetch(t, image.Request{Ref: idx.Ref})
	if res.Descriptor.Digest != idx.Digest {
		t.Errorf("full index stored as %s, want %s", res.Descriptor.Digest, idx.Digest)
	}
	if _, ok := res.Descriptor.Annotations[store.AnnotationUpstreamDigest]; ok {
		t.Error("upstream digest annotated on an index stored as served")
	}
	if got := res.Descriptor.Annotations[store.AnnotationPlatforms]; got != "linux/amd64,linux/arm64/v8,linux/arm/v7" {
		t.Errorf("platforms %q", got)
	}
	// The shared base layer is fetched once for the three images.
	if reg.BlobGets(base.Descriptor.Digest) != 1 {
		t.Errorf("shared layer fetched %d times", reg.BlobGets(base.Descriptor.Digest))
	}
}

func TestFetchNarrowsDockerManifestList(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	idx := reg.PushIndex(t, "dock", "1", upstreamtest.RegistryIndexSpec{Layers: 1, Docker: true})
	fx := newFixture(t)
	res := fx.fetch(t, image.Request{Ref: idx.Ref, Platforms: []string{"linux/arm/v7", "linux/amd64"}})
	if res.Descriptor.MediaType != types.DockerManifestList {
		t.Fatalf("media type %s, want the source's %s", res.Descriptor.MediaType, types.DockerManifestList)
	}
	raw, err := fx.store.ReadBlob(res.Descriptor.Digest, store.MaxManifestSize)
	if err != nil {
		t.Fatal(err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.DockerManifestList || len(im.Manifests) != 2 ||
		im.Manifests[0].MediaType != types.DockerManifestSchema2 {
		t.Fatalf("narrowed list %s", raw)
	}
	if !slices.Equal(res.Platforms, []string{"linux/amd64", "linux/arm/v7"}) {
		t.Errorf("platforms %v", res.Platforms)
	}
	if res.Descriptor.Annotations[store.AnnotationUpstreamDigest] != idx.Digest.String() {
		t.Error("upstream digest not annotated")
	}
}

func TestFetchUnknownPlatform(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	idx := reg.PushIndex(t, "multi", "1", upstreamtest.RegistryIndexSpec{Layers: 1})
	fx := newFixture(t)
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: idx.Ref, Platforms: []string{"linux/amd64", "linux/s390x"}})
	var pe *image.PlatformError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want PlatformError", err)
	}
	if !slices.Equal(pe.Missing, []string{"linux/s390x"}) {
		t.Errorf("missing %v", pe.Missing)
	}
	for _, want := range []string{reg.Host() + "/multi:1", "linux/s390x", "linux/amd64, linux/arm64/v8, linux/arm/v7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if reg.TotalBlobGets() != 0 || len(fx.indexEntries(t)) != 0 {
		t.Error("blobs fetched or index written for a refused platform")
	}

	// A single-platform image checks its config.
	img := reg.PushRandomImage(t, "single", "1", 2, 1024)
	_, err = fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref, Platforms: []string{"linux/arm64"}})
	if !errors.As(err, &pe) || !slices.Equal(pe.Offered, []string{"linux/amd64"}) {
		t.Fatalf("err = %v, want PlatformError offering linux/amd64", err)
	}
	for _, l := range img.Layers {
		if reg.BlobGets(l.Descriptor.Digest) != 0 {
			t.Error("layers fetched before the platform was checked")
		}
	}
	res := fx.fetch(t, image.Request{Ref: img.Ref, Platforms: []string{"linux/amd64"}})
	if !slices.Equal(res.Platforms, []string{"linux/amd64"}) {
		t.Errorf("platforms %v", res.Platforms)
	}
}

func TestFetchSharedLayersOnceAcrossConcurrentFetches(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	shared := reg.Layer(t, 4<<20)
	a := reg.PushImage(t, "a", "1", upstreamtest.RegistryImageSpec{Shared: []upstreamtest.RegistryLayer{shared}, Layers: 2, LayerSize: 256 << 10})
	b := reg.PushImage(t, "b", "1", upstreamtest.RegistryImageSpec{Shared: []upstreamtest.RegistryLayer{shared}, Layers: 2, LayerSize: 256 << 10})
	fx := newFixture(t)
	// Two Fetchers on one store, as two gather workers would be.
	f1, f2 := fx.fetcher(t), fx.fetcher(t)
	var wg sync.WaitGroup
	results := make([]image.Result, 2)
	errs := make([]error, 2)
	for i, job := range []struct {
		f   *image.Fetcher
		ref string
	}{{f1, a.Ref}, {f2, b.Ref}} {
		wg.Go(func() { results[i], errs[i] = job.f.Fetch(context.Background(), image.Request{Ref: job.ref}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := reg.BlobGets(shared.Descriptor.Digest); n != 1 {
		t.Errorf("shared layer fetched %d times, want 1", n)
	}
	if got := results[0].Skipped + results[1].Skipped; got != shared.Descriptor.Size {
		t.Errorf("skipped %d bytes in all, want the shared layer's %d", got, shared.Descriptor.Size)
	}
	if got, want := results[0].Bytes+results[1].Bytes, reg.TotalBlobBytes()+int64(len(a.Manifest)+len(b.Manifest)); got != want {
		t.Errorf("fetched %d bytes, registry sent %d", got, want)
	}
	blobs, err := fx.store.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 2*(1+1+2)+1 { // per image manifest, config, two layers; one shared layer
		t.Errorf("store holds %d blobs", len(blobs))
	}
}

func partials(t *testing.T, s *store.Store) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(s.Dir(), "blobs", ".partial", "*"))
	return m
}

func TestFetchResumesInterruptedBlobWithRange(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "big", "1", 1, 4<<20)
	layer := img.Layers[0].Descriptor
	fx := newFixture(t)
	fx.opts.Retry = fetch.Retry{Attempts: 1}

	reg.TruncateBlob(layer.Digest, 1<<20, 1)
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref})
	if err == nil {
		t.Fatal("fetch succeeded through a cut connection")
	}
	for _, want := range []string{reg.Host() + "/big:1", layer.Digest.String(), reg.Host()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if len(fx.indexEntries(t)) != 0 || fx.has(layer.Digest) {
		t.Fatal("interrupted image recorded")
	}
	if len(partials(t, fx.store)) != 1 {
		t.Fatalf("partials %v", partials(t, fx.store))
	}

	reg.ResetCounts()
	res := fx.fetch(t, image.Request{Ref: img.Ref})
	ranges := reg.BlobRanges(layer.Digest)
	if len(ranges) != 1 || !strings.HasPrefix(ranges[0], "bytes=") {
		t.Fatalf("range headers on re-run %q", ranges)
	}
	var start, end int64
	if _, err := fmt.Sscanf(ranges[0], "bytes=%d-%d", &start, &end); err != nil || start <= 0 || end != layer.Size-1 {
		t.Fatalf("range %q", ranges[0])
	}
	if sent := reg.BlobBytes(layer.Digest); sent != layer.Size-start || sent >= layer.Size {
		t.Errorf("re-run transferred %d bytes of a %d byte blob resumed at %d", sent, layer.Size, start)
	}
	if res.Skipped != start+img.Config.Size { // the config was stored by the first run
		t.Errorf("skipped %d, want the resumed %d + config %d", res.Skipped, start, img.Config.Size)
	}
	if err := fx.store.VerifyBlob(context.Background(), layer.Digest, layer.Size); err != nil {
		t.Fatal(err)
	}
	if p := partials(t, fx.store); len(p) != 0 {
		t.Errorf("partials left %v", p)
	}
}

func TestFetchResumesWithinOneRun(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "big", "1", 1, 2<<20)
	layer := img.Layers[0].Descriptor
	reg.TruncateBlob(layer.Digest, 512<<10, 1)
	fx := newFixture(t)
	var prog recorder
	fx.opts.Progress = &prog
	res := fx.fetch(t, image.Request{Ref: img.Ref, ID: "big"})
	ranges := reg.BlobRanges(layer.Digest)
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") {
		t.Fatalf("ranges %q", ranges)
	}
	if got := reg.BlobBytes(layer.Digest); got != layer.Size {
		t.Errorf("sent %d bytes in all for a %d byte blob", got, layer.Size)
	}
	if prog.total["big"] != img.BlobBytes() || prog.done["big"] != img.BlobBytes() || prog.skipped["big"] != 0 {
		t.Errorf("progress total %d done %d skipped %d, want %d", prog.total["big"], prog.done["big"], prog.skipped["big"], img.BlobBytes())
	}
	if res.Skipped != 0 {
		t.Errorf("skipped %d", res.Skipped)
	}
}

func TestFetchRestartsWhenServerIgnoresRange(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "big", "1", 1, 2<<20)
	layer := img.Layers[0].Descriptor
	fx := newFixture(t)
	fx.opts.Retry = fetch.Retry{Attempts: 1}
	reg.TruncateBlob(layer.Digest, 700<<10, 1)
	if _, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref}); err == nil {
		t.Fatal("fetch succeeded through a cut connection")
	}
	reg.IgnoreRange(true)
	reg.ResetCounts()
	fx.fetch(t, image.Request{Ref: img.Ref})
	if r := reg.BlobRanges(layer.Digest); len(r) != 1 || r[0] == "" {
		t.Fatalf("no range asked: %q", r)
	}
	if reg.BlobBytes(layer.Digest) != layer.Size {
		t.Errorf("server sent %d bytes", reg.BlobBytes(layer.Digest))
	}
	if err := fx.store.VerifyBlob(context.Background(), layer.Digest, layer.Size); err != nil {
		t.Fatal(err)
	}
}

func TestFetchRerunFetchesNoBlobs(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	idx := reg.PushIndex(t, "multi", "1", upstreamtest.RegistryIndexSpec{Layers: 2, LayerSize: 8 << 10})
	fx := newFixture(t)
	first := fx.fetch(t, image.Request{Ref: idx.Ref, Platforms: []string{"linux/amd64", "linux/arm64"}})
	reg.ResetCounts()
	var prog recorder
	fx.opts.Progress = &prog
	again := fx.fetch(t, image.Request{Ref: idx.Ref, Platforms: []string{"linux/amd64", "linux/arm64"}, ID: "x"})
	if again.Descriptor.Digest != first.Descriptor.Digest {
		t.Fatalf("re-run stored %s, first %s", again.Descriptor.Digest, first.Descriptor.Digest)
	}
	if n := reg.TotalBlobGets(); n != 0 {
		t.Errorf("re-run fetched %d blobs", n)
	}
	if n := reg.TotalRequests(); n != 2 { // the /v2/ ping and the tag
		t.Errorf("re-run made %d requests, want 2 (ping, tag)", n)
	}
	if again.Bytes != int64(len(idx.Manifest)) {
		t.Errorf("re-run fetched %d bytes, want only the index's %d", again.Bytes, len(idx.Manifest))
	}
	want := idx.Images[0].BlobBytes() + idx.Images[1].BlobBytes()
	if again.Skipped != want || prog.skipped["x"] != want || prog.done["x"] != want {
		t.Errorf("skipped %d (progress %d of %d), want %d", again.Skipped, prog.skipped["x"], prog.done["x"], want)
	}
}

func TestFetchRetries503(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "app", "1", 2, 1024)
	layer := img.Layers[1].Descriptor
	reg.FailBlob(layer.Digest, 2, http.StatusServiceUnavailable)
	fx := newFixture(t)
	fx.fetch(t, image.Request{Ref: img.Ref})
	if n := reg.BlobGets(layer.Digest); n != 3 {
		t.Errorf("layer GETs = %d, want 3 (two 503s, one success)", n)
	}

	// Out of attempts: the error names the image, the blob and the registry.
	img2 := reg.PushRandomImage(t, "app2", "1", 1, 1024)
	reg.FailBlob(img2.Layers[0].Descriptor.Digest, 10, http.StatusServiceUnavailable)
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img2.Ref})
	var se *fetch.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v", err)
	}
	if reg.BlobGets(img2.Layers[0].Descriptor.Digest) != 3 {
		t.Errorf("GETs %d, want 3 attempts", reg.BlobGets(img2.Layers[0].Descriptor.Digest))
	}
}

func TestFetch404IsPermanent(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "app", "1", 2, 1024)
	layer := img.Layers[0].Descriptor
	if err := os.Remove(reg.BlobPath(layer.Digest)); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t)
	fx.opts.Retry = fetch.Retry{Attempts: 5, Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref})
	if err == nil {
		t.Fatal("fetch of a missing blob succeeded")
	}
	if n := reg.BlobGets(layer.Digest); n != 1 {
		t.Errorf("404 retried: %d GETs", n)
	}
	var se *fetch.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v, want a 404 StatusError", err)
	}
	for _, want := range []string{reg.Host() + "/app:1", layer.Digest.String(), "from " + reg.Host(), "BLOB_UNKNOWN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if len(fx.indexEntries(t)) != 0 {
		t.Error("image recorded")
	}
}

func TestFetchWrongBytesIsDigestError(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "app", "1", 1, 256<<10)
	layer := img.Layers[0].Descriptor
	reg.CorruptBlob(layer.Digest, true)
	fx := newFixture(t)
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref})
	var de *store.DigestError
	if !errors.As(err, &de) || de.Want != layer.Digest {
		t.Fatalf("err = %v, want DigestError for %s", err, layer.Digest)
	}
	if fx.has(layer.Digest) {
		t.Error("corrupt blob stored")
	}
	if _, err := os.Stat(filepath.Join(fx.store.Dir(), "blobs", "sha256", layer.Digest.Hex)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("blobs/sha256/%s: %v", layer.Digest.Hex, err)
	}
	if p := partials(t, fx.store); len(p) != 0 {
		t.Errorf("partials left %v", p)
	}
	if reg.BlobGets(layer.Digest) != 1 {
		t.Errorf("digest mismatch retried: %d GETs", reg.BlobGets(layer.Digest))
	}
	if len(fx.indexEntries(t)) != 0 {
		t.Error("image recorded")
	}
}

func TestFetchAuthFromDockerConfig(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.RegistryWithBasicAuth("gatherer", "s3cret"))
	img := reg.PushRandomImage(t, "private/app", "1", 1, 1024)

	// No credentials: refused at once.
	fx := newFixture(t)
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want 401", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("password in error text")
	}

	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host(), base64.StdEncoding.EncodeToString([]byte("gatherer:s3cret")))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	fx.opts.Keychain = nil // the default: docker's config.json
	res := fx.fetch(t, image.Request{Ref: img.Ref})
	if res.Descriptor.Digest != img.Digest {
		t.Fatal("wrong image")
	}
}

func TestFetchAuthStatic(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.RegistryWithBasicAuth("gatherer", "s3cret"))
	img := reg.PushRandomImage(t, "private/app", "1", 1, 1024)
	fx := newFixture(t)
	fx.opts.Auth = &authn.Basic{Username: "gatherer", Password: "wrong"}
	if _, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: img.Ref}); err == nil {
		t.Fatal("wrong password accepted")
	}
	fx.opts.Auth = &authn.Basic{Username: "gatherer", Password: "s3cret"}
	fx.fetch(t, image.Request{Ref: img.Ref})
}

func TestFetchThroughMirror(t *testing.T) {
	mirror := upstreamtest.NewRegistry(t)
	img := mirror.PushRandomImage(t, "library/postgres", "15-alpine", 1, 1024)
	prefixed := mirror.PushRandomImage(t, "hub/mattermost/mattermost-team-edition", "11.4", 1, 1024)
	fx := newFixture(t)
	var asked []string
	var mu sync.Mutex
	fx.opts.RewriteRegistry = func(host string) string {
		mu.Lock()
		asked = append(asked, host)
		mu.Unlock()
		switch host {
		case "docker.io":
			return mirror.Host()
		case "registry.example":
			return "http://" + mirror.Host() + "/hub"
		}
		return ""
	}
	res := fx.fetch(t, image.Request{Ref: "postgres:15-alpine"})
	if res.Descriptor.Digest != img.Digest {
		t.Fatal("wrong image")
	}
	wantAnnotations(t, res.Descriptor, map[string]string{
		store.AnnotationRefName:   "docker.io/library/postgres:15-alpine",
		store.AnnotationKind:      store.KindImage,
		store.AnnotationName:      "postgres",
		store.AnnotationVersion:   "15-alpine",
		store.AnnotationSource:    "postgres:15-alpine",
		store.AnnotationPlatforms: "linux/amd64",
		store.AnnotationCreated:   "2026-11-27T10:00:00Z",
	})
	if mirror.Requests(http.MethodGet, "/v2/library/postgres/manifests/15-alpine") != 1 {
		t.Error("mirror not asked")
	}
	res = fx.fetch(t, image.Request{Ref: "registry.example/mattermost/mattermost-team-edition:11.4"})
	if res.Descriptor.Digest != prefixed.Digest || res.Ref.Name() != "registry.example/mattermost/mattermost-team-edition:11.4" {
		t.Fatalf("prefixed mirror: %s %s", res.Descriptor.Digest, res.Ref.Name())
	}
	if !slices.Contains(asked, "docker.io") || !slices.Contains(asked, "registry.example") {
		t.Errorf("rewrite asked for %v", asked)
	}

	// A failure through the mirror names the mirror.
	_, err := fx.fetcher(t).Fetch(context.Background(), image.Request{Ref: "postgres:16"})
	if err == nil || !strings.Contains(err.Error(), "mirror "+mirror.Host()+" (for docker.io)") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRef(t *testing.T) {
	const d = "sha256:4b0f5c3d4e3f0d9cbe1ad1b1ba3c5f5ab9be8f1e3b3c6a3b1a8b6e4f8b0a1c2d"
	for _, tc := range []struct{ in, name, str, tag string }{
		{"postgres:15-alpine", "docker.io/library/postgres:15-alpine", "docker.io/library/postgres:15-alpine", "15-alpine"},
		{"postgres", "docker.io/library/postgres:latest", "docker.io/library/postgres:latest", "latest"},
		{"docker.io/mattermost/mattermost-enterprise-edition:11.4.0", "docker.io/mattermost/mattermost-enterprise-edition:11.4.0", "docker.io/mattermost/mattermost-enterprise-edition:11.4.0", "11.4.0"},
		{"index.docker.io/library/nginx:1", "docker.io/library/nginx:1", "docker.io/library/nginx:1", "1"},
		{"localhost:5000/a/b@" + d, "localhost:5000/a/b@" + d, "localhost:5000/a/b@" + d, ""},
		{"ghcr.io/x/y:1.2@" + d, "ghcr.io/x/y:1.2", "ghcr.io/x/y:1.2@" + d, "1.2"},
	} {
		r, err := image.ParseRef(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if r.Name() != tc.name || r.String() != tc.str || r.Tag != tc.tag {
			t.Errorf("%s: name %q string %q tag %q", tc.in, r.Name(), r.String(), r.Tag)
		}
	}
	for _, bad := range []string{"", "UPPER/case:1", "a@sha512:" + strings.Repeat("0", 128), "a@sha256:abc", "a:b:c"} {
		if _, err := image.ParseRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// recorder is a fetch.Progress that sums what it is told.
type recorder struct {
	mu      sync.Mutex
	total   map[string]int64
	done    map[string]int64
	skipped map[string]int64
	ended   map[string]error
}

func (r *recorder) Start(id, _ string, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.total == nil {
		r.total, r.done, r.skipped, r.ended = map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]error{}
	}
	r.total[id] = total
}
func (r *recorder) Grow(id string, n int64) { r.mu.Lock(); r.total[id] += n; r.mu.Unlock() }
func (r *recorder) Add(id string, n int64, skipped bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[id] += n
	if skipped {
		r.skipped[id] += n
	}
}
func (r *recorder) Done(id string, err error) { r.mu.Lock(); r.ended[id] = err; r.mu.Unlock() }
