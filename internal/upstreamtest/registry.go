package upstreamtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RegistryPlatforms are the platforms PushIndex builds when the spec names none.
var RegistryPlatforms = []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7"}

// Registry is an OCI distribution registry on 127.0.0.1 (go-containerregistry's pkg/registry)
// keeping blobs on disk, with generated images, request counting and fault injection. Faults
// and counters apply to requests from clients; the Push and Put helpers talk to the registry
// in-process and bypass them.
type Registry struct {
	srv   *httptest.Server
	inner http.Handler
	dir   string // blob directory: dir/sha256/<hex>
	user  string
	pass  string

	mu       sync.Mutex
	requests map[string]int // "GET /v2/…" → count
	blobGets map[v1.Hash]int
	ranges   map[v1.Hash][]string
	served   map[v1.Hash]int64
	fails    map[v1.Hash]*regFail // the zero hash: any blob
	truncs   map[v1.Hash]*regTrunc
	corrupt  map[v1.Hash]bool
	noRange  bool
}

type regFail struct{ n, status int }

type regTrunc struct {
	after int64
	n     int
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*Registry)

// RegistryWithBasicAuth makes every /v2/ request require HTTP basic auth with user and pass.
func RegistryWithBasicAuth(user, pass string) RegistryOption {
	return func(r *Registry) { r.user, r.pass = user, pass }
}

// NewRegistry starts a registry on 127.0.0.1 with blobs in a temporary directory. It stops when
// the test ends.
func NewRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	r := &Registry{
		dir:      t.TempDir(),
		requests: map[string]int{},
		blobGets: map[v1.Hash]int{},
		ranges:   map[v1.Hash][]string{},
		served:   map[v1.Hash]int64{},
		fails:    map[v1.Hash]*regFail{},
		truncs:   map[v1.Hash]*regTrunc{},
		corrupt:  map[v1.Hash]bool{},
	}
	for _, o := range opts {
		o(r)
	}
	r.inner = registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(regDiskBlobs{dir: r.dir}),
	)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// Host is the registry's host:port (127.0.0.1:PORT).
func (r *Registry) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// URL is http://127.0.0.1:PORT.
func (r *Registry) URL() string { return r.srv.URL }

// Ref is host/repo:tag, or host/repo@digest when tagOrDigest is a digest.
func (r *Registry) Ref(repo, tagOrDigest string) string {
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		return r.Host() + "/" + repo + "@" + tagOrDigest
	}
	return r.Host() + "/" + repo + ":" + tagOrDigest
}

// BlobPath is where the registry keeps blob d on disk.
func (r *Registry) BlobPath(d v1.Hash) string { return filepath.Join(r.dir, d.Algorithm, d.Hex) }

// --- faults and counters -------------------------------------------------------------------

// FailBlob makes the next n GETs of blob d answer status (503 when 0) with a registry error
// body. The zero digest means any blob.
func (r *Registry) FailBlob(d v1.Hash, n, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails[d] = &regFail{n: n, status: status}
}

// TruncateBlob makes the next n GETs of blob d send only the first after bytes of the body
// (the headers still claim the full length) and then drop the connection.
func (r *Registry) TruncateBlob(d v1.Hash, after int64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.truncs[d] = &regTrunc{after: after, n: n}
}

// CorruptBlob makes GETs of d, a blob or a manifest by digest, serve other bytes of the same
// length (every byte inverted); on false they serve the real content again.
func (r *Registry) CorruptBlob(d v1.Hash, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt[d] = on
}

// IgnoreRange makes blob GETs ignore Range headers and send the whole blob with 200.
func (r *Registry) IgnoreRange(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noRange = on
}

// Requests counts requests with method to path ("/v2/repo/manifests/tag").
func (r *Registry) Requests(method, path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[method+" "+path]
}

// TotalRequests counts every request to the registry.
func (r *Registry) TotalRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.requests {
		n += c
	}
	return n
}

