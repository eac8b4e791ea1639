// Package store is mmgap's content store: an OCI image layout directory (oci-layout, index.json,
// blobs/sha256) that holds every gathered artifact once, by digest.
//
// A blob becomes visible under blobs/sha256 only after its size and SHA-256 were checked: writers
// stream into a partial file under blobs/.partial and rename it into place on Commit. A partial
// file survives an interruption, so a later writer for the same digest resumes where it stopped.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotation keys mmgap writes on index.json descriptors (docs/spec/bundle-v1.md §2).
const (
	AnnotationRefName        = "org.opencontainers.image.ref.name"
	AnnotationCreated        = "org.opencontainers.image.created"
	AnnotationTitle          = "org.opencontainers.image.title"
	AnnotationKind           = "io.mmgap.kind"
	AnnotationName           = "io.mmgap.name"
	AnnotationVersion        = "io.mmgap.version"
	AnnotationSource         = "io.mmgap.source"
	AnnotationUpstreamDigest = "io.mmgap.upstream.digest"
	AnnotationPlatforms      = "io.mmgap.platforms"
	AnnotationSigner         = "io.mmgap.signer"
	// AnnotationChecksumSource is, on a file's artifact manifest, the published checksum file
	// (URL, less credentials and query) its sha256 was taken from.
	AnnotationChecksumSource = "io.mmgap.checksum.source"
	// AnnotationOverrideExpiredKey, on a file artifact's manifest, is the fingerprint of a
	// signing key that had expired and was accepted only because the user named it with
	// gather's --allow-expired-key; AnnotationOverrideExpiredKeyAt is when it expired (RFC 3339).
	AnnotationOverrideExpiredKey   = "io.mmgap.override.expired-key"
	AnnotationOverrideExpiredKeyAt = "io.mmgap.override.expired-key.expired"
)

// Artifact kinds.
const (
	KindImage = "image"
	KindFile  = "file"
	KindChart = "chart"
)

