package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestOpenCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if string(b) != layoutFile {
		t.Fatalf("oci-layout = %q", b)
	}
	im, err := s.Index()
	if err != nil || im.SchemaVersion != 2 || len(im.Manifests) != 0 {
		t.Fatalf("index = %+v, %v", im, err)
	}
	// ggcr's layout reader accepts it
	if _, err := layout.FromPath(dir); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesForeignLayout(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"9"}`), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "oci-layout") {
		t.Fatalf("err = %v", err)
	}
	if _, err := OpenExisting(t.TempDir()); err == nil {
		t.Fatal("OpenExisting of an empty dir succeeded")
	}
}

func TestPutVerifiesDigestAndSize(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randBytes(t, 100_000)
	d := Digest(data)
	ctx := context.Background()

	// wrong content: refused, nothing visible
	other := randBytes(t, 100_000)
	_, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(other))
	var de *DigestError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("err = %v", err)
	}
	if s.Has(d, -1) {
		t.Fatal("mismatched blob became visible")
	}
	// truncated content: refused
	_, err = s.Put(ctx, d, int64(len(data)), bytes.NewReader(data[:5000]))
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v", err)
	}
	// too long: refused while writing
	_, err = s.Put(ctx, d, 10, bytes.NewReader(data))
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	if got := entries(t, filepath.Join(s.Dir(), "blobs", "sha256")); len(got) != 0 {
		t.Fatalf("blobs after failures: %v", got)
	}
	// good content
	if _, err := s.Put(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !s.Has(d, int64(len(data))) {
		t.Fatal("blob missing")
	}
	if err := s.VerifyBlob(ctx, d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// already present: reader untouched
	r := &countReader{r: bytes.NewReader(data)}
	if _, err := s.Put(ctx, d, int64(len(data)), r); err != nil || r.n != 0 {
		t.Fatalf("re-put read %d bytes, err %v", r.n, err)
	}
}

type countReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestWriterResumesAfterInterruption(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randBytes(t, 1<<20)
	d := Digest(data)
	w, err := s.Writer(d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:300_000]); err != nil {
		t.Fatal(err)
	}
	w.Close() // interrupted: partial kept
	if s.Has(d, -1) {
		t.Fatal("partial blob visible")
	}
	s2, _ := Open(s.Dir()) // a new process
	w2, err := s2.Writer(d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if w2.Offset() != 300_000 {
		t.Fatalf("offset = %d", w2.Offset())
	}
	if _, err := w2.Write(data[300_000:]); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s2.VerifyBlob(context.Background(), d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Writer(d, int64(len(data))); !errors.Is(err, ErrExists) {
		t.Fatalf("writer for stored blob: %v", err)
	}
}

func TestWriterCorruptPartialIsDiscardedOnCommit(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randBytes(t, 4096)
	d := Digest(data)
	os.MkdirAll(filepath.Dir(s.partialPath(d)), 0o755)
	os.WriteFile(s.partialPath(d), randBytes(t, 1000), 0o644) // garbage left by someone
	w, _ := s.Writer(d, 4096)
	w.Write(data[w.Offset():])
	if err := w.Commit(); err == nil {
		t.Fatal("commit of corrupt resume succeeded")
	}
	if _, err := os.Stat(s.partialPath(d)); !os.IsNotExist(err) {
		t.Fatal("bad partial kept")
	}
	if _, err := s.Put(context.Background(), d, 4096, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersOfOneBlob(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randBytes(t, 1<<20)
	d := Digest(data)
	var wg sync.WaitGroup
	var mu sync.Mutex
	read := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &countReader{r: bytes.NewReader(data)}
			if _, err := s.Put(context.Background(), d, int64(len(data)), r); err != nil {
				t.Error(err)
			}
			mu.Lock()
			read += r.n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if read != len(data) {
		t.Fatalf("blob read %d bytes in total, want exactly one copy (%d)", read, len(data))
	}
}

func TestSetRefAndReachable(t *testing.T) {
	s, _ := Open(t.TempDir())
	layer, _ := s.PutBytes("application/vnd.oci.image.layer.v1.tar+gzip", randBytes(t, 1000))
	cfg, _ := s.PutBytes(string(types.OCIConfigJSON), []byte(`{"architecture":"amd64","os":"linux"}`))
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}}
	raw, _ := json.Marshal(m)
	md, _ := s.PutBytes(string(types.OCIManifestSchema1), raw)

	// missing annotation
	if err := s.SetRef(md); err == nil {
		t.Fatal("SetRef without ref name succeeded")
	}
	md.Annotations = map[string]string{AnnotationRefName: "example/a:1", AnnotationKind: KindImage}
	if err := s.SetRef(md); err != nil {
		t.Fatal(err)
	}
	md2 := md
	md2.Annotations = map[string]string{AnnotationRefName: "example/a:1", AnnotationKind: KindImage, AnnotationName: "replaced"}
	if err := s.SetRef(md2); err != nil {
		t.Fatal(err)
	}
	im, _ := s.Index()
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[AnnotationName] != "replaced" {
		t.Fatalf("index = %+v", im.Manifests)
	}
	blobs, err := s.Blobs()
	if err != nil || len(blobs) != 3 {
		t.Fatalf("blobs = %v, %v", blobs, err)
	}
	if err := s.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// a manifest pointing at a missing layer cannot be referenced
	m.Layers = append(m.Layers, v1.Descriptor{MediaType: layer.MediaType, Digest: Digest([]byte("nope")), Size: 4})
	raw, _ = json.Marshal(m)
	bad, _ := s.PutBytes(string(types.OCIManifestSchema1), raw)
	bad.Annotations = map[string]string{AnnotationRefName: "example/b:1"}
	if err := s.SetRef(bad); err == nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	// a corrupted blob is caught by Verify
	p := s.BlobPath(layer.Digest)
	os.Chmod(p, 0o644)
	b, _ := os.ReadFile(p)
	b[10] ^= 1
	os.WriteFile(p, b, 0o644)
	if err := s.Verify(context.Background(), nil); err == nil || !strings.Contains(err.Error(), layer.Digest.String()) {
		t.Fatalf("verify after corruption: %v", err)
	}
	// ggcr reads the layout
	lp, _ := layout.FromPath(s.Dir())
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ii.IndexManifest(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDigest(t *testing.T) {
	for _, bad := range []v1.Hash{
		{Algorithm: "sha512", Hex: strings.Repeat("a", 128)},
		{Algorithm: "sha256", Hex: "abc"},
		{Algorithm: "sha256", Hex: strings.Repeat("A", 64)},
		{Algorithm: "sha256", Hex: strings.Repeat("g", 64)},
	} {
		if CheckDigest(bad) == nil {
			t.Errorf("CheckDigest(%v) = nil", bad)
		}
	}
}