// BlobGets counts GETs of blob d in any repository, failed ones included.
func (r *Registry) BlobGets(d v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[d]
}

// TotalBlobGets counts GETs of all blobs.
func (r *Registry) TotalBlobGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.blobGets {
		n += c
	}
	return n
}

// BlobRanges lists the Range header of every GET of blob d, "" for GETs without one.
func (r *Registry) BlobRanges(d v1.Hash) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ranges[d]...)
}

// BlobBytes is the number of body bytes sent for blob d.
func (r *Registry) BlobBytes(d v1.Hash) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.served[d]
}

// TotalBlobBytes is the number of body bytes sent for all blobs.
func (r *Registry) TotalBlobBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, c := range r.served {
		n += c
	}
	return n
}

// ResetCounts clears the request and byte counters (faults stay).
func (r *Registry) ResetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = map[string]int{}
	r.blobGets = map[v1.Hash]int{}
	r.ranges = map[v1.Hash][]string{}
	r.served = map[v1.Hash]int64{}
}

// regDigestOf finds the digest and kind ("blobs" or "manifests") a /v2/ path addresses.
func regDigestOf(p string) (v1.Hash, string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return v1.Hash{}, ""
	}
	h, err := v1.NewHash(p[i+1:])
	if err != nil {
		return v1.Hash{}, ""
	}
	rest := p[:i]
	switch {
	case strings.HasSuffix(rest, "/blobs"):
		return h, "blobs"
	case strings.HasSuffix(rest, "/manifests"):
		return h, "manifests"
	}
	return v1.Hash{}, ""
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests[req.Method+" "+req.URL.Path]++
	r.mu.Unlock()
	if r.user != "" || r.pass != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstreamtest"`)
			regWriteError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	d, kind := regDigestOf(req.URL.Path)
	get := req.Method == http.MethodGet
	limit := int64(-1)
	if get && kind == "blobs" {
		r.mu.Lock()
		r.blobGets[d]++
		r.ranges[d] = append(r.ranges[d], req.Header.Get("Range"))
		f := r.fails[d]
		if f == nil || f.n == 0 {
			f = r.fails[v1.Hash{}]
		}
		if f != nil && f.n > 0 {
			f.n--
			status := f.status
			r.mu.Unlock()
			regWriteError(w, status, "UNAVAILABLE", "injected failure")
			return
		}
		if tr := r.truncs[d]; tr != nil && tr.n > 0 {
			tr.n--
			limit = tr.after
		}
		if r.noRange {
			req.Header.Del("Range")
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	corrupt := get && kind != "" && r.corrupt[d]
	r.mu.Unlock()

	var n int64
	if kind == "blobs" && get {
		defer func() {
			r.mu.Lock()
			r.served[d] += n
			r.mu.Unlock()
		}()
	}
	if limit < 0 && !corrupt {
		r.inner.ServeHTTP(&regCountWriter{ResponseWriter: w, n: &n}, req)
		return
	}
	fw := &regFaultWriter{ResponseWriter: w, n: &n, limit: limit, corrupt: corrupt}
	r.inner.ServeHTTP(fw, req)
}

func regWriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// regCountWriter counts body bytes and keeps the fast ReadFrom path of the server's writer.
type regCountWriter struct {
	http.ResponseWriter
	n *int64
}

func (w *regCountWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	*w.n += int64(n)
	return n, err
}

func (w *regCountWriter) ReadFrom(src io.Reader) (int64, error) {
	n, err := w.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
	*w.n += n
	return n, err
}

// regFaultWriter inverts bytes (corrupt) and cuts the body after limit bytes (limit >= 0):
// it flushes what was sent and aborts the handler, so the server drops the connection with the
// body shorter than its Content-Length.
type regFaultWriter struct {
	http.ResponseWriter
	n       *int64
	limit   int64
	corrupt bool
}

func (w *regFaultWriter) Write(p []byte) (int, error) {
	cut := false
	if w.limit >= 0 && *w.n+int64(len(p)) > w.limit {
		p = p[:w.limit-*w.n]
		cut = true
	}
	if w.corrupt {
		q := make([]byte, len(p))
		for i, b := range p {
			q[i] = ^b
		}
		p = q
	}
	n, err := w.ResponseWriter.Write(p)
	*w.n += int64(n)
	if cut {
		if fl, ok := w.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	return n, err
}

// regDiskBlobs keeps blobs as files; unlike registry.NewDiskBlobHandler its Stat does not
// re-hash the blob on every request, and Get returns the *os.File (ranges, sendfile).
type regDiskBlobs struct{ dir string }

func (b regDiskBlobs) path(h v1.Hash) string { return filepath.Join(b.dir, h.Algorithm, h.Hex) }

func (b regDiskBlobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	fi, err := os.Stat(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (b regDiskBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return f, err
}

func (b regDiskBlobs) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	f, err := os.CreateTemp(b.dir, "upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.dir, h.Algorithm), 0o755); err != nil {
		return err
	}
	return os.Rename(f.Name(), b.path(h))
}

// --- content --------------------------------------------------------------------------------

// RegistryLayer is a layer blob stored in a Registry.
type RegistryLayer struct {
	Descriptor v1.Descriptor // media type: OCI gzip layer
	DiffID     v1.Hash       // digest of the uncompressed tar
}

// RegistryImage is an image pushed by PushImage.
type RegistryImage struct {
	Ref       string // host/repo:tag, or host/repo@digest when pushed without tag
	Digest    v1.Hash
	MediaType types.MediaType
	Manifest  []byte
	Config    v1.Descriptor
	Layers    []RegistryLayer
	Platform  string
}

// Descriptor is the image manifest's descriptor, with its platform.
func (i RegistryImage) Descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: i.MediaType, Digest: i.Digest, Size: int64(len(i.Manifest)), Platform: regPlatform(i.Platform)}
}

// BlobBytes is the size of the config plus the layers.
func (i RegistryImage) BlobBytes() int64 {
	n := i.Config.Size
	for _, l := range i.Layers {
		n += l.Descriptor.Size
	}
	return n
}

// RegistryImageSpec describes an image to generate.
type RegistryImageSpec struct {
	Platform  string          // os/arch[/variant]; empty means linux/amd64
	Layers    int             // new random layers
	LayerSize int64           // random bytes per new layer; 0 means 1024
	Shared    []RegistryLayer // existing layers, put before the new ones
	Docker    bool            // Docker schema 2 media types instead of OCI
}

// RegistryIndex is a multi-platform index pushed by PushIndex.
type RegistryIndex struct {
	Ref          string
	Digest       v1.Hash
	MediaType    types.MediaType
	Manifest     []byte
	Images       []RegistryImage // one per platform, in the index's order
	Attestations []RegistryImage // buildx-style attestation manifests, one per image
}

// RegistryIndexSpec describes a multi-platform index to generate.
type RegistryIndexSpec struct {
	Platforms    []string // empty means RegistryPlatforms
	Layers       int      // new random layers per image
	LayerSize    int64    // random bytes per new layer; 0 means 1024
	Shared       []RegistryLayer
	Docker       bool // a Docker manifest list of Docker images instead of OCI
	Attestations bool // add an unknown/unknown attestation manifest per image, as buildx does
}

// Layer writes a new layer of size random (incompressible) bytes: a tar holding one file,
// gzip-framed without compression, streamed to disk so large layers cost no memory.
func (r *Registry) Layer(t testing.TB, size int64) RegistryLayer {
	t.Helper()
	l, err := r.writeLayer(size)
	if err != nil {
		t.Fatalf("upstreamtest: generate layer: %v", err)
	}
	return l
}

func (r *Registry) writeLayer(size int64) (RegistryLayer, error) {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return RegistryLayer{}, err
	}
	rng := rand.NewChaCha8(seed)
	f, err := os.CreateTemp(r.dir, "gen-*")
	if err != nil {
		return RegistryLayer{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	dh, uh := sha256.New(), sha256.New()
	cw := &regHashCount{w: bw, h: dh}
	gz, err := gzip.NewWriterLevel(cw, gzip.NoCompression)
	if err != nil {
		return RegistryLayer{}, err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, uh))
	if err := tw.WriteHeader(&tar.Header{
		Name: fmt.Sprintf("random-%x.bin", seed[:6]), Mode: 0o644, Size: size,
		Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX,
	}); err != nil {
		return RegistryLayer{}, err
	}
	if _, err := io.CopyN(tw, rng, size); err != nil {
		return RegistryLayer{}, err
	}
	if err := tw.Close(); err != nil {
		return RegistryLayer{}, err
	}
	if err := gz.Close(); err != nil {
		return RegistryLayer{}, err
	}
	if err := bw.Flush(); err != nil {
		return RegistryLayer{}, err
	}
	if err := f.Close(); err != nil {
		return RegistryLayer{}, err
	}
	d := regHash(dh)
	if err := os.MkdirAll(filepath.Join(r.dir, "sha256"), 0o755); err != nil {
		return RegistryLayer{}, err
	}
	if err := os.Rename(f.Name(), r.BlobPath(d)); err != nil {
		return RegistryLayer{}, err
	}
	l := RegistryLayer{
		Descriptor: v1.Descriptor{MediaType: types.OCILayer, Digest: d, Size: cw.n},
		DiffID:     regHash(uh),
	}
	return l, nil
}

type regHashCount struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *regHashCount) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func regHash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