// Media types beyond those go-containerregistry names.
const (
	MediaTypeEmpty        = "application/vnd.oci.empty.v1+json"
	ArtifactTypeFile      = "application/vnd.mmgap.file.v1"
	MediaTypeOctetStream  = "application/octet-stream"
	MediaTypePGPSignature = "application/pgp-signature"
	MediaTypeHelmConfig   = "application/vnd.cncf.helm.config.v1+json"
	MediaTypeHelmChart    = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// EmptyJSON is the content of the OCI empty descriptor.
var EmptyJSON = []byte("{}")

const layoutFile = `{"imageLayoutVersion":"1.0.0"}`

// ErrNotFound reports a blob absent from the store.
var ErrNotFound = errors.New("blob not in store")

// DigestError reports content whose digest or size differs from the expected one. Nothing is
// added to the store when it is returned.
type DigestError struct {
	Want     v1.Hash
	Got      v1.Hash // zero when only the size differs
	WantSize int64
	GotSize  int64
}

func (e *DigestError) Error() string {
	if e.WantSize >= 0 && e.GotSize != e.WantSize {
		if e.GotSize < e.WantSize {
			return fmt.Sprintf("blob %s: truncated: got %d of %d bytes", e.Want, e.GotSize, e.WantSize)
		}
		return fmt.Sprintf("blob %s: size mismatch: got %d bytes, expected %d", e.Want, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("blob %s: digest mismatch: content hashes to %s", e.Want, e.Got)
}

// Store is an OCI image layout on disk. Its methods are safe for concurrent use by goroutines;
// writers of the same blob in several processes are serialised by a file lock.
type Store struct {
	dir string

	mu       sync.Mutex // guards index.json read-modify-write and inflight
	inflight map[v1.Hash]*sync.Mutex
}

// Open opens the store at dir, creating an empty layout if dir is missing or empty.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, inflight: map[v1.Hash]*sync.Mutex{}}
	if err := os.MkdirAll(filepath.Join(abs, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("create store %s: %w", dir, err)
	}
	lp := filepath.Join(abs, "oci-layout")
	if b, err := os.ReadFile(lp); err == nil {
		var l struct {
			Version string `json:"imageLayoutVersion"`
		}
		if json.Unmarshal(b, &l) != nil || l.Version != "1.0.0" {
			return nil, fmt.Errorf("store %s: oci-layout is not an OCI image layout 1.0.0 marker", dir)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := WriteFileAtomic(lp, []byte(layoutFile), 0o644); err != nil {
			return nil, err
		}
	} else {
		return nil, err
	}
	ip := filepath.Join(abs, "index.json")
	if _, err := os.Stat(ip); errors.Is(err, fs.ErrNotExist) {
		if err := s.writeIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// OpenExisting opens a store that must already exist.
func OpenExisting(dir string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("open store %s: not an OCI image layout (no oci-layout file)", dir)
	}
	return Open(dir)
}

// Dir is the store's absolute path.
func (s *Store) Dir() string { return s.dir }

// BlobPath is where the blob with digest d lives (whether or not it exists).
func (s *Store) BlobPath(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

func (s *Store) partialPath(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", ".partial", d.Algorithm+"-"+d.Hex)
}

// CheckDigest refuses digests mmgap does not store (anything but a well-formed sha256).
func CheckDigest(d v1.Hash) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("digest %s: unsupported algorithm %q (only sha256)", d, d.Algorithm)
	}
	if len(d.Hex) != 64 {
		return fmt.Errorf("digest %s: want 64 hex characters", d)
	}
	if _, err := hex.DecodeString(d.Hex); err != nil || strings.ToLower(d.Hex) != d.Hex {
		return fmt.Errorf("digest %s: not lowercase hex", d)
	}
	return nil
}

// Stat reports the size of blob d and whether it exists in the store.
func (s *Store) Stat(d v1.Hash) (int64, bool) {
	if CheckDigest(d) != nil {
		return 0, false
	}
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// Has reports whether blob d exists with the given size (size < 0: any size).
func (s *Store) Has(d v1.Hash, size int64) bool {
	n, ok := s.Stat(d)
	return ok && (size < 0 || n == size)
}

// Open returns a reader over blob d. It does not re-check the digest; use Verify or VerifyBlob.
func (s *Store) Open(d v1.Hash) (*os.File, error) {
	if err := CheckDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d, ErrNotFound)
	}
	return f, err
}

// ReadBlob reads a small blob (a manifest or config) whole, checking its digest. Blobs larger
// than max are refused.
func (s *Store) ReadBlob(d v1.Hash, max int64) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", d, max)
	}
	if got := Digest(b); got != d {
		return nil, &DigestError{Want: d, Got: got, WantSize: -1}
	}
	return b, nil
}

// Digest is the sha256 digest of b.
func Digest(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// PutBytes stores b and returns its descriptor with mediaType.
func (s *Store) PutBytes(mediaType string, b []byte) (v1.Descriptor, error) {
	d := Digest(b)
	desc := v1.Descriptor{MediaType: typesMediaType(mediaType), Digest: d, Size: int64(len(b))}
	if s.Has(d, desc.Size) {
		return desc, nil
	}
	w, err := s.Writer(d, desc.Size)
	if errors.Is(err, ErrExists) {
		return desc, nil
	}
	if err != nil {
		return desc, err
	}
	defer w.Close()
	if w.Offset() != 0 {
		if err := w.Reset(); err != nil {
			return desc, err
		}
	}
	if _, err := w.Write(b); err != nil {
		return desc, err
	}
	return desc, w.Commit()
}

// Put streams r into the store as blob d of the given size (size < 0: unknown) and returns the
// number of bytes read from r. If the blob already exists, r is not read. On a mismatch the
// partial content is discarded and a *DigestError returned.
func (s *Store) Put(ctx context.Context, d v1.Hash, size int64, r io.Reader) (int64, error) {
	w, err := s.Writer(d, size)
	if errors.Is(err, ErrExists) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer w.Close()
	if w.Offset() != 0 {
		if err := w.Reset(); err != nil {
			return 0, err
		}
	}
	n, err := io.Copy(w, ctxReader{ctx, r})
	if err != nil {
		return n, err
	}
	return n, w.Commit()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ErrExists is returned by Writer when the blob is already in the store.
var ErrExists = errors.New("blob already in store")

// BlobWriter writes one blob. Content goes to a partial file that survives Close without
// Commit, so a later Writer for the same digest resumes at Offset.
type BlobWriter struct {
	s      *Store
	d      v1.Hash
	size   int64
	f      *os.File
	h      hash.Hash
	n      int64
	unlock func()
	done   bool

	flushed int64 // bytes handed to the kernel for writeback (see startWriteback)
}

// writebackChunk is how much a BlobWriter buffers in the page cache before it asks the kernel to
// start writing it out.
const writebackChunk = 8 << 20

// Writer opens a writer for blob d (size < 0 when unknown). It returns ErrExists if the blob is
// already stored. Only one writer per digest is open at a time; others wait. Callers MUST Close it.
func (s *Store) Writer(d v1.Hash, size int64) (*BlobWriter, error) {
	if err := CheckDigest(d); err != nil {
		return nil, err
	}
	s.mu.Lock()
	m, ok := s.inflight[d]
	if !ok {
		m = &sync.Mutex{}
		s.inflight[d] = m
	}
	s.mu.Unlock()
	m.Lock()
	unlockMem := m.Unlock
	if s.Has(d, size) {
		unlockMem()
		return nil, ErrExists
	}
	pp := s.partialPath(d)
	if err := os.MkdirAll(filepath.Dir(pp), 0o755); err != nil {
		unlockMem()
		return nil, err
	}
	f, err := os.OpenFile(pp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		unlockMem()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		unlockMem()
		return nil, fmt.Errorf("lock %s: %w", pp, err)
	}
	if s.Has(d, size) { // another process finished it while we waited
		f.Close()
		unlockMem()
		return nil, ErrExists
	}
	w := &BlobWriter{s: s, d: d, size: size, f: f, h: sha256.New(), unlock: unlockMem}
	// Hash what an earlier, interrupted writer left, so writing resumes at Offset.
	n, err := io.Copy(w.h, f)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("resume %s: %w", d, err)
	}
	w.n, w.flushed = n, n
	if size >= 0 && n > size {
		if err := w.Reset(); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// Offset is the number of bytes already held from an earlier, interrupted write.
func (w *BlobWriter) Offset() int64 { return w.n }

// Reset discards any partial content and starts again at offset 0.
func (w *BlobWriter) Reset() error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.h.Reset()
	w.n, w.flushed = 0, 0
	return nil
}

// Write appends to the blob.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		return 0, &DigestError{Want: w.d, WantSize: w.size, GotSize: w.n + int64(len(p))}
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if w.n-w.flushed >= writebackChunk {
		startWriteback(w.f, w.flushed, w.n-w.flushed)
		w.flushed = w.n
	}
	return n, err
}

// ReadFrom streams r into the blob with a large buffer.
func (w *BlobWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Commit checks size and digest, fsyncs, and moves the blob into place. On a mismatch the partial
// content is discarded and a *DigestError returned.
func (w *BlobWriter) Commit() error {
	if w.done {
		return errors.New("blob writer already closed")
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
	if (w.size >= 0 && w.n != w.size) || got != w.d {
		e := &DigestError{Want: w.d, Got: got, WantSize: w.size, GotSize: w.n}
		if w.size < 0 {
			e.WantSize = -1
		}
		w.discard()
		return e
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Chmod(0o444); err != nil {
		return err
	}
	if err := os.Rename(w.f.Name(), w.s.BlobPath(w.d)); err != nil {
		return err
	}
	w.finish()
	return syncDir(filepath.Dir(w.s.BlobPath(w.d)))
}

func (w *BlobWriter) discard() {
	_ = os.Remove(w.f.Name())
	w.finish()
}

func (w *BlobWriter) finish() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close() // releases the flock
	w.unlock()
}

// Close releases the writer, keeping any partial content for a later resume.
func (w *BlobWriter) Close() error {
	w.finish()
	return nil
}

// Discard releases the writer and deletes its partial content.
func (w *BlobWriter) Discard() { w.discard() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFileAtomic writes data to path through a temporary file in the same directory, fsync and
// rename, so readers see the old content or the new, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// Index reads index.json.
func (s *Store) Index() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("read store index: %w", err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("store %s: index.json: %w", s.dir, err)
	}
	return &im, nil
}

func (s *Store) writeIndex(im *v1.IndexManifest) error {
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	sort.SliceStable(im.Manifests, func(i, j int) bool {
		return im.Manifests[i].Annotations[AnnotationRefName] < im.Manifests[j].Annotations[AnnotationRefName]
	})
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(s.dir, "index.json"), append(b, '\n'), 0o644)
}

// SetRef records desc in index.json under its ref name annotation, replacing an earlier entry of
// the same name. Every blob desc reaches must already be stored.
func (s *Store) SetRef(desc v1.Descriptor) error {
	ref := desc.Annotations[AnnotationRefName]
	if ref == "" {
		return fmt.Errorf("set ref: descriptor %s has no %s annotation", desc.Digest, AnnotationRefName)
	}
	if _, err := s.Reachable(desc); err != nil {
		return fmt.Errorf("set ref %s: %w", ref, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im, err := s.Index()
	if err != nil {
		return err
	}
	out := im.Manifests[:0]
	for _, m := range im.Manifests {
		if m.Annotations[AnnotationRefName] != ref {
			out = append(out, m)
		}
	}
	im.Manifests = append(out, desc)
	return s.writeIndex(im)
}

// Lookup returns the index.json descriptor with the given ref name.
func (s *Store) Lookup(ref string) (v1.Descriptor, bool, error) {
	im, err := s.Index()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	for _, m := range im.Manifests {
		if m.Annotations[AnnotationRefName] == ref {
			return m, true, nil
		}
	}
	return v1.Descriptor{}, false, nil
}

// Retain drops index.json entries whose ref name is not in keep and returns the names dropped.
// Their blobs stay on disk (a later gather may want them) but are no longer reachable, so a
// bundle made from the store leaves them out.
func (s *Store) Retain(keep map[string]bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, err := s.Index()
	if err != nil {
		return nil, err
	}
	var dropped []string
	out := im.Manifests[:0]
	for _, m := range im.Manifests {
		if ref := m.Annotations[AnnotationRefName]; keep[ref] {
			out = append(out, m)
		} else {
			dropped = append(dropped, ref)
		}
	}
	if len(dropped) == 0 {
		return nil, nil
	}
	im.Manifests = out
	return dropped, s.writeIndex(im)
}
