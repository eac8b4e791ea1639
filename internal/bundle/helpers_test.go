package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

var testCreated = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

type testKey struct {
	signer *pgp.Signer
	kr     pgp.Keyring
	pub    []byte
	fp     string
}

var keyCache = map[string]testKey{}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	if k, ok := keyCache[name]; ok {
		return k
	}
	sec, pub, fp, err := pgp.GenerateKey(pgp.KeyOptions{Name: name, Email: name + "@example.invalid",
		Now: func() time.Time { return testCreated.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgp.ReadSecretKey(bytes.NewReader(sec), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return testCreated }
	kr, err := pgp.ParseKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	k := testKey{signer: s, kr: kr, pub: pub, fp: fp}
	keyCache[name] = k
	return k
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t testing.TB, s *store.Store, mt string, b []byte) v1.Descriptor {
	t.Helper()
	d, err := s.PutBytes(mt, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func putJSON(t testing.TB, s *store.Store, mt string, v any) v1.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return put(t, s, mt, b)
}

// testStore is a store with an image index (two platforms sharing a layer), a single-platform
// image, a file artifact and a chart; layers span several zstd frames, and one is compressible.
type testStore struct {
	s        *store.Store
	imageRef string
	layers   []v1.Descriptor // layers of the single-platform image
	manifest v1.Descriptor   // its manifest
}

func newTestStore(t testing.TB, seed uint64) *testStore {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	ts := &testStore{s: s, imageRef: "docker.io/library/postgres:15-alpine"}

	// Single-platform image: a compressible layer and two random ones, one over 2 MiB.
	text := bytes.Repeat([]byte("mattermost air gap bundle line of text\n"), 40000)
	ts.layers = []v1.Descriptor{
		put(t, s, string(types.OCILayer), randBytes(r, 2*bufSize+12345)),
		put(t, s, string(types.OCILayer), text),
		put(t, s, string(types.OCILayer), randBytes(r, 700)),
	}
	cfg := putJSON(t, s, string(types.OCIConfigJSON), map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers"}})
	ts.manifest = putJSON(t, s, string(types.OCIManifestSchema1), map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": cfg, "layers": ts.layers,
	})
	ts.manifest.Annotations = map[string]string{
		store.AnnotationRefName:   ts.imageRef,
		store.AnnotationKind:      store.KindImage,
		store.AnnotationName:      "postgres",
		store.AnnotationVersion:   "15-alpine",
		store.AnnotationSource:    "postgres:15-alpine",
		store.AnnotationPlatforms: "linux/amd64",
		store.AnnotationCreated:   testCreated.Format(time.RFC3339),
	}
	if err := s.SetRef(ts.manifest); err != nil {
		t.Fatal(err)
	}

	// Image index, two platforms sharing a layer.
	shared := put(t, s, string(types.OCILayer), randBytes(r, 300000))
	var mans []v1.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		c := putJSON(t, s, string(types.OCIConfigJSON), map[string]any{"architecture": arch, "os": "linux"})
		l := put(t, s, string(types.OCILayer), randBytes(r, 5000))
		m := putJSON(t, s, string(types.OCIManifestSchema1), map[string]any{
			"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": c, "layers": []v1.Descriptor{shared, l},
		})
		m.Platform = &v1.Platform{OS: "linux", Architecture: arch}
		mans = append(mans, m)
	}
	idx := putJSON(t, s, string(types.OCIImageIndex), map[string]any{"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": mans})
	idx.Annotations = map[string]string{
		store.AnnotationRefName:        "registry.example.org/mattermost/mattermost-enterprise-edition:11.4.0",
		store.AnnotationKind:           store.KindImage,
		store.AnnotationName:           "mattermost",
		store.AnnotationVersion:        "11.4.0",
		store.AnnotationSource:         "mattermost/mattermost-enterprise-edition:11.4.0",
		store.AnnotationPlatforms:      "linux/amd64,linux/arm64",
		store.AnnotationUpstreamDigest: store.Digest([]byte("upstream")).String(),
	}
	if err := s.SetRef(idx); err != nil {
		t.Fatal(err)
	}

	// File artifact.
	empty := put(t, s, store.MediaTypeEmpty, store.EmptyJSON)
	file := put(t, s, store.MediaTypeOctetStream, randBytes(r, 4096))
	file.Annotations = map[string]string{store.AnnotationTitle: "mattermost-11.4.0-linux-amd64.tar.gz"}
	fm := putJSON(t, s, string(types.OCIManifestSchema1), map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": store.ArtifactTypeFile,
		"config": empty, "layers": []v1.Descriptor{file},
	})
	fm.Annotations = map[string]string{
		store.AnnotationRefName: "mmgap.files/mattermost:11.4.0",
		store.AnnotationKind:    store.KindFile,
		store.AnnotationName:    "mattermost",
		store.AnnotationVersion: "11.4.0",
		store.AnnotationSource:  "https://releases.mattermost.com/11.4.0/mattermost-11.4.0-linux-amd64.tar.gz",
	}
	if err := s.SetRef(fm); err != nil {
		t.Fatal(err)
	}

	// Chart.
	hc := putJSON(t, s, store.MediaTypeHelmConfig, map[string]any{"name": "mattermost-operator", "version": "1.0.2"})
	ha := put(t, s, store.MediaTypeHelmChart, randBytes(r, 9000))
	hm := putJSON(t, s, string(types.OCIManifestSchema1), map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": hc, "layers": []v1.Descriptor{ha},
	})
	hm.Annotations = map[string]string{
		store.AnnotationRefName: "mmgap.charts/mattermost-operator:1.0.2",
		store.AnnotationKind:    store.KindChart,
		store.AnnotationName:    "mattermost-operator",
		store.AnnotationVersion: "1.0.2",
		store.AnnotationSource:  "oci://registry.example.org/charts/mattermost-operator",
	}
	if err := s.SetRef(hm); err != nil {
		t.Fatal(err)
	}
	return ts
}

func createBundle(t testing.TB, s *store.Store, k *testKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	opts := CreateOptions{Created: testCreated, ToolVersion: "0.1.0-test", ManifestName: "test", ManifestDigest: store.Digest([]byte("manifest")).String()}
	if k != nil {
		opts.Signer = k.signer
	} else {
		opts.Unsigned = true
	}
	if _, err := Write(context.Background(), &buf, s, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func decompress(t testing.TB, b []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readEntries(t testing.TB, bundle []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(decompress(t, bundle)))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr: *h, data: data})
	}
}

func tarBytes(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg || h.Typeflag == 0 {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses a tar stream as our writer does (independent frames, raw when
// incompressible) or as one streaming zstd frame, to exercise both reader paths.
func compress(t testing.TB, raw []byte, framed bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if framed {
		fw, err := newFrameWriter(context.Background(), &buf, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	e, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	e.Write(raw)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func entryIndex(t testing.TB, es []tarEntry, name string) int {
	t.Helper()
	for i, e := range es {
		if e.hdr.Name == name {
			return i
		}
	}
	t.Fatalf("no entry %s", name)
	return -1
}

func blobEntries(es []tarEntry) []int {
	var out []int
	for i, e := range es {
		if len(e.hdr.Name) > len(blobPrefix) && e.hdr.Name[:len(blobPrefix)] == blobPrefix {
			out = append(out, i)
		}
	}
	return out
}

func cloneEntries(es []tarEntry) []tarEntry {
	out := make([]tarEntry, len(es))
	for i, e := range es {
		out[i] = tarEntry{hdr: e.hdr, data: append([]byte(nil), e.data...)}
	}
	return out
}

// treeOf lists every path under root, relative, sorted.
func treeOf(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