func regDigest(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// PutBlob stores content as a blob and returns its descriptor (media type octet-stream).
func (r *Registry) PutBlob(t testing.TB, content []byte) v1.Descriptor {
	t.Helper()
	d := regDigest(content)
	if err := os.MkdirAll(filepath.Join(r.dir, "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.BlobPath(d), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(content))}
}

// PutManifest stores raw as a manifest of media type mt in repo, under tag (or only by digest
// when tag is empty), and returns its digest.
func (r *Registry) PutManifest(t testing.TB, repo, tag string, mt types.MediaType, raw []byte) v1.Hash {
	t.Helper()
	d := regDigest(raw)
	if tag == "" {
		tag = d.String()
	}
	req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(mt))
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("upstreamtest: put manifest %s/%s: %d %s", repo, tag, rec.Code, rec.Body.String())
	}
	return d
}

func regPlatform(s string) *v1.Platform {
	if s == "" {
		return nil
	}
	parts := strings.SplitN(s, "/", 3)
	p := &v1.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p
}

// PushImage generates and pushes a single-platform image to repo under tag (by digest only when
// tag is empty).
func (r *Registry) PushImage(t testing.TB, repo, tag string, spec RegistryImageSpec) RegistryImage {
	t.Helper()
	if spec.Platform == "" {
		spec.Platform = "linux/amd64"
	}
	if spec.LayerSize == 0 {
		spec.LayerSize = 1024
	}
	layers := append([]RegistryLayer(nil), spec.Shared...)
	for range spec.Layers {
		layers = append(layers, r.Layer(t, spec.LayerSize))
	}
	layerMT, configMT, manifestMT := types.OCILayer, types.OCIConfigJSON, types.OCIManifestSchema1
	if spec.Docker {
		layerMT, configMT, manifestMT = types.DockerLayer, types.DockerConfigJSON, types.DockerManifestSchema2
	}
	p := regPlatform(spec.Platform)
	cfg := v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: time.Unix(1700000000, 0).UTC()},
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       v1.Config{Env: []string{"PATH=/usr/bin:/bin"}},
	}
	descs := make([]v1.Descriptor, len(layers))
	for i, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
		cfg.History = append(cfg.History, v1.History{CreatedBy: fmt.Sprintf("upstreamtest layer %d", i)})
		descs[i] = v1.Descriptor{MediaType: layerMT, Digest: l.Descriptor.Digest, Size: l.Descriptor.Size}
	}
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cd := r.PutBlob(t, cfgRaw)
	cd.MediaType = configMT
	m := v1.Manifest{SchemaVersion: 2, MediaType: manifestMT, Config: cd, Layers: descs}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := r.PutManifest(t, repo, tag, manifestMT, raw)
	ref := r.Ref(repo, tag)
	if tag == "" {
		ref = r.Ref(repo, d.String())
	}
	return RegistryImage{Ref: ref, Digest: d, MediaType: manifestMT, Manifest: raw, Config: cd, Layers: layers, Platform: spec.Platform}
}

// PushRandomImage pushes a linux/amd64 OCI image of layers new random layers of size bytes.
func (r *Registry) PushRandomImage(t testing.TB, repo, tag string, layers int, size int64) RegistryImage {
	t.Helper()
	return r.PushImage(t, repo, tag, RegistryImageSpec{Layers: layers, LayerSize: size})
}

// PushIndex generates one image per platform (each with spec.Shared plus its own new layers)
// and pushes them and an index listing them to repo under tag.
func (r *Registry) PushIndex(t testing.TB, repo, tag string, spec RegistryIndexSpec) RegistryIndex {
	t.Helper()
	plats := spec.Platforms
	if len(plats) == 0 {
		plats = RegistryPlatforms
	}
	indexMT, manifestMT := types.OCIImageIndex, types.OCIManifestSchema1
	if spec.Docker {
		indexMT, manifestMT = types.DockerManifestList, types.DockerManifestSchema2
	}
	out := RegistryIndex{MediaType: indexMT}
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: indexMT}
	for _, p := range plats {
		img := r.PushImage(t, repo, "", RegistryImageSpec{
			Platform: p, Layers: spec.Layers, LayerSize: spec.LayerSize, Shared: spec.Shared, Docker: spec.Docker,
		})
		out.Images = append(out.Images, img)
		im.Manifests = append(im.Manifests, img.Descriptor())
	}
	if spec.Attestations {
		for _, img := range out.Images {
			a := r.pushAttestation(t, repo, img)
			out.Attestations = append(out.Attestations, a)
			im.Manifests = append(im.Manifests, v1.Descriptor{
				MediaType: manifestMT, Digest: a.Digest, Size: int64(len(a.Manifest)),
				Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{
					"vnd.docker.reference.type":   "attestation-manifest",
					"vnd.docker.reference.digest": img.Digest.String(),
				},
			})
		}
	}
	raw, err := json.Marshal(im)
	if err != nil {
		t.Fatal(err)
	}
	out.Manifest = raw
	out.Digest = r.PutManifest(t, repo, tag, indexMT, raw)
	out.Ref = r.Ref(repo, tag)
	if tag == "" {
		out.Ref = r.Ref(repo, out.Digest.String())
	}
	return out
}

// pushAttestation pushes an OCI manifest shaped like buildx's attestation manifests: an
// unknown/unknown config and one in-toto layer.
func (r *Registry) pushAttestation(t testing.TB, repo string, img RegistryImage) RegistryImage {
	t.Helper()
	stmt := []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":%q}}]}`, img.Digest.Hex))
	ld := r.PutBlob(t, stmt)
	ld.MediaType = "application/vnd.in-toto+json"
	ld.Annotations = map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
	// The in-toto layer is not a filesystem layer, so it has no diff ID (go-containerregistry's
	// validate agrees).
	cfg := v1.ConfigFile{Architecture: "unknown", OS: "unknown", RootFS: v1.RootFS{Type: "layers"}}
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cd := r.PutBlob(t, cfgRaw)
	cd.MediaType = types.OCIConfigJSON
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: []v1.Descriptor{ld}}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := r.PutManifest(t, repo, "", types.OCIManifestSchema1, raw)
	return RegistryImage{Ref: r.Ref(repo, d.String()), Digest: d, MediaType: types.OCIManifestSchema1, Manifest: raw, Config: cd,
		Layers: []RegistryLayer{{Descriptor: ld}}, Platform: "unknown/unknown"}
}
